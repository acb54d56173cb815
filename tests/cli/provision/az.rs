//! Opt-in: every az subcommand and flag the scripts print exists in the installed CLI.

use super::plan::*;
use super::*;

/// Every az subcommand and flag the scripts print exists in the installed Azure CLI.
/// Opt-in: the CLI is a multi-minute install that CI does not need for the rest.
#[test]
fn az_subcommands_and_flags_exist() {
    const TEST: &str = "az_subcommands_and_flags_exist";
    if std::env::var_os("ROUTEPROOF_CHECK_AZ").is_none_or(|v| v != "1") {
        eprintln!(
            "SKIPPED {TEST}: set ROUTEPROOF_CHECK_AZ=1 (with azure-cli installed: pip install azure-cli) to check every az subcommand and flag with `az ... --help`"
        );
        return;
    }
    let az = std::env::var_os("ROUTEPROOF_AZ")
        .map(PathBuf::from)
        .or_else(|| Some(root().join(".venv/bin/az")).filter(|p| p.is_file()))
        .or_else(|| find_in_path("az"));
    let Some(az) = az else {
        support::skip(
            TEST,
            "no az CLI (pip install azure-cli, or set ROUTEPROOF_AZ)",
        );
        return;
    };

    let sb = Sandbox::new();
    let mut all: Vec<Vec<String>> = Vec::new();
    let runs: Vec<(PathBuf, Vec<&str>)> = vec![
        (
            root().join("scripts/provision.env.example"),
            vec!["--with-sql"],
        ),
        (
            sb.env_file(
                "flex.env",
                &["PLAN_KIND=flex", "FLEX_MAXIMUM_INSTANCE_COUNT=40"],
            ),
            vec![],
        ),
        (
            sb.env_file(
                "ded.env",
                &[
                    "PLAN_KIND=dedicated",
                    "PLAN_SKU=P0v3",
                    "SQL_ENTRA_ADMIN=signed-in-user",
                    "SQL_DATABASE=orders",
                ],
            ),
            vec!["--with-sql"],
        ),
    ];
    for (env, args) in &runs {
        let (_, cmds) = dry_run(&sb, env, args);
        all.extend(cmds);
    }
    let td = sb.run(
        "teardown.sh",
        &[
            "--env",
            root()
                .join("scripts/provision.env.example")
                .to_str()
                .unwrap(),
            "--dry-run",
            "--no-wait",
        ],
        &[],
    );
    all.extend(commands(&text(&td.stdout)));

    let config_dir = tempfile::tempdir().unwrap();
    let mut checked = BTreeSet::new();
    let mut problems = Vec::new();
    for cmd in all.iter().filter(|c| c[0] == "az") {
        let v: Vec<&str> = verb(cmd);
        let flags: Vec<&str> = cmd
            .iter()
            .filter(|w| w.starts_with('-'))
            .map(String::as_str)
            .collect();
        if !checked.insert((v.join(" "), flags.join(" "))) {
            continue;
        }
        let out = Command::new(&az)
            .args(&v[1..])
            .arg("--help")
            .env("AZURE_CONFIG_DIR", config_dir.path())
            .env("AZURE_CORE_COLLECT_TELEMETRY", "0")
            .env("AZURE_CORE_NO_COLOR", "1")
            // The CLI checks for a newer version on a fresh config dir; a dead local proxy
            // makes sure that check (or anything else) cannot leave this machine.
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "")
            .output()
            .expect("run az --help");
        let help = text(&out.stdout);
        if !out.status.success() || !help.contains("Arguments") {
            problems.push(format!(
                "`{}` is not a command:\n{}",
                v.join(" "),
                text(&out.stderr)
            ));
            continue;
        }
        let known: BTreeSet<&str> = help.split_whitespace().collect();
        for f in flags {
            if !known.contains(f) {
                problems.push(format!("`{}` has no flag {f}", v.join(" ")));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "{TEST}: {} distinct az command forms checked against {}",
        checked.len(),
        az.display()
    );
}
