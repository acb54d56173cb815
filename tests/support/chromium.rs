//! Headless Chromium (Debian's `chromium`) for the status-page tests: one launch with the
//! flags this machine's closed network needs (from the machine notes: without the
//! background-networking flags Chromium's own connections are refused, many at a time),
//! a fresh profile per run, on a blocking thread so the page's server keeps running in
//! the test's runtime; plus the opt-in gate and the screenshot directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every launch: no sandbox (root), no GPU, nothing of Chromium's own networking (QUIC,
/// background fetches, component updates, sync, first-run pages).
pub const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

/// How long one page load (a screenshot or a DOM dump) may take on a loaded machine.
pub const LIMIT: Duration = Duration::from_secs(120);

/// The browser on PATH, if any.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            std::env::split_paths(&path)
                .map(|d| d.join(b))
                .find(|f| f.is_file())
        })
}

/// The browser for `test`, or `None` when the test is skipped (visibly). Runs with
/// `ROUTEPROOF_BROWSER_TESTS=1` and in CI (`ROUTEPROOF_REQUIRE_PEERS=1`); asked for
/// either way, a missing browser fails.
pub fn for_test(test: &str) -> Option<PathBuf> {
    let on = |k: &str| std::env::var_os(k).is_some_and(|v| v == "1");
    let (opted_in, required) = (
        on("ROUTEPROOF_BROWSER_TESTS"),
        on("ROUTEPROOF_REQUIRE_PEERS"),
    );
    if !opted_in && !required {
        eprintln!(
            "SKIPPED {test}: set ROUTEPROOF_BROWSER_TESTS=1 (needs Debian `chromium`; CI runs it)"
        );
        return None;
    }
    let bin = find();
    assert!(
        bin.is_some(),
        "{test}: browser tests asked for, but no chromium on PATH (apt-get install chromium)"
    );
    bin
}

/// `target/artifacts/` (under `CARGO_TARGET_DIR` when set), created.
pub fn artifacts() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium on `url` with [`FLAGS`], a fresh `--user-data-dir` and `extra`
/// arguments, waited for on a blocking thread; its stdout. Fails the test if it exits
/// unsuccessfully, or does not finish within [`LIMIT`] (then it is killed first: no
/// browser outlives its test).
pub async fn run(bin: &Path, url: &str, extra: &[String]) -> String {
    use std::process::Stdio;
    let profile = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(bin)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let pid = child.id() as libc::pid_t;
    let waited = tokio::time::timeout(
        LIMIT,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    let Ok(out) = waited else {
        // SAFETY: the pid of the child spawned above, not yet reaped (its waiter is stuck).
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        panic!("chromium did not finish within {LIMIT:?}; killed");
    };
    let out = out.unwrap().expect("chromium ran");
    drop(profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
