//! Whether the VNet lab can run here: root (network namespaces, nftables) and the
//! tools scripts/lab.sh drives. A lab that cannot run is skipped with the reason, or
//! fails when `ROUTEPROOF_REQUIRE_PEERS=1` (as `.ci/run` sets it).

use std::path::Path;

/// Tools scripts/lab.sh needs on PATH, with the package that brings each one.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("ss", "iproute2"),
    ("nft", "nftables"),
    ("unbound", "unbound"),
    ("unbound-checkconf", "unbound"),
    ("jq", "jq"),
    ("setsid", "util-linux"),
];

/// `None` when the lab can run, else why not.
pub fn why_not() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the VNet lab needs root (network namespaces): run as root or `sudo scripts/lab.sh test`".into());
    }
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(t, _)| !on_path(t))
        .map(|(t, pkg)| format!("{t} ({pkg})"))
        .collect();
    if !missing.is_empty() {
        return Some(format!("missing tools: {}", missing.join(", ")));
    }
    if !Path::new("/var/run/netns").exists() && std::fs::create_dir_all("/var/run/netns").is_err() {
        return Some("cannot create /var/run/netns".into());
    }
    None
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let f = d.join(tool);
            f.is_file()
        })
    }) || ["/usr/sbin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(tool).is_file())
}

/// Skip with a message, or fail under `ROUTEPROOF_REQUIRE_PEERS=1`.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("ROUTEPROOF_REQUIRE_PEERS").is_some_and(|v| v == "1") {
        panic!("{test}: the VNet lab cannot run: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}
