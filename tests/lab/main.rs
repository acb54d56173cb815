//! The VNet lab from `cargo test`: scripts/lab.sh builds a Function App's network in
//! Linux network namespaces (a closed world: docs/lab.md says how that is guaranteed),
//! runs every scenario through the routeproof binary built here, and asserts each
//! verdict (layer, class, the hint's decisive words, the route path, the witness).
//! The assertions live in scripts/lab/scenarios.sh, so `sudo scripts/lab.sh test` and
//! this test check the same things; here the outcome lines are read back and every
//! scenario must be PASS or PENDING (its verdicts hold, a named src change is missing).
//!
//! Root only: skipped with a message otherwise, failing under ROUTEPROOF_REQUIRE_PEERS=1.
//! `LAB_SCENARIOS="05-nsg-drop 06-nsg-reject"` runs a subset.

mod gate;
mod outcome;

use std::path::PathBuf;
use std::process::Command;

use outcome::Status;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The lab's peer binary (examples/lab_peer.rs): `LAB_PEER`, or built with the same
/// cargo, profile and target directory as this test.
fn lab_peer() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("LAB_PEER") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/deps/lab-HASH -> target/<profile>/examples/lab_peer
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("test binary has no target/<profile>/deps parent")?;
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "--example", "lab_peer"])
        .current_dir(repo());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cargo build --example lab_peer: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --example lab_peer: {status}"));
    }
    let peer = profile_dir.join("examples").join("lab_peer");
    if peer.is_file() {
        Ok(peer)
    } else {
        Err(format!("no lab peer at {}", peer.display()))
    }
}

fn lab(args: &[&str], peer: &PathBuf) -> std::process::Output {
    Command::new(repo().join("scripts/lab.sh"))
        .args(args)
        .env("ROUTEPROOF_BIN", env!("CARGO_BIN_EXE_routeproof"))
        .env("LAB_PEER", peer)
        .output()
        .unwrap_or_else(|e| panic!("scripts/lab.sh {args:?}: {e}"))
}

#[test]
fn every_lab_scenario_gives_its_verdict() {
    const TEST: &str = "every_lab_scenario_gives_its_verdict";
    if let Some(why) = gate::why_not() {
        gate::skip(TEST, &why);
        return;
    }
    let peer = lab_peer().unwrap_or_else(|e| panic!("{TEST}: {e}"));

    let listed = lab(&["list"], &peer);
    let all: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(all.len() >= 12, "scripts/lab.sh list: {all:?}");
    let wanted: Vec<String> = match std::env::var("LAB_SCENARIOS") {
        Ok(s) if !s.trim().is_empty() => s.split_whitespace().map(str::to_string).collect(),
        _ => all.clone(),
    };
    let mut args = vec!["run"];
    args.extend(wanted.iter().map(String::as_str));

    let out = lab(&args, &peer);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if !stderr.trim().is_empty() {
        eprintln!("scripts/lab.sh stderr:\n{stderr}");
    }
    let o = outcome::parse(&stdout);

    let ran: Vec<&str> = o.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(ran, wanted, "one line per scenario asked for");
    let failed: Vec<String> = o
        .scenarios
        .iter()
        .filter(|s| s.status == Status::Fail)
        .map(|s| format!("{}:\n    {}", s.name, s.details.join("\n    ")))
        .collect();
    assert!(
        failed.is_empty(),
        "lab scenarios failed:\n{}",
        failed.join("\n")
    );
    let count = |st| o.scenarios.iter().filter(|s| s.status == st).count();
    assert_eq!(
        o.totals,
        Some((count(Status::Pass), 0, count(Status::Pending))),
        "the closing `N passed, M failed, P pending` line"
    );
    assert!(out.status.success(), "scripts/lab.sh exited {}", out.status);
    for s in o.scenarios.iter().filter(|s| s.status == Status::Pending) {
        eprintln!(
            "PENDING {} (verdicts hold; waiting for a src change):",
            s.name
        );
        for d in &s.details {
            eprintln!("    {d}");
        }
    }
}
