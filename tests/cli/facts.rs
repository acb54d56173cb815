//! Issue 13 (Azure facts audit): behaviour that needs the provisioning script. The
//! library's own changes (route-all table, resolver selection, hints) are unit tests in
//! src. Runs scripts/provision.sh in dry-run mode only: no Azure, no network (a tripwire
//! `az` and `curl` come first on PATH and must never be called).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A temporary directory with settings files and a bin/ of tripwire tools.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let sb = Sandbox { dir };
        for tool in ["az", "curl"] {
            let p = sb.dir.path().join("bin").join(tool);
            std::fs::write(
                &p,
                format!(
                    "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 99\n",
                    sb.tripped().display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        sb
    }

    fn tripped(&self) -> PathBuf {
        self.dir.path().join("tripwire.log")
    }

    /// The example settings with `KEY=VALUE` edits replacing KEY's line.
    fn env_file(&self, edits: &[&str]) -> PathBuf {
        let example =
            std::fs::read_to_string(root().join("scripts/provision.env.example")).unwrap();
        let mut lines: Vec<String> = example.lines().map(str::to_string).collect();
        for edit in edits {
            let (key, _) = edit.split_once('=').unwrap();
            match lines.iter_mut().find(|l| l.starts_with(&format!("{key}="))) {
                Some(l) => *l = edit.to_string(),
                None => lines.push(edit.to_string()),
            }
        }
        let p = self.dir.path().join("facts.env");
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    fn dry_run(&self, env: &Path) -> Output {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .arg(root().join("scripts/provision.sh"))
            .args(["--env", env.to_str().unwrap(), "--dry-run"])
            .current_dir(root())
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let log = std::fs::read_to_string(self.tripped()).unwrap_or_default();
        assert!(log.is_empty(), "a dry run called a tool:\n{log}");
        out
    }
}

/// docs/azure-facts.md P8: /27 is Microsoft's recommendation for one Flex Consumption app;
/// smaller subnets reduce outbound capacity but are not forbidden.
#[test]
fn flex_on_a_28_warns_with_the_reason_and_plans() {
    let sb = Sandbox::new();
    let env = sb.env_file(&["PLAN_KIND=flex", "INTEGRATION_SUBNET_PREFIX=10.60.1.0/28"]);
    let out = sb.dry_run(&env);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: INTEGRATION_SUBNET_PREFIX /28")
            && stderr.contains("/27 Microsoft recommends")
            && stderr.contains("27 shared gateways")
            && stderr.contains("reduces outbound network capacity"),
        "{stderr}"
    );
    assert!(!stderr.contains("needs at least a /27"), "{stderr}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("az network vnet subnet create") && stdout.contains("10.60.1.0/28"),
        "the subnet is still planned:\n{stdout}"
    );
}

#[test]
fn flex_on_a_27_does_not_warn_and_a_30_is_refused() {
    let sb = Sandbox::new();
    let env = sb.env_file(&["PLAN_KIND=flex", "INTEGRATION_SUBNET_PREFIX=10.60.1.0/27"]);
    let out = sb.dry_run(&env);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("warning: INTEGRATION_SUBNET_PREFIX"),
        "{stderr}"
    );
    let env = sb.env_file(&["PLAN_KIND=flex", "INTEGRATION_SUBNET_PREFIX=10.60.1.0/30"]);
    let out = sb.dry_run(&env);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the smallest Azure subnet is a /29"),
        "{stderr}"
    );
}
