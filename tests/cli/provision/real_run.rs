//! The real (non-dry) code path against a stub `az` and `curl`, teardown, and `--help`.

use super::plan::*;
use super::*;

/// A stand-in `az` for the real (non-dry) code path. It logs each call (arguments
/// separated by \x1f) and answers from AZ_STUB_MODE: `empty` (nothing exists), `exists`
/// (everything exists and is configured) or `denied` (reads fail with AuthorizationFailed).
const STUB_AZ: &str = r#"#!/usr/bin/env bash
log="${AZ_STUB_LOG:?}"
{ sep=""; for a in "$@"; do printf '%s%s' "$sep" "$a"; sep=$'\x1f'; done; printf '\n'; } >>"$log"
words=()
for a in "$@"; do [[ $a == -* ]] && break; words+=("$a"); done
query=""; output=""; prev=""
for a in "$@"; do
    [[ $prev == --query ]] && query="$a"
    [[ $prev == --output ]] && output="$a"
    prev="$a"
done
mode="${AZ_STUB_MODE:-empty}"
case "${words[*]}" in
    "account show") echo "${AZ_STUB_CURRENT_SUB}"; exit 0 ;;
    "provider show") if [[ $mode == exists ]]; then echo Registered; else echo NotRegistered; fi; exit 0 ;;
    "functionapp identity show")
        if [[ $mode == exists ]] || grep -q $'identity\x1fassign' "$log"; then echo principal-stub; fi
        exit 0 ;;
    "ad sp show") echo client-stub; exit 0 ;;
    "functionapp function keys list") echo "${AZ_STUB_KEY:-}"; exit 0 ;;
esac
if [[ ${words[-1]} == show && -z $query && $output == none ]]; then
    case "$mode" in
        exists) exit 0 ;;
        denied) echo "ERROR: (AuthorizationFailed) The client does not have authorization to perform action" >&2; exit 1 ;;
        *) echo "ERROR: (ResourceNotFound) The Resource was not found." >&2; exit 3 ;;
    esac
fi
if [[ $query == defaultHostName ]]; then
    echo func-routeproof-demo.azurewebsites.net
    exit 0
fi
if [[ $mode == exists ]]; then
    case "$query" in
        virtualNetworkSubnetId) echo "${AZ_STUB_SUBNET_ID}" ;;
        "delegations[].serviceName") echo Microsoft.Web/serverFarms ;;
        vnetRouteAllEnabled | alwaysOn) echo true ;;
        "[].name") printf 'AzureWebJobsStorage\nFUNCTIONS_WORKER_RUNTIME\nROUTEPROOF_SCHEDULE\n' ;;
    esac
fi
exit 0
"#;

fn stub_env(sb: &Sandbox, mode: &str, current_sub: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AZ_STUB_MODE", mode.to_string()),
        ("AZ_STUB_LOG", sb.path("az.log").display().to_string()),
        ("AZ_STUB_CURRENT_SUB", current_sub.to_string()),
        (
            "AZ_STUB_SUBNET_ID",
            format!(
                "/subscriptions/{STUB_SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/vnet-routeproof-demo/subnets/snet-app-outbound"
            ),
        ),
    ]
}

fn stub_calls(sb: &Sandbox) -> Vec<Vec<String>> {
    std::fs::read_to_string(sb.path("az.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            std::iter::once("az".to_string())
                .chain(l.split('\x1f').map(str::to_string))
                .collect()
        })
        .collect()
}

const MUTATING: &[&str] = &[
    "create", "assign", "add", "set", "register", "delete", "update",
];

#[test]
fn real_run_in_an_empty_subscription_runs_exactly_the_dry_run_commands() {
    let sb = Sandbox::new();
    sb.write_exe("az", STUB_AZ);
    let env = sb.env_file(
        "real.env",
        &[&format!("SUBSCRIPTION_ID={STUB_SUB}"), "WITH_SQL=true"],
    );
    let dry = sb.provision(&env, &["--dry-run", "--no-deploy"]);
    assert_eq!(dry.status.code(), Some(0));
    let expected: Vec<Vec<String>> = commands(&text(&dry.stdout))
        .into_iter()
        .map(|c| {
            c.into_iter()
                .map(|w| match w.as_str() {
                    w if w == format!("<principal-id-of-{APP}>") => "principal-stub".to_string(),
                    w if w == format!("<client-id-of-{APP}-identity>") => "client-stub".to_string(),
                    _ => w,
                })
                .collect()
        })
        .collect();

    let out = sb.run(
        "provision.sh",
        &["--env", env.to_str().unwrap(), "--no-deploy"],
        &stub_env(&sb, "empty", "99999999-9999-9999-9999-999999999999"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_clean(&out, "real run");
    let calls = stub_calls(&sb);
    assert_eq!(calls, expected, "the real run differs from its dry run");
    // It says what it does, on stderr.
    let stderr = text(&out.stderr);
    assert!(stderr.contains(
        "+ az group create --name rg-routeproof-demo --location westeurope --output none"
    ));
    assert!(
        text(&out.stdout).is_empty(),
        "stdout is for the report only"
    );
}

#[test]
fn real_run_where_everything_exists_changes_nothing() {
    let sb = Sandbox::new();
    sb.write_exe("az", STUB_AZ);
    let env = sb.env_file(
        "real.env",
        &[&format!("SUBSCRIPTION_ID={STUB_SUB}"), "WITH_SQL=true"],
    );
    let out = sb.run(
        "provision.sh",
        &["--env", env.to_str().unwrap(), "--no-deploy"],
        &stub_env(&sb, "exists", STUB_SUB),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let calls = stub_calls(&sb);
    let changes: Vec<String> = calls
        .iter()
        .filter(|c| verb(c).iter().any(|w| MUTATING.contains(w)))
        .map(|c| c.join(" "))
        .collect();
    assert!(
        changes.is_empty(),
        "a re-run changed things: {changes:#?}\n{stderr}"
    );
    assert!(calls.len() > 15, "{calls:?}");
    assert!(
        stderr.contains("exists, left as it is: resource group rg-routeproof-demo"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exists, left as it is: the settings routeproof needs are present"),
        "{stderr}"
    );
}

#[test]
fn real_run_stops_when_it_cannot_tell_whether_something_exists() {
    let sb = Sandbox::new();
    sb.write_exe("az", STUB_AZ);
    let env = sb.env_file("real.env", &[&format!("SUBSCRIPTION_ID={STUB_SUB}")]);
    let out = sb.run(
        "provision.sh",
        &["--env", env.to_str().unwrap()],
        &stub_env(&sb, "denied", STUB_SUB),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("AuthorizationFailed"), "{stderr}");
    assert!(stderr.contains("cannot tell whether it exists"), "{stderr}");
    assert!(
        !stub_calls(&sb)
            .iter()
            .any(|c| verb(c).last() == Some(&"create")),
        "created something after a failed check"
    );
}

/// A stand-in `curl` for the end of a real run: /api/health answers at once; /api/probe
/// checks that the function key arrived in a header file (never on the command line) and
/// answers CURL_STUB_STATUS with a report that has a password in it, to be redacted.
const STUB_CURL: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"${CURL_STUB_LOG:?}"
url="${*: -1}"
out=""; prev=""; headers=""
for a in "$@"; do
    [[ $prev == -o ]] && out="$a"
    [[ $prev == -H && $a == @* ]] && headers="$(cat "${a#@}")"
    prev="$a"
done
case "$url" in
    */api/health) echo '{"status":"ok","service":"routeproof","version":"0.1.0"}' ;;
    */api/probe)
        grep -qx "x-functions-key: ${CURL_STUB_KEY}" <<<"$headers" || { echo "no key header" >&2; exit 22; }
        printf 'FAIL  sql  Server=tcp:x,1433;Password=hunter2;\nrouteproof report\n' >"$out"
        printf '%s' "${CURL_STUB_STATUS}" ;;
esac
"#;

#[test]
fn real_run_deploys_probes_and_never_prints_the_key() {
    const KEY: &str = "Zm9vYmFyS2V5U0VDUkVUdmFsdWUxMjM0NTY3ODkwYWJjZA==";
    let sb = Sandbox::new();
    sb.write_exe("az", STUB_AZ);
    sb.write_exe("curl", STUB_CURL);
    // A copy of the repository's scripts/ in which package.sh and deploy.sh only log.
    let fake = sb.path("repo");
    std::fs::create_dir_all(fake.join("scripts")).unwrap();
    std::fs::copy(
        root().join("scripts/provision.sh"),
        fake.join("scripts/provision.sh"),
    )
    .unwrap();
    for s in ["package.sh", "deploy.sh"] {
        let p = fake.join("scripts").join(s);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"{s} $*\" >> '{}'\n",
                sb.path("steps.log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let env = sb.env_file(
        "real.env",
        &[&format!("SUBSCRIPTION_ID={STUB_SUB}"), "WITH_SQL=true"],
    );
    for (status, code) in [("200", 0), ("503", 1)] {
        let mut vars = stub_env(&sb, "exists", STUB_SUB);
        vars.extend([
            ("AZ_STUB_KEY", KEY.to_string()),
            ("CURL_STUB_KEY", KEY.to_string()),
            ("CURL_STUB_STATUS", status.to_string()),
            ("CURL_STUB_LOG", sb.path("curl.log").display().to_string()),
        ]);
        let path = format!(
            "{}:{}",
            sb.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(bash());
        cmd.arg(fake.join("scripts/provision.sh"))
            .args(["--env", env.to_str().unwrap()])
            .env("PATH", path)
            .stdin(Stdio::null());
        for (k, v) in &vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(code),
            "HTTP {status}:\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("routeproof report"),
            "the report goes to stdout: {stdout}"
        );
        assert!(
            stdout.contains("Password=***") && !stdout.contains("hunter2"),
            "{stdout}"
        );
        assert!(
            !stdout.contains(KEY) && !stderr.contains(KEY),
            "the key was printed"
        );
        assert_clean(&out, "real run");
    }
    let curl_log = std::fs::read_to_string(sb.path("curl.log")).unwrap();
    assert!(
        !curl_log.contains(KEY),
        "the key was on curl's command line: {curl_log}"
    );
    assert!(curl_log.contains("Accept: text/plain"));
    let steps = std::fs::read_to_string(sb.path("steps.log")).unwrap();
    let config = fake.join("dist/provision/routeproof.toml");
    assert_eq!(
        steps.lines().take(2).collect::<Vec<_>>(),
        [
            format!("package.sh --config {}", config.display()),
            format!("deploy.sh --resource-group {RG} --name {APP}"),
        ]
    );
    let printed = sb.provision(&env, &["--print-config"]);
    assert_eq!(
        std::fs::read(&config).unwrap(),
        printed.stdout,
        "the packaged config is the printed one"
    );
}

#[test]
fn teardown_asks_or_needs_yes_and_has_a_dry_run() {
    let sb = Sandbox::new();
    let env = sb.env_file("real.env", &[&format!("SUBSCRIPTION_ID={STUB_SUB}")]);
    let env_arg = env.to_str().unwrap();

    let dry = sb.run("teardown.sh", &["--env", env_arg, "--dry-run"], &[]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    let cmds = commands(&text(&dry.stdout));
    let delete = one(&cmds, "az group delete");
    assert_eq!(name(delete), Some(RG));
    assert_eq!(flag(delete, &["--subscription"]), Some(STUB_SUB));
    assert!(has(delete, "--yes"));
    assert!(position(&cmds, "az group show") < position(&cmds, "az group delete"));
    assert_eq!(
        dry.stdout,
        sb.run("teardown.sh", &["--env", env_arg, "--dry-run"], &[])
            .stdout
    );
    sb.assert_no_tool_called();

    sb.write_exe("az", STUB_AZ);
    // No terminal and no --yes: nothing is deleted.
    let out = sb.run(
        "teardown.sh",
        &["--env", env_arg],
        &stub_env(&sb, "exists", STUB_SUB),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("re-run with --yes"));
    assert!(
        !stub_calls(&sb)
            .iter()
            .any(|c| verb(c) == ["az", "group", "delete"])
    );

    let out = sb.run(
        "teardown.sh",
        &["--env", env_arg, "--yes"],
        &stub_env(&sb, "exists", STUB_SUB),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let calls = stub_calls(&sb);
    let deletes: Vec<&Vec<String>> = calls
        .iter()
        .filter(|c| verb(c) == ["az", "group", "delete"])
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0], delete,
        "the real delete differs from the dry run's"
    );

    std::fs::remove_file(sb.path("az.log")).unwrap();
    let out = sb.run(
        "teardown.sh",
        &["--env", env_arg, "--yes"],
        &stub_env(&sb, "empty", STUB_SUB),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("nothing to delete"));
    assert!(
        !stub_calls(&sb)
            .iter()
            .any(|c| verb(c) == ["az", "group", "delete"])
    );
}

#[test]
fn help_prints_the_usage() {
    let sb = Sandbox::new();
    for script in ["provision.sh", "teardown.sh"] {
        let out = sb.run(script, &["--help"], &[]);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            text(&out.stdout).contains("Usage: scripts/"),
            "{}",
            text(&out.stdout)
        );
    }
}
