//! Shared support for the integration tests: the real peers (DNS, unbound, HTTPS, TDS,
//! network faults, the Functions host emulator, the managed-identity endpoint), the
//! Azure service contract stubs (`stubs`), headless Chromium (`chromium`), and the engine
//! builder and report readers (`engine`).
//!
//! Each test binary compiles this module on its own and uses only part of it,
//! so unused helpers are expected rather than a sign of rot.
#![allow(dead_code)]

pub mod cases;
pub mod certs;
pub mod chromium;
pub mod dns;
pub mod engine;
pub mod faults;
pub mod host;
pub mod identity;
pub mod net;
pub mod otel;
pub mod stubs;
pub mod tds;
pub mod unbound;
pub mod web;

/// Reports a test that cannot run here because a peer is missing. A skip must be
/// visible, never a silent pass; and where the peers are supposed to be installed
/// (`.ci/run` sets `ROUTEPROOF_REQUIRE_PEERS=1`), a missing peer is a failure.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("ROUTEPROOF_REQUIRE_PEERS").is_some_and(|v| v == "1") {
        panic!("{test}: required peer missing: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}
