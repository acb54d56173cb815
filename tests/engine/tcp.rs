//! TCP layer against real sockets on loopback: open, refused (bind then drop), blackholed
//! (a listener whose accept queue is full, so SYNs are dropped), reset and closed right
//! after accept, and, inside a network namespace this test creates, unreachable and
//! forbidden (EPERM from a netfilter drop). Each asserts the class, not just failure.

use crate::support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use routeproof::probe::Engine;
use routeproof::report::{FailureClass, Layer, Report};
use support::dns::{DnsServer, Zone};
use support::engine::{build, class, engine_toml, no_env, parse, tcp_ev};
use tokio::net::TcpListener;

fn engine(dns: Option<SocketAddr>, engine_extra: &str) -> (Arc<Engine>, String) {
    // No DNS is needed for IP targets; a dead loopback port keeps resolv.conf out of it.
    let dns = dns.unwrap_or_else(|| "127.0.0.1:9".parse().unwrap());
    let head = engine_toml(&[dns], engine_extra, &[("dns", "1s"), ("tcp", "400ms")]);
    (build(&head, &no_env).0, head)
}

async fn run(
    dns: Option<SocketAddr>,
    engine_extra: &str,
    targets: &str,
    deadline: Option<Duration>,
) -> Report {
    let (engine, head) = engine(dns, engine_extra);
    let cfg = parse(&format!("{head}\n{targets}"), &no_env);
    engine.run(&cfg.targets, deadline).await
}

fn tcp_target(addr: SocketAddr) -> String {
    format!("[[targets]]\ntarget = \"tcp://{addr}\"\n")
}

#[tokio::test]
async fn open_port_through_dns_uses_the_reported_address_and_never_looks_up_again() {
    let dns = DnsServer::start(Zone::privatelink_fixture()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = run(
        Some(dns.addr),
        "",
        &format!(
            "[[targets]]\ntarget = \"tcp://loopsql.database.windows.net:{port}\"\nprivate = true\n"
        ),
        None,
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Tcp));
    assert_eq!(
        t.layers.iter().map(|l| l.layer).collect::<Vec<_>>(),
        [Layer::Dns, Layer::Tcp]
    );
    let e = tcp_ev(t);
    assert_eq!(
        e.peer,
        Some(SocketAddr::new("127.0.0.1".parse().unwrap(), port))
    );
    assert!(
        e.local
            .is_some_and(|l| l.ip().is_loopback() && l.port() != 0),
        "{e:?}"
    );
    assert!(
        e.settle_ms.is_some(),
        "bare tcp:// targets are watched for a reset"
    );
    // One A and one AAAA query: the TCP layer did not resolve the name again.
    assert_eq!(dns.queries(), 2);
    let (conn, _) = listener.accept().await.unwrap();
    assert_eq!(
        Some(conn.peer_addr().unwrap()),
        e.local,
        "the reported local address is the real one"
    );
}

#[tokio::test]
async fn refused() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let r = run(None, "", &tcp_target(addr), None).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TcpRefused), "{t:#?}");
    assert_eq!(t.failure.as_ref().unwrap().layer, Some(Layer::Tcp));
    // An IP target has no DNS layer, and the refused connect is not a reached layer.
    assert_eq!(t.reached, None);
    assert_eq!(tcp_ev(t).peer, Some(addr));
    assert!(
        t.failure
            .as_ref()
            .unwrap()
            .hint
            .contains(&format!("port {}", addr.port()))
    );
}

#[tokio::test]
async fn blackholed_is_timeout() {
    let (addr, _keep, _held) = support::net::blackholed().await;
    let r = run(None, "", &tcp_target(addr), None).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TcpTimeout), "{t:#?}");
    assert!(t.failure.as_ref().unwrap().hint.contains("NSG"));
}

#[tokio::test]
async fn blackholed_past_the_run_deadline_is_deadline() {
    let (addr, _keep, _held) = support::net::blackholed().await;
    let r = run(
        None,
        "",
        &tcp_target(addr),
        Some(Duration::from_millis(150)),
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::Deadline), "{t:#?}");
    assert_eq!(t.failure.as_ref().unwrap().layer, Some(Layer::Tcp));
}

#[tokio::test]
async fn reset_right_after_accept() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            s.set_zero_linger().unwrap();
            drop(s); // RST, not FIN
        }
    });
    let r = run(None, "tcp_settle = \"300ms\"", &tcp_target(addr), None).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TcpReset), "{t:#?}");
    assert!(
        t.failure.as_ref().unwrap().message.contains("reset"),
        "{t:#?}"
    );
}

#[tokio::test]
async fn closed_right_after_accept() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s); // FIN
        }
    });
    let r = run(None, "tcp_settle = \"300ms\"", &tcp_target(addr), None).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TcpReset), "{t:#?}");
    assert!(
        t.failure.as_ref().unwrap().message.contains("FIN"),
        "{t:#?}"
    );
}

#[tokio::test]
async fn first_address_dead_second_connects_is_a_pass_with_a_warning() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // 127.0.0.2 is loopback too, but nothing listens there on this port.
    let dns = DnsServer::start(Zone::new().a("pair.example.test", "127.0.0.2", 60).a(
        "pair.example.test",
        "127.0.0.1",
        60,
    ))
    .await;
    let target = format!("[[targets]]\ntarget = \"tcp://pair.example.test:{port}\"\n");
    let r = run(Some(dns.addr), "tcp_settle = \"0s\"", &target, None).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let e = tcp_ev(t);
    assert_eq!(e.attempts.len(), 2);
    assert_eq!(e.attempts[0].class, Some(FailureClass::TcpRefused));
    assert!(e.attempts[1].ok);
    assert_eq!(
        e.peer,
        Some(SocketAddr::new("127.0.0.1".parse().unwrap(), port))
    );
    assert!(
        t.warnings.iter().any(|w| w.contains("127.0.0.2")),
        "{:?}",
        t.warnings
    );

    // With every address required, the dead one fails the target.
    let r = run(
        Some(dns.addr),
        "tcp_settle = \"0s\"\nall_addresses = true",
        &target,
        None,
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TcpRefused), "{t:#?}");
    assert_eq!(tcp_ev(t).attempts.len(), 2);
    drop(listener);
}

/// Runs `f` on a thread moved into a fresh network namespace (only a down `lo`), so
/// nothing it sends can leave it. Returns None when namespaces are not allowed here.
fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread, which is ours and exits after `f`.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return None;
        }
        Some(f())
    })
    .join()
    .unwrap()
}

fn probe_blocking(target: &str) -> Report {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(
        None,
        "tcp_settle = \"0s\"",
        &format!("[[targets]]\ntarget = \"{target}\"\n"),
        None,
    ))
}

#[test]
fn unreachable_inside_a_namespace_without_routes() {
    // `lo` is down in a new namespace, so even 127.0.0.1 has no route.
    let Some(r) = in_new_netns(|| probe_blocking("tcp://127.0.0.1:9")) else {
        support::skip(
            "unreachable",
            "cannot create a network namespace (needs CAP_SYS_ADMIN)",
        );
        return;
    };
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TcpUnreachable), "{t:#?}");
    assert!(t.failure.as_ref().unwrap().hint.contains("route"));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn forbidden_when_the_platform_refuses_the_socket() {
    for (errno, name) in [(libc::EACCES, "EACCES"), (libc::EPERM, "EPERM")] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let out = std::thread::spawn(move || {
            if !support::net::deny_connect_on_this_thread(errno) {
                return None;
            }
            Some(probe_blocking(&format!("tcp://{addr}")))
        })
        .join()
        .unwrap();
        let Some(r) = out else {
            support::skip("forbidden", "seccomp not available here");
            return;
        };
        let t = &r.targets[0];
        assert_eq!(class(t), Some(FailureClass::TcpForbidden), "{name}: {t:#?}");
        assert!(
            t.failure.as_ref().unwrap().hint.contains("sandbox"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn max_ms_expectation() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The settle window alone (200 ms) exceeds max_ms = 50 once the probe is counted whole.
    let r = run(
        None,
        "tcp_settle = \"200ms\"",
        &format!("[[targets]]\ntarget = \"tcp://{addr}\"\nmax_ms = 50\n"),
        None,
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::ExpectMaxMs), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Tcp));
    assert!(t.layers.iter().all(|l| l.ok));
    drop(listener);
}

#[tokio::test]
async fn ipv6_loopback_target() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("SKIPPED ipv6: ::1 not available");
        return;
    };
    let addr = listener.local_addr().unwrap();
    let r = run(None, "tcp_settle = \"0s\"", &tcp_target(addr), None).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(
        tcp_ev(t).peer.map(|p| p.ip()),
        Some("::1".parse::<IpAddr>().unwrap())
    );
}
