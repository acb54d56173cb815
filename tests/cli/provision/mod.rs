//! scripts/provision.sh and scripts/teardown.sh, without Azure and without any network.
//!
//! - The dry run of every plan kind (with and without the SQL server) is parsed into its
//!   commands: every resource is created after its existence check and before anything
//!   uses it, the plan-specific parts are there (delegation, route-all, Always On, Flex),
//!   no secret is printed, two runs print the same bytes, and neither `az` nor `curl` is
//!   called (a tripwire `az` and `curl` come first on PATH).
//! - Invalid settings (missing key, bad plan kind, bad or misplaced prefixes, a subnet too
//!   small for the plan, unknown keys) fail with exit 2 and a message naming the key.
//! - The real (non-dry) code path runs against a stub `az` that answers from a script: in
//!   an empty subscription it runs exactly the commands the dry run printed; where
//!   everything exists it changes nothing; an authorization error stops it.
//! - The generated routeproof config passes `routeproof check`.
//! - Opt-in (`ROUTEPROOF_CHECK_AZ=1`, needs `pip install azure-cli`): every az subcommand
//!   and flag the scripts print exists, per `az <group> <command> --help` (offline; a
//!   dead proxy guards against the CLI's own version check reaching out).

use crate::support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const APP: &str = "func-routeproof-demo";
const RG: &str = "rg-routeproof-demo";
const STUB_SUB: &str = "11111111-2222-3333-4444-555555555555";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn bash() -> PathBuf {
    find_in_path("bash").expect("bash on PATH")
}

/// A temporary directory holding settings files and a bin/ directory that goes first on
/// PATH, with a tripwire (or stub) `az` and a tripwire `curl`.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let sb = Sandbox { dir };
        for tool in ["az", "curl"] {
            sb.write_exe(
                tool,
                &format!(
                    "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 99\n",
                    sb.tripped().display()
                ),
            );
        }
        sb
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tripped(&self) -> PathBuf {
        self.path("tripwire.log")
    }

    fn write_exe(&self, name: &str, body: &str) {
        let p = self.path("bin").join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Writes the example settings with `edits` applied (`KEY=VALUE` replaces KEY's line,
    /// `-KEY` deletes it, anything else is appended).
    fn env_file(&self, name: &str, edits: &[&str]) -> PathBuf {
        let example =
            std::fs::read_to_string(root().join("scripts/provision.env.example")).unwrap();
        let mut lines: Vec<String> = example.lines().map(str::to_string).collect();
        for edit in edits {
            if let Some(key) = edit.strip_prefix('-') {
                lines.retain(|l| !l.starts_with(&format!("{key}=")));
            } else if let Some((key, _)) = edit.split_once('=')
                && let Some(l) = lines.iter_mut().find(|l| l.starts_with(&format!("{key}=")))
            {
                *l = edit.to_string();
            } else {
                lines.push(edit.to_string());
            }
        }
        let p = self.path(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    fn run(&self, script: &str, args: &[&str], extra_env: &[(&str, String)]) -> Output {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(bash());
        cmd.arg(root().join("scripts").join(script))
            .args(args)
            .current_dir(root())
            .env("PATH", path)
            .stdin(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.output().expect("run script")
    }

    fn provision(&self, env: &Path, args: &[&str]) -> Output {
        let mut all = vec!["--env", env.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run("provision.sh", &all, &[])
    }

    fn assert_no_tool_called(&self) {
        let log = std::fs::read_to_string(self.tripped()).unwrap_or_default();
        assert!(log.is_empty(), "a dry run called a tool:\n{log}");
    }
}

mod az;
mod dry_run;
mod facts;
mod lock;
mod plan;
mod real_run;

use plan::{commands, order_problems, secret_problems, verb};

fn assert_clean(out: &Output, what: &str) {
    let all = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    let p = secret_problems(&all);
    assert!(p.is_empty(), "{what}: {p:?}\n{all}");
}

fn dry_run(sb: &Sandbox, env: &Path, args: &[&str]) -> (String, Vec<Vec<String>>) {
    let mut all = vec!["--dry-run"];
    all.extend_from_slice(args);
    let out = sb.provision(env, &all);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert_clean(&out, "dry run");
    let again = sb.provision(env, &all);
    assert_eq!(
        out.stdout, again.stdout,
        "two dry runs printed different plans"
    );
    assert_eq!(
        out.stderr, again.stderr,
        "two dry runs printed different messages"
    );
    let cmds = commands(&stdout);
    let problems = order_problems(&cmds);
    assert!(problems.is_empty(), "{}\n\n{stdout}", problems.join("\n"));
    sb.assert_no_tool_called();
    (stdout, cmds)
}

fn find<'a>(cmds: &'a [Vec<String>], verb_words: &str) -> Vec<&'a Vec<String>> {
    cmds.iter()
        .filter(|c| verb(c).join(" ") == verb_words)
        .collect()
}

fn one<'a>(cmds: &'a [Vec<String>], verb_words: &str) -> &'a Vec<String> {
    let found = find(cmds, verb_words);
    assert_eq!(
        found.len(),
        1,
        "expected one `{verb_words}`, found {found:?}"
    );
    found[0]
}

fn position(cmds: &[Vec<String>], verb_words: &str) -> usize {
    cmds.iter()
        .position(|c| verb(c).join(" ") == verb_words)
        .unwrap_or_else(|| panic!("no `{verb_words}`"))
}
