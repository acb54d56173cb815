//! The dry run of every plan kind, the generated config, and invalid settings.

use super::plan::*;
use super::*;

#[test]
fn premium_with_sql_dry_run_creates_everything_in_order() {
    let sb = Sandbox::new();
    let env = root().join("scripts/provision.env.example");
    let (stdout, cmds) = dry_run(&sb, &env, &["--with-sql"]);

    assert!(stdout.starts_with(
        "# routeproof provision plan: dry run, nothing below was run or sent to Azure."
    ));
    let subnet = find(&cmds, "az network vnet subnet create");
    assert_eq!(subnet.len(), 2, "integration and private-endpoint subnets");
    assert_eq!(
        flag(subnet[0], &["--delegations"]),
        Some("Microsoft.Web/serverFarms")
    );
    assert_eq!(
        flag(subnet[0], &["--address-prefixes"]),
        Some("10.60.1.0/26")
    );
    assert_eq!(
        flag(subnet[1], &["--delegations"]),
        None,
        "private endpoints need an undelegated subnet"
    );
    let plan = one(&cmds, "az functionapp plan create");
    assert_eq!(flag(plan, &["--sku"]), Some("EP1"));
    assert_eq!(flag(plan, &["--is-linux"]), Some("true"));
    let create = one(&cmds, "az functionapp create");
    assert_eq!(flag(create, &["--runtime"]), Some("custom"));
    assert_eq!(flag(create, &["--os-type"]), Some("Linux"));
    assert_eq!(
        flag(create, &["--storage-account"]),
        Some("strouteproofdemo01")
    );
    let vi = one(&cmds, "az functionapp vnet-integration add");
    assert_eq!(flag(vi, &["--subnet"]), Some("snet-app-outbound"));
    let set = one(&cmds, "az functionapp config set");
    assert_eq!(flag(set, &["--vnet-route-all-enabled"]), Some("true"));
    let settings = one(&cmds, "az functionapp config appsettings set");
    assert!(
        has(settings, "ROUTEPROOF_SCHEDULE=0 */5 * * * *"),
        "{settings:?}"
    );
    assert!(
        has(settings, "FUNCTIONS_WORKER_RUNTIME=custom"),
        "{settings:?}"
    );
    one(&cmds, "az functionapp identity assign");

    let sql = one(&cmds, "az sql server create");
    assert!(has(sql, "--enable-ad-only-auth"));
    assert_eq!(flag(sql, &["--enable-public-network"]), Some("false"));
    assert_eq!(
        flag(sql, &["--external-admin-principal-type"]),
        Some("Application")
    );
    assert_eq!(flag(sql, &["--external-admin-name"]), Some(APP));
    assert!(
        !has(sql, "--admin-password") && !has(sql, "--admin-user"),
        "Entra-only: no SQL login"
    );
    let pe = one(&cmds, "az network private-endpoint create");
    assert_eq!(flag(pe, &["--group-id"]), Some("sqlServer"));
    assert_eq!(flag(pe, &["--subnet"]), Some("snet-private-endpoints"));
    let zone = one(&cmds, "az network private-dns zone create");
    assert_eq!(name(zone), Some("privatelink.database.windows.net"));
    let link = one(&cmds, "az network private-dns link vnet create");
    assert_eq!(flag(link, &["--registration-enabled"]), Some("false"));
    assert_eq!(
        flag(link, &["--virtual-network"]),
        Some("vnet-routeproof-demo")
    );
    one(&cmds, "az network private-endpoint dns-zone-group create");
    assert!(
        position(&cmds, "az sql server create")
            < position(&cmds, "az network private-endpoint create")
    );
    assert!(
        position(&cmds, "az network private-dns zone create")
            < position(&cmds, "az network private-dns link vnet create")
    );
    assert!(
        position(&cmds, "az network private-dns zone create")
            < position(&cmds, "az network private-endpoint dns-zone-group create")
    );

    // The end: package, deploy, wait, key, probe as text, with the key masked.
    let tail: Vec<String> = cmds[cmds.len() - 7..]
        .iter()
        .map(|c| verb(c).join(" "))
        .collect();
    assert_eq!(
        tail,
        [
            "scripts/package.sh",
            "scripts/deploy.sh",
            "az functionapp deployment source config-zip",
            "az functionapp show",
            "curl",
            "az functionapp function keys list",
            "curl"
        ]
    );
    let probe = cmds.last().unwrap();
    assert!(
        has(probe, "Accept: text/plain") && has(probe, "x-functions-key: ***"),
        "{probe:?}"
    );
    assert_eq!(
        probe.last().unwrap(),
        &format!("https://{APP}.azurewebsites.net/api/probe")
    );
    assert!(!has(one(&cmds, "scripts/deploy.sh"), "--flex"));
}

#[test]
fn flex_dry_run_uses_the_flex_delegation_and_no_plan_or_route_all() {
    let sb = Sandbox::new();
    let env = sb.env_file(
        "flex.env",
        &[
            "PLAN_KIND=flex",
            "INTEGRATION_SUBNET_PREFIX=10.60.1.0/27",
            "FLEX_MAXIMUM_INSTANCE_COUNT=40",
        ],
    );
    let (_, cmds) = dry_run(&sb, &env, &[]);
    let subnet = &find(&cmds, "az network vnet subnet create")[0];
    assert_eq!(
        flag(subnet, &["--delegations"]),
        Some("Microsoft.App/environments")
    );
    assert!(
        find(&cmds, "az functionapp plan create").is_empty(),
        "Flex makes its own plan"
    );
    let create = one(&cmds, "az functionapp create");
    assert_eq!(
        flag(create, &["--flexconsumption-location"]),
        Some("westeurope")
    );
    assert_eq!(flag(create, &["--runtime"]), Some("custom"));
    assert_eq!(flag(create, &["--maximum-instance-count"]), Some("40"));
    assert_eq!(flag(create, &["--plan"]), None);
    assert!(
        find(&cmds, "az functionapp config set").is_empty(),
        "no route-all switch on Flex"
    );
    let settings = one(&cmds, "az functionapp config appsettings set");
    assert!(
        !settings
            .iter()
            .any(|w| w.starts_with("FUNCTIONS_WORKER_RUNTIME")),
        "not an app setting on Flex"
    );
    assert!(has(one(&cmds, "scripts/deploy.sh"), "--flex"));
    assert!(
        find(&cmds, "az provider register")
            .iter()
            .any(|c| has(c, "Microsoft.App")),
        "the Flex delegation needs Microsoft.App"
    );
    assert!(
        find(&cmds, "az sql server create").is_empty()
            && find(&cmds, "az network private-dns zone create").is_empty()
    );
}

#[test]
fn dedicated_dry_run_turns_on_always_on_and_a_signed_in_admin_with_a_database() {
    let sb = Sandbox::new();
    let env = sb.env_file(
        "dedicated.env",
        &[
            "PLAN_KIND=dedicated",
            "PLAN_SKU=P0v3",
            "WITH_SQL=true",
            "SQL_ENTRA_ADMIN=signed-in-user",
            "SQL_DATABASE=orders",
        ],
    );
    let (stdout, cmds) = dry_run(&sb, &env, &[]);
    assert_eq!(
        flag(one(&cmds, "az functionapp plan create"), &["--sku"]),
        Some("P0v3")
    );
    let sets = find(&cmds, "az functionapp config set");
    assert!(
        sets.iter()
            .any(|c| flag(c, &["--always-on"]) == Some("true")),
        "{sets:?}"
    );
    assert!(
        sets.iter()
            .any(|c| flag(c, &["--vnet-route-all-enabled"]) == Some("true")),
        "{sets:?}"
    );
    let sql = one(&cmds, "az sql server create");
    assert_eq!(
        flag(sql, &["--external-admin-principal-type"]),
        Some("User")
    );
    one(&cmds, "az ad signed-in-user show");
    let db = one(&cmds, "az sql db create");
    assert_eq!(name(db), Some("orders"));
    assert!(
        stdout.contains(&format!("CREATE USER [{APP}] FROM EXTERNAL PROVIDER;")),
        "{stdout}"
    );
    assert!(stdout.contains("sqlserver://sql-routeproof-demo.database.windows.net:1433/orders"));
}

#[test]
fn no_deploy_stops_after_the_infrastructure() {
    let sb = Sandbox::new();
    let env = root().join("scripts/provision.env.example");
    let (_, cmds) = dry_run(&sb, &env, &["--no-deploy"]);
    assert_eq!(
        verb(cmds.last().unwrap()).join(" "),
        "az functionapp config appsettings set"
    );
    assert!(find(&cmds, "scripts/package.sh").is_empty());
}

#[test]
fn generated_config_passes_routeproof_check_and_matches_the_dry_run() {
    let sb = Sandbox::new();
    for (file, edits, args) in [
        ("plain.env", vec![], vec![]),
        ("sql.env", vec!["SQL_DATABASE=orders"], vec!["--with-sql"]),
    ] {
        let env = sb.env_file(file, &edits);
        let mut all = vec!["--print-config"];
        all.extend(args.iter().copied());
        let out = sb.provision(&env, &all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let config = text(&out.stdout);
        let path = sb.path(&format!("{file}.toml"));
        std::fs::write(&path, &config).unwrap();
        let check = Command::new(env!("CARGO_BIN_EXE_routeproof"))
            .args(["check", "--config", path.to_str().unwrap()])
            .env_remove("ROUTEPROOF_CONFIG")
            .output()
            .unwrap();
        assert_eq!(
            check.status.code(),
            Some(0),
            "routeproof check rejected the generated config:\n{config}\n{}",
            text(&check.stderr)
        );
        assert!(config.contains("tls://strouteproofdemo01.blob.core.windows.net"));
        if args.is_empty() {
            assert!(!config.contains("sqlserver://"));
        } else {
            assert!(config.contains(
                "target = \"sqlserver://sql-routeproof-demo.database.windows.net:1433/orders\""
            ));
            assert!(
                config.contains("private = true")
                    && config.contains("addresses = [\"10.60.2.0/27\"]")
            );
            assert!(config.contains("authentication = \"managed_identity\""));
        }
        // The dry run shows the same config, commented, where it is written.
        let mut dry = vec!["--dry-run"];
        dry.extend(args.iter().copied());
        let plan = text(&sb.provision(&env, &dry).stdout);
        let shown: String = plan
            .lines()
            .filter_map(|l| {
                l.strip_prefix("#   ")
                    .or(if l == "#" { Some("") } else { None })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let expected: String = config
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect();
        assert_eq!(shown, expected, "the dry run shows another config");
    }
}

#[test]
fn invalid_settings_fail_with_exit_2_naming_the_key() {
    let sb = Sandbox::new();
    let cases: &[(&[&str], &[&str])] = &[
        (&["-FUNCTION_APP"], &["FUNCTION_APP is missing"]),
        (&["-VNET_PREFIX"], &["VNET_PREFIX is missing"]),
        (
            &["PLAN_KIND=consumption"],
            &["PLAN_KIND: `consumption` is not flex, premium or dedicated"],
        ),
        (
            &["PLAN_SKU=Y1"],
            &["PLAN_SKU: `Y1` is not an Elastic Premium SKU"],
        ),
        (
            &["INTEGRATION_SUBNET_PREFIX=10.60.1.0/29"],
            &["INTEGRATION_SUBNET_PREFIX: VNet integration needs at least a /28"],
        ),
        (
            &["INTEGRATION_SUBNET_PREFIX=10.60.1.5/26"],
            &["has host bits set; the prefix is 10.60.1.0/26"],
        ),
        (
            &["INTEGRATION_SUBNET_PREFIX=10.60.1.0"],
            &["INTEGRATION_SUBNET_PREFIX: `10.60.1.0` is not an IPv4 prefix"],
        ),
        (
            &["VNET_PREFIX=10.600.0.0/16"],
            &["VNET_PREFIX: `10.600.0.0/16` is not an IPv4 prefix"],
        ),
        (
            &["PE_SUBNET_PREFIX=10.61.2.0/27"],
            &["PE_SUBNET_PREFIX: 10.61.2.0/27 is not inside VNET_PREFIX"],
        ),
        (
            &["PE_SUBNET_PREFIX=10.60.1.32/27"],
            &["INTEGRATION_SUBNET_PREFIX 10.60.1.0/26 overlaps PE_SUBNET_PREFIX"],
        ),
        (
            // A /28 on Flex is a warning (tests/cli/facts.rs); below /29 is refused.
            &["PLAN_KIND=flex", "INTEGRATION_SUBNET_PREFIX=10.60.1.0/30"],
            &["the smallest Azure subnet is a /29"],
        ),
        (
            &["PLAN_KIND=flex", "INTEGRATION_SUBNET_NAME=snet_app"],
            &["Flex Consumption does not support subnet names with underscores"],
        ),
        (
            &["STORAGE_ACCOUNT=St-Routeproof"],
            &["STORAGE_ACCOUNT: `St-Routeproof` is not a storage account name"],
        ),
        (
            &["SUBSCRIPTION_ID=my-subscription"],
            &["SUBSCRIPTION_ID: `my-subscription` is not a subscription id"],
        ),
        (
            &["ROUTEPROOF_SCHEDULE=\"*/5 * * * *\""],
            &["ROUTEPROOF_SCHEDULE", "six fields"],
        ),
        (
            &["WITH_SQL=true", "SQL_SERVER=Bad_Name"],
            &["SQL_SERVER: `Bad_Name` is not a SQL server name"],
        ),
        (
            &["WITH_SQL=true", "SQL_ENTRA_ADMIN=root"],
            &["SQL_ENTRA_ADMIN: `root` is not app or signed-in-user"],
        ),
        (&["PLAN_KNID=flex"], &["unknown key PLAN_KNID"]),
        (
            &["LOCATION=\"westeurope"],
            &["LOCATION: unterminated quote"],
        ),
        (&["just some words"], &["expected KEY=VALUE"]),
        // several problems at once: all are reported
        (
            &["-STORAGE_ACCOUNT", "PLAN_KIND=serverless"],
            &["STORAGE_ACCOUNT is missing", "PLAN_KIND: `serverless`"],
        ),
    ];
    for (i, (edits, expected)) in cases.iter().enumerate() {
        let env = sb.env_file(&format!("bad{i}.env"), edits);
        for args in [&["--dry-run"][..], &[][..]] {
            let out = sb.provision(&env, args);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{edits:?} {args:?}: {stderr}");
            assert!(
                out.stdout.is_empty(),
                "{edits:?}: printed a plan anyway:\n{}",
                text(&out.stdout)
            );
            for e in *expected {
                assert!(
                    stderr.contains(e),
                    "{edits:?}: expected `{e}` in:\n{stderr}"
                );
            }
            assert!(
                stderr.starts_with("provision.sh: invalid settings in "),
                "{stderr}"
            );
        }
    }
    sb.assert_no_tool_called();

    let out = sb.provision(&sb.path("missing.env"), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no settings file at"));
    let out = sb.run("provision.sh", &["--bogus"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown argument: --bogus"));
    // A real run refuses the example's placeholder subscription before calling anything.
    let out = sb.provision(&root().join("scripts/provision.env.example"), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("SUBSCRIPTION_ID is the example's placeholder"));
    sb.assert_no_tool_called();
}

#[test]
fn small_premium_subnet_warns_but_works() {
    let sb = Sandbox::new();
    let env = sb.env_file("small.env", &["INTEGRATION_SUBNET_PREFIX=10.60.1.0/28"]);
    let out = sb.provision(&env, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("about 5 instances; Microsoft recommends /26 for Linux"),
        "{stderr}"
    );
}
