//! The fault battery: one named test per real-world failure shape, each against a real
//! misbehaving peer on loopback (tests/support), each asserting the failing layer, the
//! failure class, the hint's decisive content (the cause and the fix it names, and the
//! facts of this case it must quote: the zone, the port, the name, the redirect) and the
//! engine's deadline contract (`duration_ms <= deadline_ms` plus scheduling grace: the
//! run ends at its deadline, never later; a contract, not a speed claim). A process-wide
//! panic hook counts panics anywhere (including inside spawned tasks whose panics a
//! JoinHandle would swallow); every case asserts none happened, and one case runs the
//! real binary with RUST_BACKTRACE=1 over several faults and fails on any "panicked at"
//! in its stderr. Loopback only.
//!
//! The panic hook is process-wide: in this test binary it counts the panics of every
//! engine test, which only makes "no panic" stricter.

use crate::support;

use std::net::SocketAddr;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use routeproof::report::{FailureClass, Layer, Report, TargetReport};
use support::certs::{self, Ca, LeafSpec, PemFiles};
use support::dns::{DnsServer, Zone};
use support::tds::{Encryption, TdsConfig};
use tokio::net::TcpListener;

mod data;
mod dns;
mod handler;
mod http;
mod services;
mod tcp;
mod tds;
mod tls;

/// Scheduling slack allowed past the run deadline on a loaded 2-core machine. The
/// contract is that the run ends at its deadline, not seconds later.
const GRACE_MS: f64 = 150.0;
/// Every engine case runs under this run deadline unless it tests the deadline itself.
const RUN_DEADLINE: Duration = Duration::from_secs(4);
const SQL: &str = "loopsql.database.windows.net";
const PASSWORD: &str = "Pa55-battery-0815";
const IID: &str = "0badf00d-0000-4000-8000-000000000001";

// ------------------------------------------------------------------ panic accounting

static PANICS: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

fn count_panics() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A failed assertion in a test (tests/...) is that test's own failure; a
            // panic anywhere else (src/, a dependency) is a product bug, counted for all.
            let in_tests = info
                .location()
                .is_some_and(|l| l.file().starts_with("tests/"));
            if !in_tests {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

fn assert_no_panics(case: &str) {
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "{case}: a panic happened somewhere in the battery (see stderr)"
    );
}

// ------------------------------------------------------------------ engine harness

fn env(k: &str) -> Option<String> {
    (k == "P").then(|| PASSWORD.to_string())
}

/// Short per-layer timeouts so every fault resolves well inside `RUN_DEADLINE`.
fn head(dns: SocketAddr, extra: &str) -> String {
    let settle = if extra.contains("tcp_settle") {
        ""
    } else {
        "tcp_settle = \"0s\"\n"
    };
    format!(
        "[engine]\ndns_servers = [\"{dns}\"]\n{settle}{extra}\n[engine.timeouts]\ndns = \"600ms\"\ntcp = \"500ms\"\ntls = \"600ms\"\nhttp = \"600ms\"\nbody = \"600ms\"\nlogin = \"700ms\"\nquery = \"700ms\"\n"
    )
}

/// Runs `targets` and checks the contracts every case shares: the run and each target
/// ended within the deadline, and nothing panicked.
async fn probe(dns: SocketAddr, extra: &str, targets: &str, deadline: Option<Duration>) -> Report {
    probe_with(dns, extra, targets, deadline, &env).await
}

/// `probe` with the app settings `settings` as the environment.
async fn probe_with(
    dns: SocketAddr,
    extra: &str,
    targets: &str,
    deadline: Option<Duration>,
    settings: &dyn Fn(&str) -> Option<String>,
) -> Report {
    count_panics();
    let h = head(dns, extra);
    let (engine, cfg) = support::engine::build(&format!("{h}\n{targets}"), settings);
    let wall = Instant::now();
    let r = engine
        .run(&cfg.targets, Some(deadline.unwrap_or(RUN_DEADLINE)))
        .await;
    let wall_ms = wall.elapsed().as_secs_f64() * 1e3;
    assert!(
        r.duration_ms <= r.deadline_ms + GRACE_MS,
        "run took {} ms, deadline {} ms",
        r.duration_ms,
        r.deadline_ms
    );
    assert!(
        wall_ms <= r.deadline_ms + GRACE_MS,
        "run returned after {wall_ms:.1} ms of wall time, deadline {} ms",
        r.deadline_ms
    );
    for t in &r.targets {
        assert!(
            t.duration_ms <= r.deadline_ms + GRACE_MS,
            "{}: {} ms",
            t.name,
            t.duration_ms
        );
    }
    // The report must always serialise (the handler and --json depend on it).
    serde_json::to_string(&r).unwrap();
    r
}

/// The one target of `r` failed at `layer` with `class`, and its hint carries the words
/// that class's hint must always carry (`decisive`).
fn expect<'a>(case: &str, r: &'a Report, layer: Layer, class: FailureClass) -> &'a TargetReport {
    let t = &r.targets[0];
    let f = t
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("{case}: expected {class}, target passed: {t:#?}"));
    assert_eq!(f.class, class, "{case}: {t:#?}");
    assert_eq!(f.layer, Some(layer), "{case}: {t:#?}");
    assert!(!f.message.is_empty() && !f.hint.is_empty(), "{case}");
    hint_has(case, t, decisive(class));
    assert!(!t.ok && !r.ok, "{case}");
    assert_no_panics(case);
    t
}

fn dead_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn one(uri: &str, extra: &str) -> String {
    format!("[[targets]]\nname = \"case\"\ntarget = \"{uri}\"\n{extra}\n")
}

// ------------------------------------------------------------------ hints

/// What each class's hint must say in every case of this battery (all with DNS servers
/// from the config, so a custom DNS server): the cause it names and where to fix it.
/// A hint without these words would send the engineer to the wrong place. Facts of one
/// case (the zone, the port, the name) are asserted by that case.
fn decisive(class: FailureClass) -> &'static [&'static str] {
    use FailureClass as C;
    match class {
        C::DnsNxdomain => &["does not exist", "conditional forwarder", "168.63.129.16"],
        C::DnsServfail => &["upstream", "conditional forwarder", "168.63.129.16"],
        C::DnsRefused => &["refuses this client", "ACL", "integration subnet"],
        C::DnsTimeout => &["No DNS answer", "UDP/TCP 53", "NSG"],
        C::DnsNoRecords => &["no record of the type asked", "private DNS zone"],
        C::DnsError => &["DNS exchange failed", "dig @server"],
        C::DnsPublicAddress => &["public address", "private DNS zone"],
        C::DnsDivergent => &[
            "Custom DNS cannot resolve",
            "conditional forwarder",
            "168.63.129.16",
        ],
        C::TcpRefused => &["answered with a reset", "nothing accepts", "Approved"],
        C::TcpTimeout => &["SYN unanswered", "NSG", "route table", "peered"],
        C::TcpReset => &["accepted, then reset", "firewall/NVA"],
        C::TcpForbidden => &["platform refused", "EACCES/EPERM", "sandbox"],
        C::TlsUntrusted => &["trusted root", "ca_file", "TLS-inspecting"],
        C::TlsExpired => &["expired or not yet valid", "renew"],
        C::TlsNameMismatch => &["certificate does not cover", "public FQDN"],
        C::TlsHandshake => &[
            "before any certificate check",
            "no TLS service on this port",
        ],
        C::TlsTimeout => &["handshake never completed", "MTU"],
        C::TdsPrelogin => &[
            "did not answer as SQL Server",
            "public network access disabled",
        ],
        C::TdsTimeout => &["TDS phase stalled", "which", "1433"],
        C::TdsLoginFailed => &["the route to SQL Server works", "password"],
        C::TdsRedirect => &[
            "redirected the login",
            "Redirect connection policy",
            "Proxy",
        ],
        C::TdsQuery => &["Logged in, but the query failed", "The route works"],
        C::HttpStatus => &["status outside `status`"],
        C::HttpTimeout => &["did not come in time", "which phase timed out"],
        C::HttpRedirects => &["Too many redirects", "loop"],
        C::HttpTooLarge => &["larger than `max_body_bytes`"],
        C::HttpProtocol => &["not valid HTTP", "closed mid-response"],
        C::Deadline => &["run deadline expired", "engine.deadline"],
        C::PostgresNotPostgres => &["did not answer PostgreSQL's SSLRequest", "5432"],
        C::PostgresTimeout => &["PostgreSQL phase stalled", "firewall/NVA"],
        C::PostgresTlsRefused => &["answered `N` to SSLRequest", "requires TLS"],
        C::PostgresClosed => &["closed the connection mid-handshake", "which phase"],
        C::MysqlNoGreeting => &["MySQL always speaks first", "firewall/NVA"],
        C::MysqlTimeout => &["MySQL phase stalled", "firewall/NVA"],
        C::MysqlTlsRefused => &["lacks the SSL capability", "require_secure_transport"],
        C::MysqlClosed => &["closed the connection mid-handshake", "which phase"],
        C::RedisNotRedis => &["not as Redis", "6380"],
        C::RedisNoAnswer => &["PING was never answered", "firewall/NVA"],
        C::RedisTlsRefused => &["did not accept TLS", "6380"],
        C::RedisClosed => &["closed the connection", "which phase"],
        C::AmqpNotThisProtocol => &["not as AMQP 1.0", "5671", "443"],
        C::AmqpTimeout => &["AMQP phase stalled", "firewall/NVA"],
        C::AmqpTlsRefused => &["before any certificate check", "require TLS", "5671"],
        C::AmqpClosed => &["closed the connection mid-handshake", "443"],
        C::KafkaNotThisProtocol => &["not as a Kafka broker", "9093"],
        C::KafkaTimeout => &["Kafka phase stalled", "firewall/NVA"],
        C::KafkaTlsRefused => &["before any certificate check", "9093 is TLS-only"],
        C::KafkaClosed => &["closed the connection mid-exchange", "IP firewall"],
        C::ServiceFirewall => &[
            "refused this source with its network rules",
            "private endpoint",
            "Approved",
        ],
        C::ServiceRbac => &["The network path to", "lacks a data-plane role"],
        C::ServicePublicPath => &[
            "saw this request come from a public address",
            "168.63.129.16",
            "vnetRouteAllEnabled",
        ],
        C::ServiceNotService => &["did not come from", "x-ms-request-id", "proxy"],
        C::IdentityUnavailable => &[
            "The route works",
            "managed identity is not enabled",
            "IDENTITY_ENDPOINT",
        ],
        C::SmbRefused => &[
            "Nothing accepted TCP 445",
            "NSG",
            "privatelink.file.core.windows.net",
        ],
        C::SmbTimeout => &["NSG", "vnetContentShareEnabled"],
        C::SmbNotSmb => &["not an SMB2/3 server"],
        other => panic!("the battery has no decisive words for {other}"),
    }
}

/// Every class the battery produces, to read a class back from a JSON report.
const CLASSES: &[FailureClass] = &[
    FailureClass::DnsNxdomain,
    FailureClass::DnsServfail,
    FailureClass::DnsRefused,
    FailureClass::DnsTimeout,
    FailureClass::DnsNoRecords,
    FailureClass::DnsError,
    FailureClass::DnsPublicAddress,
    FailureClass::DnsDivergent,
    FailureClass::TcpRefused,
    FailureClass::TcpTimeout,
    FailureClass::TcpReset,
    FailureClass::TcpForbidden,
    FailureClass::TlsUntrusted,
    FailureClass::TlsExpired,
    FailureClass::TlsNameMismatch,
    FailureClass::TlsHandshake,
    FailureClass::TlsTimeout,
    FailureClass::TdsPrelogin,
    FailureClass::TdsTimeout,
    FailureClass::TdsLoginFailed,
    FailureClass::TdsRedirect,
    FailureClass::TdsQuery,
    FailureClass::HttpStatus,
    FailureClass::HttpTimeout,
    FailureClass::HttpRedirects,
    FailureClass::HttpTooLarge,
    FailureClass::HttpProtocol,
    FailureClass::Deadline,
];

/// The class named `s` in a JSON report.
fn class_named(s: &str) -> FailureClass {
    *CLASSES
        .iter()
        .find(|c| c.to_string() == s)
        .unwrap_or_else(|| panic!("not a battery class: {s}"))
}

/// `t`'s hint contains every one of `words`.
fn hint_has(case: &str, t: &TargetReport, words: &[&str]) {
    let hint = support::engine::hint(t);
    for w in words {
        assert!(hint.contains(w), "{case}: the hint lacks {w:?}: {hint}");
    }
}

/// `t`'s hint contains none of `words` (a cause this case rules out).
fn hint_lacks(case: &str, t: &TargetReport, words: &[&str]) {
    let hint = support::engine::hint(t);
    for w in words {
        assert!(
            !hint.contains(w),
            "{case}: the hint wrongly says {w:?}: {hint}"
        );
    }
}

// ------------------------------------------------------------------ shared peers

fn nodns() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

/// A listener that accepts, then resets (`rst`) or closes every connection.
async fn accept_then(rst: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            if rst {
                s.set_zero_linger().unwrap();
            }
            drop(s);
        }
    });
    addr
}

/// Names on loopback, a private CA and a leaf for every name the TLS, TDS and HTTP
/// cases use.
struct TlsFx {
    dns: DnsServer,
    ca: Ca,
    pem: PemFiles,
    leaf: certs::Material,
}

async fn tls_fx() -> TlsFx {
    certs::install_crypto_provider();
    let ca = Ca::new("battery CA");
    let leaf = ca.issue(&LeafSpec::new(["api.internal.test", SQL, "localhost"]));
    let pem = PemFiles::write(&ca, &leaf);
    let dns = DnsServer::start(
        Zone::privatelink_fixture()
            .a("api.internal.test", "127.0.0.1", 60)
            .a("node1.worker.database.windows.net", "127.0.0.1", 60),
    )
    .await;
    TlsFx { dns, ca, pem, leaf }
}

impl TlsFx {
    fn ca_engine(&self) -> String {
        format!("ca_file = \"{}\"", self.pem.ca.display())
    }
}

fn tds_cfg(f: &TlsFx) -> TdsConfig {
    TdsConfig::default()
        .encrypted(Encryption::Required, f.leaf.clone())
        .user("app", PASSWORD)
}
