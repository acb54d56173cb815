//! `routeproof probe`'s progress line: drawn on stderr when stderr is a terminal (here a
//! pseudo-terminal from util-linux `script`), never on a pipe, never with `--quiet`; stdout
//! is the report and nothing else in every case.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_routeproof");
/// The line's erase sequence (`\r`, ANSI erase line).
const ERASE: &str = "\r\x1b[2K";

fn script_bin() -> Option<&'static str> {
    ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
}

/// Three loopback targets, one of them refused: two pass, one fails.
fn targets(open: u16, closed: u16) -> Vec<String> {
    vec![
        format!("tcp://127.0.0.1:{open}"),
        format!("tcp://127.0.0.1:{closed}"),
        format!("tcp://[::1]:{closed}"),
    ]
}

/// `routeproof ARGS` with stdin, stdout and stderr on a pseudo-terminal (`script -qfec CMD
/// /dev/null` copies the terminal's output to its own stdout), except that the shell
/// sends the command's stdout to a file. Returns (what the terminal showed, stdout, exit).
fn on_a_terminal(script: &str, args: &[String]) -> (String, Vec<u8>, Option<i32>) {
    for a in args {
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || ":/.-_[]".contains(c)),
            "{a} needs no shell quoting"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let stdout = dir.path().join("stdout");
    let exit = dir.path().join("exit");
    // The exit code goes to a file: `script -e` relays it, but so does the shell here.
    let cmd = format!(
        "{BIN} {} >{} ; echo $? >{}",
        args.join(" "),
        stdout.display(),
        exit.display()
    );
    let out: Output = Command::new(script)
        .args(["-qfec", &cmd, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .env("TERM", "xterm")
        .env_remove("ROUTEPROOF_CONFIG")
        .env_remove("WEBSITE_DNS_SERVER")
        .output()
        .expect("run script");
    assert!(out.status.success(), "script: {out:?}");
    let code = std::fs::read_to_string(&exit)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        std::fs::read(&stdout).unwrap(),
        code,
    )
}

fn json(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not the JSON report only ({e}): {:?}",
            String::from_utf8_lossy(stdout)
        )
    })
}

#[test]
fn progress_on_a_terminal_never_on_a_pipe_nor_with_quiet() {
    let Some(script) = script_bin() else {
        return support::skip(
            "progress_on_a_terminal",
            "util-linux `script` is not installed (apt-get install bsdutils)",
        );
    };
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args: Vec<String> = ["probe", "--json", "--timeout", "20s"]
        .map(String::from)
        .to_vec();
    args.extend(targets(open.local_addr().unwrap().port(), closed));

    // A terminal: the first frame, the final count with the failures, the erase at the end.
    let (terminal, stdout, code) = on_a_terminal(script, &args);
    assert_eq!(code, Some(1), "a target fails: {terminal}");
    assert!(
        terminal.contains("routeproof: 0/3 done, 0 failed, 20s left"),
        "{terminal:?}"
    );
    assert!(
        terminal.contains("routeproof: 3/3 done, 2 failed, "),
        "{terminal:?}"
    );
    assert!(terminal.ends_with(ERASE), "erased at the end: {terminal:?}");
    let v = json(&stdout);
    assert_eq!(v["summary"]["total"], 3);
    assert_eq!(v["summary"]["failed"], 2);

    // --quiet on the same terminal: no line.
    let mut quiet = args.clone();
    quiet.insert(1, "--quiet".into());
    let (terminal, stdout, code) = on_a_terminal(script, &quiet);
    assert_eq!(code, Some(1));
    assert!(
        !terminal.contains(" done, ") && !terminal.contains(ERASE),
        "{terminal:?}"
    );
    json(&stdout);

    // A pipe: no line, and the text report on stdout is untouched too.
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = Command::new(BIN)
        .args(&a)
        .env_remove("ROUTEPROOF_CONFIG")
        .env_remove("WEBSITE_DNS_SERVER")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(" done, ") && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    assert_eq!(json(&out.stdout)["summary"]["total"], 3);
    drop(open);
}
