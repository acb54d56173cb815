//! scripts/provision.sh --lock-storage (scripts/provision-lock.sh), without Azure and
//! without any network: the dry run is parsed into its commands and checked for the
//! locked-down layout (four storage private endpoints with their zones, links and zone
//! groups; the content share over the VNet; a Key Vault behind its endpoint with a role,
//! a canary secret and one Key Vault reference), its order (storage public access goes off
//! last), existence checks before every create, no secret, no tool called; invalid lock
//! settings fail with exit 2; the generated config names each service check.

use super::Sandbox;

const STORAGE: &str = "strouteproofdemo01";
const KV: &str = "kv-routeproof-demo";

/// The printed `az …` command lines, split into words (single quotes as the script writes them).
fn commands(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|l| l.starts_with("az "))
        .map(|l| {
            let mut out = Vec::new();
            let (mut cur, mut quoted, mut any) = (String::new(), false, false);
            for c in l.chars() {
                match c {
                    '\'' => {
                        quoted = !quoted;
                        any = true;
                    }
                    ' ' if !quoted => {
                        if any || !cur.is_empty() {
                            out.push(std::mem::take(&mut cur));
                        }
                        any = false;
                    }
                    c => cur.push(c),
                }
            }
            if any || !cur.is_empty() {
                out.push(cur);
            }
            out
        })
        .collect()
}

fn flag<'a>(cmd: &'a [String], name: &str) -> Option<&'a str> {
    cmd.iter()
        .position(|w| w == name)
        .and_then(|i| cmd.get(i + 1))
        .map(String::as_str)
}

fn starts(cmd: &[String], verb: &str) -> bool {
    let v: Vec<&str> = verb.split(' ').collect();
    cmd.len() >= v.len() && cmd.iter().zip(&v).all(|(a, b)| a == b)
}

fn pos(cmds: &[Vec<String>], pred: impl Fn(&[String]) -> bool, what: &str) -> usize {
    let found: Vec<usize> = cmds
        .iter()
        .enumerate()
        .filter(|(_, c)| pred(c))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one `{what}`, found {}",
        found.len()
    );
    found[0]
}

fn dry(sb: &Sandbox, edits: &[&str], args: &[&str]) -> (String, Vec<Vec<String>>) {
    let env = sb.env_file("lock.env", edits);
    let out = sb.provision(&env, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dry run failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    sb.assert_no_tool_called();
    let cmds = commands(&stdout);
    (stdout, cmds)
}

#[test]
fn premium_lock_storage_creates_the_locked_layout_in_order() {
    let sb = Sandbox::new();
    let (stdout, cmds) = dry(&sb, &[], &["--lock-storage", "--dry-run"]);
    let app_create = pos(
        &cmds,
        |c| starts(c, "az functionapp create"),
        "functionapp create",
    );
    let vnet_int = pos(
        &cmds,
        |c| starts(c, "az functionapp vnet-integration add"),
        "vnet-integration add",
    );
    let mut last_storage_piece = 0;
    for svc in ["blob", "queue", "table", "file"] {
        let pe = format!("pe-{STORAGE}-{svc}");
        let zone = format!("privatelink.{svc}.core.windows.net");
        let create = pos(
            &cmds,
            |c| starts(c, "az network private-endpoint create") && flag(c, "--name") == Some(&pe),
            &pe,
        );
        let c = &cmds[create];
        assert_eq!(flag(c, "--group-id"), Some(svc));
        assert!(
            flag(c, "--private-connection-resource-id")
                .unwrap()
                .ends_with(&format!("/Microsoft.Storage/storageAccounts/{STORAGE}"))
        );
        let show = pos(
            &cmds,
            |c| starts(c, "az network private-endpoint show") && flag(c, "--name") == Some(&pe),
            "pe show",
        );
        assert!(show < create && create > vnet_int && create > app_create);
        let zc = pos(
            &cmds,
            |c| starts(c, "az network private-dns zone create") && flag(c, "--name") == Some(&zone),
            &zone,
        );
        let link = pos(
            &cmds,
            |c| {
                starts(c, "az network private-dns link vnet create")
                    && flag(c, "--zone-name") == Some(&zone)
            },
            "link",
        );
        assert_eq!(flag(&cmds[link], "--registration-enabled"), Some("false"));
        let zg = pos(
            &cmds,
            |c| {
                starts(c, "az network private-endpoint dns-zone-group create")
                    && flag(c, "--endpoint-name") == Some(&pe)
            },
            "zone group",
        );
        assert!(
            flag(&cmds[zg], "--private-dns-zone")
                .unwrap()
                .ends_with(&zone)
        );
        assert!(
            zc < link && create < zg && zc < zg,
            "{svc}: zone, link and zone group in order"
        );
        last_storage_piece = last_storage_piece.max(zg).max(link);
    }
    let share = pos(
        &cmds,
        |c| {
            starts(c, "az resource update")
                && c.iter()
                    .any(|w| w == "properties.vnetContentShareEnabled=true")
        },
        "content share",
    );
    let kv_create = pos(
        &cmds,
        |c| starts(c, "az keyvault create"),
        "keyvault create",
    );
    let kv = &cmds[kv_create];
    assert_eq!(flag(kv, "--name"), Some(KV));
    assert_eq!(flag(kv, "--public-network-access"), Some("Disabled"));
    assert_eq!(flag(kv, "--enable-rbac-authorization"), Some("true"));
    let kv_pe = pos(
        &cmds,
        |c| {
            starts(c, "az network private-endpoint create")
                && flag(c, "--group-id") == Some("vault")
        },
        "kv pe",
    );
    pos(
        &cmds,
        |c| {
            starts(c, "az network private-dns zone create")
                && flag(c, "--name") == Some("privatelink.vaultcore.azure.net")
        },
        "kv zone",
    );
    let role = pos(&cmds, |c| starts(c, "az role assignment create"), "role");
    assert_eq!(flag(&cmds[role], "--role"), Some("Key Vault Secrets User"));
    assert!(
        flag(&cmds[role], "--scope")
            .unwrap()
            .ends_with(&format!("/vaults/{KV}"))
    );
    let secret = pos(
        &cmds,
        |c| starts(c, "az rest") && flag(c, "--method") == Some("put"),
        "secret put",
    );
    assert!(
        flag(&cmds[secret], "--url")
            .unwrap()
            .starts_with("https://management.azure.com/"),
        "management plane, not the private data plane"
    );
    let reference = pos(
        &cmds,
        |c| {
            starts(c, "az functionapp config appsettings set") && c.iter().any(|w| w.starts_with("ROUTEPROOF_KV_REFERENCE=@Microsoft.KeyVault(SecretUri=https://kv-routeproof-demo.vault.azure.net/secrets/routeproof-canary/)"))
        },
        "Key Vault reference",
    );
    let lock = pos(
        &cmds,
        |c| starts(c, "az storage account update"),
        "storage lock",
    );
    assert_eq!(
        flag(&cmds[lock], "--public-network-access"),
        Some("Disabled")
    );
    assert!(kv_create < kv_pe && kv_pe < role && role < secret && secret < reference);
    for (what, i) in [
        ("storage endpoints", last_storage_piece),
        ("content share", share),
        ("reference", reference),
    ] {
        assert!(
            i < lock,
            "{what} must come before storage public access goes off"
        );
    }
    assert!(stdout.contains("locked storage: yes"));
    // Every create of the layout follows its own existence check.
    for (i, c) in cmds.iter().enumerate() {
        if starts(c, "az network private-endpoint create") || starts(c, "az keyvault create") {
            let name = flag(c, "--name").unwrap();
            assert!(
                cmds[..i]
                    .iter()
                    .any(|p| p.iter().any(|w| w == "show") && flag(p, "--name") == Some(name)),
                "{name}: no existence check"
            );
        }
    }
    // No secret on any line (the canary value is not one, and is the only value written).
    for l in stdout.lines() {
        assert!(
            !l.contains("AccountKey=") && !l.to_ascii_lowercase().contains("sig="),
            "{l}"
        );
    }
    // Two runs print the same bytes.
    let (again, _) = dry(&sb, &[], &["--lock-storage", "--dry-run"]);
    assert_eq!(stdout, again);
}

#[test]
fn flex_lock_storage_has_no_content_share_step_and_off_means_none_of_it() {
    let sb = Sandbox::new();
    let (stdout, cmds) = dry(
        &sb,
        &[
            "PLAN_KIND=flex",
            "INTEGRATION_SUBNET_PREFIX=10.60.1.0/27",
            "LOCK_STORAGE=true",
        ],
        &["--dry-run"],
    );
    assert!(
        !cmds
            .iter()
            .any(|c| c.iter().any(|w| w.contains("vnetContentShareEnabled")))
    );
    assert!(stdout.contains("Flex Consumption has no content share"));
    pos(
        &cmds,
        |c| starts(c, "az storage account update"),
        "storage lock",
    );
    let (_, off) = dry(&sb, &[], &["--dry-run"]);
    assert!(!off.iter().any(|c| starts(c, "az keyvault")
        || starts(c, "az storage account update")
        || flag(c, "--group-id") == Some("blob")));
}

#[test]
fn invalid_lock_settings_fail_with_exit_2_naming_the_key() {
    let sb = Sandbox::new();
    for (edit, key) in [
        ("KEY_VAULT=", "KEY_VAULT"),
        ("KEY_VAULT=1starts-with-digit", "KEY_VAULT"),
        ("KEY_VAULT_SECRET=bad_name!", "KEY_VAULT_SECRET"),
        ("LOCK_STORAGE=maybe", "LOCK_STORAGE"),
    ] {
        let env = sb.env_file(
            "lock.env",
            &[
                edit,
                if key == "LOCK_STORAGE" {
                    "WITH_SQL=false"
                } else {
                    "LOCK_STORAGE=true"
                },
            ],
        );
        let out = sb.provision(&env, &["--dry-run"]);
        assert_eq!(out.status.code(), Some(2), "{edit}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{edit}: {err}");
    }
    sb.assert_no_tool_called();
}

#[test]
fn generated_config_checks_each_service_through_its_endpoint() {
    let sb = Sandbox::new();
    let env = sb.env_file("lock.env", &[]);
    let out = sb.provision(&env, &["--lock-storage", "--print-config"]);
    assert!(out.status.success());
    let cfg = String::from_utf8_lossy(&out.stdout);
    let parsed: toml::Value = toml::from_str(&cfg).expect("the config is TOML");
    let targets = parsed["targets"].as_array().unwrap();
    let names: Vec<&str> = targets
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "storage-blob",
            "storage-queue",
            "storage-table",
            "storage-file",
            "content-share",
            "key-vault"
        ]
    );
    for t in targets {
        assert_eq!(t["private"].as_bool(), Some(true));
        assert_eq!(
            t["addresses"].as_array().unwrap()[0].as_str(),
            Some("10.60.2.0/27")
        );
    }
    assert_eq!(
        targets[0]["target"].as_str(),
        Some("https://strouteproofdemo01.blob.core.windows.net/")
    );
    assert_eq!(
        targets[4]["target"].as_str(),
        Some("smb://strouteproofdemo01.file.core.windows.net")
    );
    assert_eq!(
        targets[5]["target"].as_str(),
        Some("https://kv-routeproof-demo.vault.azure.net/")
    );
    // Each https target is a host the service layer recognises from its suffix.
    for t in targets
        .iter()
        .filter(|t| t["target"].as_str().unwrap().starts_with("https://"))
    {
        let url = url::Url::parse(t["target"].as_str().unwrap()).unwrap();
        assert!(
            routeproof::probe::service::ServiceTarget::recognise(url.host_str().unwrap()).is_some(),
            "{url}"
        );
    }
}
