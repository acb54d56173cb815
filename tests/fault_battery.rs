//! The fault battery: one named test per real-world failure shape, each against a real
//! misbehaving peer on loopback (tests/support), each asserting the failing layer, the
//! failure class and the engine's deadline contract (`duration_ms <= deadline_ms` plus
//! scheduling grace). A process-wide panic hook counts panics anywhere (including inside
//! spawned tasks whose panics a JoinHandle would swallow); every case asserts none
//! happened, and one case runs the real binary with RUST_BACKTRACE=1 over several
//! faults and fails on any "panicked at" in its stderr. Loopback only.

mod support;

use std::net::SocketAddr;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use routeproof::config;
use routeproof::probe::Engine;
use routeproof::report::{Evidence, FailureClass, Layer, Report, TargetReport};
use support::certs::{self, Ca, LeafSpec, PemFiles, Validity};
use support::dns::{DnsServer, SilentDns, Zone};
use support::host::{App, Caller, TARGETS_MIXED};
use support::tds::{Encryption, Fault, TdsConfig, TdsServer};
use support::web;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

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
    count_panics();
    let h = head(dns, extra);
    let cfg = config::parse(&format!("{h}\n{targets}"), &env).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(cfg.engine, "config", &env).unwrap();
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

/// The one target of `r` failed at `layer` with `class`.
fn expect<'a>(case: &str, r: &'a Report, layer: Layer, class: FailureClass) -> &'a TargetReport {
    let t = &r.targets[0];
    let f = t
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("{case}: expected {class}, target passed: {t:#?}"));
    assert_eq!(f.class, class, "{case}: {t:#?}");
    assert_eq!(f.layer, Some(layer), "{case}: {t:#?}");
    assert!(!f.message.is_empty() && !f.hint.is_empty(), "{case}");
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

// ------------------------------------------------------------------ DNS

async fn dns_case(case: &str, zone: Zone, uri: &str, class: FailureClass) {
    let dns = DnsServer::start(zone).await;
    let r = probe(dns.addr, "", &one(uri, ""), None).await;
    expect(case, &r, Layer::Dns, class);
}

#[tokio::test]
async fn dns_nxdomain() {
    dns_case(
        "dns_nxdomain",
        Zone::privatelink_fixture(),
        "tcp://nosuch.database.windows.net:1433",
        FailureClass::DnsNxdomain,
    )
    .await;
}

#[tokio::test]
async fn dns_servfail() {
    dns_case(
        "dns_servfail",
        Zone::new().servfail("svc.example.test"),
        "dns://svc.example.test",
        FailureClass::DnsServfail,
    )
    .await;
}

#[tokio::test]
async fn dns_refused() {
    dns_case(
        "dns_refused",
        Zone::new().refused("svc.example.test"),
        "dns://svc.example.test",
        FailureClass::DnsRefused,
    )
    .await;
}

#[tokio::test]
async fn dns_silent_server() {
    let silent = SilentDns::start();
    let r = probe(silent.addr, "", &one("dns://svc.example.test", ""), None).await;
    let t = expect(
        "dns_silent_server",
        &r,
        Layer::Dns,
        FailureClass::DnsTimeout,
    );
    assert_eq!(t.reached, None);
}

#[tokio::test]
async fn dns_dropped_queries() {
    dns_case(
        "dns_dropped_queries",
        Zone::new()
            .a("svc.example.test", "127.0.0.1", 60)
            .drop_queries("svc.example.test"),
        "dns://svc.example.test",
        FailureClass::DnsTimeout,
    )
    .await;
}

#[tokio::test]
async fn dns_truncated_answer_is_retried_over_tcp() {
    let dns = DnsServer::start(
        Zone::new()
            .a("big.example.test", "127.0.0.7", 30)
            .truncate_udp("big.example.test"),
    )
    .await;
    let r = probe(dns.addr, "", &one("dns://big.example.test", ""), None).await;
    let t = &r.targets[0];
    assert!(t.ok, "TC=1 over UDP must be retried over TCP: {t:#?}");
    assert_eq!(t.reached, Some(Layer::Dns));
    assert!(dns.queries() >= 2, "UDP then TCP");
    assert_no_panics("dns_truncated_answer_is_retried_over_tcp");
}

#[tokio::test]
async fn dns_cname_loop() {
    let dns = DnsServer::start(Zone::privatelink_fixture()).await;
    let r = probe(
        dns.addr,
        "",
        &one("tcp://loop1.database.windows.net:1433", ""),
        None,
    )
    .await;
    let t = &r.targets[0];
    let f = t.failure.as_ref().expect("a CNAME loop cannot pass");
    assert!(
        matches!(f.class, FailureClass::DnsNoRecords | FailureClass::DnsError),
        "{t:#?}"
    );
    assert_eq!(f.layer, Some(Layer::Dns));
    assert_eq!(t.layers.len(), 1, "TCP must not run");
    assert_no_panics("dns_cname_loop");
}

#[tokio::test]
async fn dns_public_answer_for_a_privatelink_name() {
    let dns = DnsServer::start(Zone::privatelink_fixture()).await;
    let r = probe(
        dns.addr,
        "",
        &one(
            "tcp://publicsql.database.windows.net:1433",
            "private = true",
        ),
        None,
    )
    .await;
    let t = expect(
        "dns_public_answer_for_a_privatelink_name",
        &r,
        Layer::Dns,
        FailureClass::DnsPublicAddress,
    );
    assert_eq!(t.layers.len(), 1, "no connection to the public address");
}

#[tokio::test]
async fn dns_split_answers_between_two_servers() {
    count_panics();
    let azure_like = DnsServer::start(Zone::privatelink_fixture()).await;
    let custom =
        DnsServer::start(Zone::new().a("myserver.database.windows.net", "20.1.1.1", 60)).await;
    let text = format!(
        "{}\n{}",
        head(custom.addr, "").replace(
            &format!("[\"{}\"]", custom.addr),
            &format!("[\"{}\", \"{}\"]", custom.addr, azure_like.addr)
        ),
        one("dns://myserver.database.windows.net", "private = true")
    );
    let cfg = config::parse(&text, &env).unwrap();
    let engine = Engine::new(cfg.engine, "config", &env).unwrap();
    let r = engine.run(&cfg.targets, Some(RUN_DEADLINE)).await;
    assert!(r.duration_ms <= r.deadline_ms + GRACE_MS);
    let t = &r.targets[0];
    let f = t
        .failure
        .as_ref()
        .expect("the app's server answered public");
    assert!(
        matches!(
            f.class,
            FailureClass::DnsPublicAddress | FailureClass::DnsDivergent
        ),
        "{t:#?}"
    );
    assert_eq!(f.layer, Some(Layer::Dns));
    let Evidence::Dns(d) = &t.layers[0].evidence else {
        panic!("{t:#?}")
    };
    assert!(d.disagreement, "{d:#?}");
    assert_eq!(d.servers.len(), 2);
    assert_no_panics("dns_split_answers_between_two_servers");
}

#[tokio::test]
async fn dns_answer_slower_than_the_run_deadline() {
    let dns = DnsServer::start(
        Zone::privatelink_fixture().delay("local.database.windows.net", Duration::from_secs(5)),
    )
    .await;
    let r = probe(
        dns.addr,
        "",
        &one("dns://local.database.windows.net", ""),
        Some(Duration::from_millis(300)),
    )
    .await;
    // The per-query timeout (600 ms) is longer than the run's 300 ms: the deadline binds.
    expect(
        "dns_answer_slower_than_the_run_deadline",
        &r,
        Layer::Dns,
        FailureClass::Deadline,
    );
}

// ------------------------------------------------------------------ TCP

fn nodns() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

#[tokio::test]
async fn tcp_refused() {
    let addr = dead_port();
    let r = probe(nodns(), "", &one(&format!("tcp://{addr}"), ""), None).await;
    let t = expect("tcp_refused", &r, Layer::Tcp, FailureClass::TcpRefused);
    assert_eq!(t.reached, None);
}

#[tokio::test]
async fn tcp_blackholed() {
    let (addr, _keep, _held) = support::net::blackholed().await;
    let r = probe(nodns(), "", &one(&format!("tcp://{addr}"), ""), None).await;
    expect("tcp_blackholed", &r, Layer::Tcp, FailureClass::TcpTimeout);
}

#[tokio::test]
async fn tcp_blackholed_past_the_run_deadline() {
    let (addr, _keep, _held) = support::net::blackholed().await;
    let r = probe(
        nodns(),
        "",
        &one(&format!("tcp://{addr}"), ""),
        Some(Duration::from_millis(200)),
    )
    .await;
    expect(
        "tcp_blackholed_past_the_run_deadline",
        &r,
        Layer::Tcp,
        FailureClass::Deadline,
    );
}

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

#[tokio::test]
async fn tcp_reset_after_accept() {
    let addr = accept_then(true).await;
    let r = probe(
        nodns(),
        "tcp_settle = \"300ms\"",
        &one(&format!("tcp://{addr}"), ""),
        None,
    )
    .await;
    expect(
        "tcp_reset_after_accept",
        &r,
        Layer::Tcp,
        FailureClass::TcpReset,
    );
}

#[tokio::test]
async fn tcp_closed_after_accept() {
    let addr = accept_then(false).await;
    let r = probe(
        nodns(),
        "tcp_settle = \"300ms\"",
        &one(&format!("tcp://{addr}"), ""),
        None,
    )
    .await;
    expect(
        "tcp_closed_after_accept",
        &r,
        Layer::Tcp,
        FailureClass::TcpReset,
    );
}

#[cfg(target_arch = "x86_64")]
#[tokio::test]
async fn tcp_eacces_from_the_platform() {
    count_panics();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            if !support::net::deny_connect_on_this_thread(libc::EACCES) {
                return None;
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            Some(rt.block_on(probe(nodns(), "", &one(&format!("tcp://{addr}"), ""), None)))
        })
        .join()
        .unwrap()
    })
    .await
    .unwrap();
    let Some(r) = out else {
        support::skip("tcp_eacces_from_the_platform", "seccomp not available");
        return;
    };
    expect(
        "tcp_eacces_from_the_platform",
        &r,
        Layer::Tcp,
        FailureClass::TcpForbidden,
    );
}

// ------------------------------------------------------------------ TLS

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

async fn tls_cert_case(
    case: &str,
    leaf: impl FnOnce(&TlsFx) -> certs::Material,
    class: FailureClass,
) {
    let f = tls_fx().await;
    let srv = web::https(leaf(&f).server_config(&[], &[b"http/1.1"])).await;
    let r = probe(
        f.dns.addr,
        &f.ca_engine(),
        &one(
            &format!("https://api.internal.test:{}/", srv.addr.port()),
            "",
        ),
        None,
    )
    .await;
    let t = expect(case, &r, Layer::Tls, class);
    assert_eq!(
        t.reached,
        Some(Layer::Tls),
        "{case}: the server answered with a certificate"
    );
    let Some(Evidence::Tls(e)) = t
        .layers
        .iter()
        .map(|l| &l.evidence)
        .find(|e| matches!(e, Evidence::Tls(_)))
    else {
        panic!("{case}: no TLS evidence")
    };
    assert!(!e.chain.is_empty(), "{case}: the chain is kept on failure");
}

#[tokio::test]
async fn tls_untrusted() {
    tls_cert_case(
        "tls_untrusted",
        |_| certs::self_signed(&LeafSpec::new(["api.internal.test"])),
        FailureClass::TlsUntrusted,
    )
    .await;
}

#[tokio::test]
async fn tls_expired() {
    tls_cert_case(
        "tls_expired",
        |f| {
            f.ca.issue(&LeafSpec::new(["api.internal.test"]).validity(Validity::Expired))
        },
        FailureClass::TlsExpired,
    )
    .await;
}

#[tokio::test]
async fn tls_not_yet_valid() {
    tls_cert_case(
        "tls_not_yet_valid",
        |f| {
            f.ca.issue(&LeafSpec::new(["api.internal.test"]).validity(Validity::NotYetValid))
        },
        FailureClass::TlsExpired,
    )
    .await;
}

#[tokio::test]
async fn tls_name_mismatch() {
    tls_cert_case(
        "tls_name_mismatch",
        |f| f.ca.issue(&LeafSpec::new(["someone-else.test"])),
        FailureClass::TlsNameMismatch,
    )
    .await;
}

#[tokio::test]
async fn tls_handshake_stall() {
    let f = tls_fx().await;
    let silent = web::silent().await;
    let r = probe(
        f.dns.addr,
        "",
        &one(
            &format!("tls://api.internal.test:{}", silent.addr.port()),
            "",
        ),
        None,
    )
    .await;
    expect(
        "tls_handshake_stall",
        &r,
        Layer::Tls,
        FailureClass::TlsTimeout,
    );
}

#[tokio::test]
async fn tls_alert_from_the_server() {
    let f = tls_fx().await;
    // Only an ALPN protocol the client does not offer: no_application_protocol alert.
    let srv = web::https(f.leaf.server_config(&[], &[b"x-other"])).await;
    let r = probe(
        f.dns.addr,
        &f.ca_engine(),
        &one(
            &format!("https://api.internal.test:{}/", srv.addr.port()),
            "",
        ),
        None,
    )
    .await;
    let t = expect(
        "tls_alert_from_the_server",
        &r,
        Layer::Tls,
        FailureClass::TlsHandshake,
    );
    let msg = &t.failure.as_ref().unwrap().message;
    assert!(msg.contains("no_application_protocol"), "{msg}");
}

#[tokio::test]
async fn tls_to_a_plain_http_port() {
    let f = tls_fx().await;
    let plain = web::http().await;
    let r = probe(
        f.dns.addr,
        "",
        &one(
            &format!("tls://api.internal.test:{}", plain.addr.port()),
            "",
        ),
        None,
    )
    .await;
    expect(
        "tls_to_a_plain_http_port",
        &r,
        Layer::Tls,
        FailureClass::TlsHandshake,
    );
}

// ------------------------------------------------------------------ TDS

fn tds_cfg(f: &TlsFx) -> TdsConfig {
    TdsConfig::default()
        .encrypted(Encryption::Required, f.leaf.clone())
        .user("app", PASSWORD)
}

async fn tds_case(
    case: &str,
    f: &TlsFx,
    srv: &TdsServer,
    extra: &str,
    layer: Layer,
    class: FailureClass,
) -> TargetReport {
    let uri = format!("sqlserver://{SQL}:{}/orders", srv.port());
    let r = probe(f.dns.addr, &f.ca_engine(), &one(&uri, extra), None).await;
    expect(case, &r, layer, class).clone()
}

const LOGIN: &str = "user = \"app\"\npassword = \"env:P\"";

async fn tds_fault(case: &str, fault: Fault, class: FailureClass, phase: &str) {
    let f = tls_fx().await;
    let mut cfg = tds_cfg(&f);
    cfg.fault = Some(fault);
    let srv = TdsServer::start(cfg).await;
    let t = tds_case(case, &f, &srv, LOGIN, Layer::Tds, class).await;
    let msg = &t.failure.as_ref().unwrap().message;
    assert!(msg.contains(phase), "{case}: {msg}");
}

#[tokio::test]
async fn tds_close_during_prelogin() {
    tds_fault(
        "tds_close_during_prelogin",
        Fault::CloseDuringPrelogin,
        FailureClass::TdsPrelogin,
        "",
    )
    .await;
}

#[tokio::test]
async fn tds_stall_during_prelogin() {
    tds_fault(
        "tds_stall_during_prelogin",
        Fault::StallDuringPrelogin,
        FailureClass::TdsTimeout,
        "prelogin",
    )
    .await;
}

#[tokio::test]
async fn tds_garbage_reply() {
    tds_fault(
        "tds_garbage_reply",
        Fault::GarbageReply,
        FailureClass::TdsPrelogin,
        "",
    )
    .await;
}

#[tokio::test]
async fn tds_close_during_tls_handshake() {
    tds_fault(
        "tds_close_during_tls_handshake",
        Fault::CloseDuringTlsHandshake,
        FailureClass::TlsHandshake,
        "",
    )
    .await;
}

#[tokio::test]
async fn tds_stall_during_login() {
    tds_fault(
        "tds_stall_during_login",
        Fault::StallDuringLogin,
        FailureClass::TdsTimeout,
        "login",
    )
    .await;
}

#[tokio::test]
async fn tds_stall_during_query() {
    tds_fault(
        "tds_stall_during_query",
        Fault::StallDuringQuery,
        FailureClass::TdsTimeout,
        "query",
    )
    .await;
}

#[tokio::test]
async fn tds_login_failed_18456() {
    let f = tls_fx().await;
    let srv = TdsServer::start(tds_cfg(&f)).await;
    let t = tds_case(
        "tds_login_failed_18456",
        &f,
        &srv,
        "user = \"app\"\npassword = \"wrong\"",
        Layer::Tds,
        FailureClass::TdsLoginFailed,
    )
    .await;
    assert_eq!(t.reached, Some(Layer::Tds), "18456 is an answer");
}

#[tokio::test]
async fn tds_redirect_to_a_dead_port() {
    let f = tls_fx().await;
    let mut cfg = tds_cfg(&f);
    cfg.route_to = Some((
        "node1.worker.database.windows.net".into(),
        dead_port().port(),
    ));
    let srv = TdsServer::start(cfg).await;
    let t = tds_case(
        "tds_redirect_to_a_dead_port",
        &f,
        &srv,
        LOGIN,
        Layer::Tds,
        FailureClass::TdsRedirect,
    )
    .await;
    assert!(t.failure.unwrap().message.contains("tcp.refused"));
}

#[tokio::test]
async fn tds_query_error() {
    let f = tls_fx().await;
    let mut cfg = tds_cfg(&f);
    cfg.query_error = Some((208, "Invalid object name 'nope'.".into()));
    let srv = TdsServer::start(cfg).await;
    tds_case(
        "tds_query_error",
        &f,
        &srv,
        "user = \"app\"\npassword = \"env:P\"\nquery = \"SELECT * FROM nope\"",
        Layer::Tds,
        FailureClass::TdsQuery,
    )
    .await;
}

// ------------------------------------------------------------------ HTTP

async fn http_case(
    case: &str,
    srv: &web::Server,
    path: &str,
    extra: &str,
    class: FailureClass,
) -> TargetReport {
    let f = tls_fx().await;
    let uri = format!("http://api.internal.test:{}{path}", srv.addr.port());
    let r = probe(f.dns.addr, "", &one(&uri, extra), None).await;
    expect(case, &r, Layer::Http, class).clone()
}

#[tokio::test]
async fn http_500() {
    let srv = web::http().await;
    let t = http_case("http_500", &srv, "/500", "", FailureClass::HttpStatus).await;
    assert_eq!(t.reached, Some(Layer::Http), "a status is an answer");
}

#[tokio::test]
async fn http_slow_first_byte_past_the_timeout() {
    let srv = web::http().await;
    let t = http_case(
        "http_slow_first_byte_past_the_timeout",
        &srv,
        "/slow",
        "",
        FailureClass::HttpTimeout,
    )
    .await;
    assert!(t.failure.unwrap().message.contains("first byte"));
}

#[tokio::test]
async fn http_slow_body() {
    let srv = web::stalled_body().await;
    let t = http_case("http_slow_body", &srv, "/", "", FailureClass::HttpTimeout).await;
    assert!(t.failure.unwrap().message.contains("transfer"));
}

#[tokio::test]
async fn http_redirect_loop() {
    let srv = web::http().await;
    http_case(
        "http_redirect_loop",
        &srv,
        "/loop-a",
        "follow_redirects = true",
        FailureClass::HttpRedirects,
    )
    .await;
}

#[tokio::test]
async fn http_oversized_body() {
    let srv = web::http().await;
    http_case(
        "http_oversized_body",
        &srv,
        "/big",
        "max_body_bytes = 1024",
        FailureClass::HttpTooLarge,
    )
    .await;
}

#[tokio::test]
async fn http_invalid_response() {
    let srv = web::not_http().await;
    http_case(
        "http_invalid_response",
        &srv,
        "/",
        "",
        FailureClass::HttpProtocol,
    )
    .await;
}

#[tokio::test]
async fn http_connection_closed_mid_headers() {
    let srv = web::raw(|mut s| async move {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").await;
    })
    .await;
    http_case(
        "http_connection_closed_mid_headers",
        &srv,
        "/",
        "",
        FailureClass::HttpProtocol,
    )
    .await;
}

// ------------------------------------------------------------------ handler

/// Handler cases must answer quickly with a JSON error, never hang.
async fn answered<T>(case: &str, f: impl std::future::Future<Output = T>) -> T {
    count_panics();
    let r = tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .unwrap_or_else(|_| panic!("{case}: no answer within 5 s"));
    assert_no_panics(case);
    r
}

fn error_class(body: &serde_json::Value) -> &str {
    body["error"]["class"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn handler_malformed_invocation_json() {
    let app = App::start(TARGETS_MIXED).await;
    let r = answered(
        "handler_malformed_invocation_json",
        app.host.post_payload("scheduled", "{\"Data\": {", IID),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(error_class(&r.json()), "envelope.invalid");
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn handler_malformed_request_json() {
    let app = App::start(TARGETS_MIXED).await;
    let c = Caller::post("/api/probe", "application/json", b"{\"targets\": [");
    let r = answered(
        "handler_malformed_request_json",
        app.host.forward(&c, IID, None),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(error_class(&r.json()), "request.invalid_json");
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn handler_wrong_content_type() {
    let app = App::start(TARGETS_MIXED).await;
    let c = Caller::post("/api/probe", "text/plain", b"tcp://10.0.0.1:1");
    let r = answered(
        "handler_wrong_content_type",
        app.host.forward(&c, IID, None),
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(error_class(&r.json()), "request.unsupported_media_type");
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn handler_oversized_request() {
    let app = App::start(TARGETS_MIXED).await;
    let big = vec![b'x'; 100 * 1024];
    let c = Caller::post("/api/probe", "application/json", &big).chunked();
    let r = answered("handler_oversized_request", app.host.proxy(&c, IID, None)).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(error_class(&r.json()), "request.too_large");
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn handler_unknown_function() {
    let app = App::start(TARGETS_MIXED).await;
    let r = answered(
        "handler_unknown_function",
        app.host.post_payload(
            "NoSuchFunction",
            "{\"Data\":{\"req\":{\"Url\":\"http://x/\",\"Method\":\"GET\"}},\"Metadata\":{}}",
            IID,
        ),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(error_class(&r.json()), "handler.unknown_function");
    assert_eq!(app.state.runs_started(), 0);
}

#[tokio::test]
async fn handler_deadline_reached_mid_run() {
    let silent = SilentDns::start();
    let settings = routeproof::handler::Settings {
        http_deadline: Duration::from_millis(400),
        ..Default::default()
    };
    // The engine's DNS timeout in the test app is 30 s: only the run deadline can end it.
    let app = App::start_with(
        "[[targets]]\nname = \"pe-dns\"\ntarget = \"dns://myserver.database.windows.net\"\n",
        settings,
        Some(silent.addr),
    )
    .await;
    let wall = Instant::now();
    let r = answered(
        "handler_deadline_reached_mid_run",
        app.host.forward(&Caller::get("/api/probe"), IID, None),
    )
    .await;
    let wall_ms = wall.elapsed().as_secs_f64() * 1e3;
    let b = r.json();
    assert_eq!(r.status, 503, "a failed run: {b}");
    let deadline = b["deadline_ms"].as_f64().unwrap();
    assert!(deadline <= 400.0, "{b}");
    assert!(
        b["duration_ms"].as_f64().unwrap() <= deadline + GRACE_MS,
        "{b}"
    );
    assert!(
        wall_ms <= deadline + 2.0 * GRACE_MS,
        "answered after {wall_ms:.0} ms"
    );
    let t = &b["targets"][0];
    assert_eq!(t["failure"]["class"], "deadline", "{b}");
    assert_eq!(t["failure"]["layer"], "dns", "{b}");
}

// ------------------------------------------------------------------ the real binary

/// The CLI over several faults at once, with RUST_BACKTRACE=1: stderr must carry no
/// panic message, the exit code must be 1 (targets failed), the JSON report complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_over_many_faults_never_panics() {
    let f = tls_fx().await;
    let silent_dns = SilentDns::start();
    let silent = web::silent().await;
    let not_http = web::not_http().await;
    let stalled = web::stalled_body().await;
    let (hole, _keep, _held) = support::net::blackholed().await;
    let rst = accept_then(true).await;
    let mut tds = tds_cfg(&f);
    tds.fault = Some(Fault::GarbageReply);
    let tds = TdsServer::start(tds).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("battery.toml");
    let targets = [
        "dns://nosuch.database.windows.net".to_string(),
        "dns://loop1.database.windows.net".to_string(),
        format!("tcp://{}", dead_port()),
        format!("tcp://{hole}"),
        format!("tcp://{rst}"),
        format!("tls://api.internal.test:{}", silent.addr.port()),
        format!("https://api.internal.test:{}/", not_http.addr.port()),
        format!("http://api.internal.test:{}/", not_http.addr.port()),
        format!("http://api.internal.test:{}/", stalled.addr.port()),
        format!("sqlserver://{SQL}:{}", tds.port()),
    ];
    let mut text = head(f.dns.addr, "tcp_settle = \"100ms\"").replace(
        &format!("[\"{}\"]", f.dns.addr),
        &format!("[\"{}\", \"{}\"]", f.dns.addr, silent_dns.addr),
    );
    for (i, t) in targets.iter().enumerate() {
        text.push_str(&format!("[[targets]]\nname = \"f{i}\"\ntarget = \"{t}\"\n"));
    }
    std::fs::write(&cfg, text).unwrap();
    let bin = env!("CARGO_BIN_EXE_routeproof");
    let cfg2 = cfg.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["probe", "--json", "--timeout", "3s", "--config"])
            .arg(&cfg2)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked at"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["targets"].as_array().unwrap().len(), targets.len());
    assert!(r["duration_ms"].as_f64().unwrap() <= r["deadline_ms"].as_f64().unwrap() + GRACE_MS);
    for t in r["targets"].as_array().unwrap() {
        assert_eq!(t["ok"], false, "{t}");
        assert!(t["failure"]["class"].is_string(), "{t}");
    }
}
