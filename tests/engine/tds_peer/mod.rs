//! The TDS test server (tests/support/tds) judged by clients nobody here wrote:
//! python-tds, FreeTDS `tsql`, pymssql (FreeTDS 1.5) and tedious. If they log in
//! and read `SELECT 1` in every encryption mode, the server is real enough for the
//! probe's TDS layer tests; a missing client skips visibly (fails in CI).
//!
//! A few raw-byte tests pin what the clients cannot show directly (the PRELOGIN
//! answer's packet type, the encryption table, ALPN under TDS 8).
use crate::support;

use support::certs::{self, Ca, LeafSpec, Material, PemFiles};
use support::tds::clients::{self, ClientTls, Connect, Outcome};
use support::tds::login::{deobfuscate, obfuscate};
use support::tds::packet::{self, Prelogin, enc, opt, ty};
use support::tds::{Encryption, Fault, LoginTransport, TdsConfig, TdsServer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const USER: &str = "probe";
/// Non-ASCII on purpose: the password travels as obfuscated UTF-16.
const PASSWORD: &str = "Rp-Pässw0rd!";
const TOKEN: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJhdWQiOiJodHRwczovL2RhdGFiYXNlLndpbmRvd3MubmV0LyJ9.";

struct Tls {
    ca: Ca,
    leaf: Material,
    pem: PemFiles,
}

/// A CA and a leaf for the name python-tds and tedious check (`sql.routeproof.test`)
/// and the address FreeTDS checks (127.0.0.1).
fn tls() -> Tls {
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof TDS test CA");
    let leaf = ca.issue(&LeafSpec::new(["sql.routeproof.test", "127.0.0.1"]));
    let pem = PemFiles::write(&ca, &leaf);
    Tls { ca, leaf, pem }
}

fn config() -> TdsConfig {
    TdsConfig::default().user(USER, PASSWORD)
}

async fn server(encryption: Encryption, tls: &Tls) -> TdsServer {
    TdsServer::start(config().encrypted(encryption, tls.leaf.clone())).await
}

/// The client's outcome, or `None` after a visible skip when it is not installed.
fn present(test: &str, r: Result<Outcome, String>) -> Option<Outcome> {
    r.map_err(|why| support::skip(test, &why)).ok()
}

#[track_caller]
fn assert_select_1(o: &Outcome) {
    assert!(!o.hung, "client hung:\n{}", o.output);
    assert!(o.ok, "client failed: {}\n{}", o.message, o.output);
    let first = o.rows.first().and_then(|r| r.first());
    let one = first.is_some_and(|v| v.as_i64() == Some(1) || v.as_str() == Some("1"));
    assert!(
        one,
        "expected one row with 1, got {:?}\n{}",
        o.rows, o.output
    );
}

#[track_caller]
fn assert_refused(o: &Outcome, number: u64) {
    assert!(!o.hung, "client hung:\n{}", o.output);
    assert!(!o.ok, "login unexpectedly succeeded:\n{}", o.output);
    assert_eq!(o.number, Some(number), "{}\n{}", o.message, o.output);
}

mod drivers;
mod raw;
