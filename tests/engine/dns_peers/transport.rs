//! How the DNS peers behave on the wire, as `dig` sees it: truncation and TCP fallback,
//! drops, silence and delays (the lower bounds on elapsed time prove the peer really
//! waits; they are not speed claims), EDNS, the query counter, the port's release, and
//! unbound serving the same zone.

use super::*;

#[tokio::test]
async fn truncated_udp_falls_back_to_tcp() {
    let dig_path = require_dig!();
    let zone = Zone::privatelink_fixture()
        .a("big.example.test", "127.0.0.42", 60)
        .truncate_udp("big.example.test");
    let server = DnsServer::start(zone).await;

    // UDP only, no retry: TC set and nothing in the answer.
    let udp = dig(
        &dig_path,
        server.addr,
        "big.example.test",
        "A",
        &["+notcp", "+ignore"],
    )
    .await;
    assert_eq!(udp.status(), "NOERROR", "{}", udp.stdout);
    assert!(udp.has_flag("tc"), "{}", udp.stdout);
    assert!(udp.answers.is_empty(), "{}", udp.stdout);
    assert_eq!(server.queries(), 1);

    // Default dig behaviour: sees TC and retries the same port over TCP.
    let auto = dig(&dig_path, server.addr, "big.example.test", "A", &[]).await;
    assert!(
        auto.stdout.contains("Truncated, retrying in TCP mode"),
        "{}",
        auto.stdout
    );
    assert_eq!(auto.status(), "NOERROR", "{}", auto.stdout);
    assert_eq!(
        auto.answer_pairs(),
        vec![("A", "127.0.0.42")],
        "{}",
        auto.stdout
    );
    assert_eq!(server.queries(), 3);

    // Straight to TCP: full answer, no TC.
    let tcp = dig(&dig_path, server.addr, "big.example.test", "A", &["+tcp"]).await;
    assert!(!tcp.has_flag("tc"), "{}", tcp.stdout);
    assert_eq!(
        tcp.answer_pairs(),
        vec![("A", "127.0.0.42")],
        "{}",
        tcp.stdout
    );

    // Other names on the same server are unaffected over UDP.
    let other = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &["+ignore"],
    )
    .await;
    assert!(!other.has_flag("tc"), "{}", other.stdout);
    assert_eq!(
        other.answer_pairs(),
        vec![("A", "127.0.0.10")],
        "{}",
        other.stdout
    );
}

#[tokio::test]
async fn dropped_queries_time_out_but_are_counted() {
    let dig_path = require_dig!();
    let zone = Zone::privatelink_fixture()
        .a("blackhole.example.test", "127.0.0.1", 60)
        .drop_queries("blackhole.example.test");
    let server = DnsServer::start(zone).await;

    let r = dig(
        &dig_path,
        server.addr,
        "blackhole.example.test",
        "A",
        &["+time=1"],
    )
    .await;
    assert!(r.timed_out(), "expected a timeout: {r:?}");
    assert!(r.elapsed >= Duration::from_millis(900), "{:?}", r.elapsed);
    assert_eq!(server.queries(), 1);

    let tcp = dig(
        &dig_path,
        server.addr,
        "blackhole.example.test",
        "A",
        &["+time=1", "+tcp"],
    )
    .await;
    assert!(tcp.timed_out(), "expected a timeout over TCP: {tcp:?}");

    // The server itself is alive.
    let ok = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(
        ok.answer_pairs(),
        vec![("A", "127.0.0.10")],
        "{}",
        ok.stdout
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    let dig_path = require_dig!();
    let silent = SilentDns::start();
    assert!(silent.addr.ip().is_loopback());
    let r = dig(
        &dig_path,
        silent.addr,
        "local.database.windows.net",
        "A",
        &["+time=1"],
    )
    .await;
    assert!(r.timed_out(), "expected a timeout: {r:?}");
    assert!(r.elapsed >= Duration::from_millis(900), "{:?}", r.elapsed);
}

#[tokio::test]
async fn delayed_answer_arrives_late() {
    let dig_path = require_dig!();
    let zone =
        Zone::privatelink_fixture().delay("local.database.windows.net", Duration::from_millis(400));
    let server = DnsServer::start(zone).await;

    let slow = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(
        slow.answer_pairs(),
        vec![("A", "127.0.0.10")],
        "{}",
        slow.stdout
    );
    assert!(
        slow.elapsed >= Duration::from_millis(400),
        "{:?}",
        slow.elapsed
    );

    // A delay longer than the client's patience looks like silence.
    let zone =
        Zone::privatelink_fixture().delay("local.database.windows.net", Duration::from_secs(3));
    let server = DnsServer::start(zone).await;
    let r = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &["+time=1"],
    )
    .await;
    assert!(r.timed_out(), "expected a timeout: {r:?}");
}

#[tokio::test]
async fn edns_is_echoed_only_when_sent() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    let with = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &["+edns=0"],
    )
    .await;
    assert!(with.stdout.contains("OPT PSEUDOSECTION"), "{}", with.stdout);
    assert!(with.stdout.contains("EDNS: version: 0"), "{}", with.stdout);
    let without = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &["+noedns"],
    )
    .await;
    assert!(
        !without.stdout.contains("OPT PSEUDOSECTION"),
        "{}",
        without.stdout
    );
    assert_eq!(
        without.answer_pairs(),
        vec![("A", "127.0.0.10")],
        "{}",
        without.stdout
    );
}

#[tokio::test]
async fn query_counter_counts_every_query() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    assert_eq!(server.queries(), 0);
    for (i, name) in [
        "local.database.windows.net",
        "nosuch.database.windows.net",
        "x.servfail.test",
    ]
    .into_iter()
    .enumerate()
    {
        dig(&dig_path, server.addr, name, "A", &[]).await;
        assert_eq!(server.queries(), i + 1);
    }
}

#[tokio::test]
async fn dropping_the_server_frees_the_port() {
    let addr = {
        let server = DnsServer::start(Zone::new()).await;
        server.addr
    };
    // The tasks are aborted on drop; give the runtime a moment to run the
    // aborts, which close the sockets.
    let mut freed = false;
    for _ in 0..50 {
        if std::net::UdpSocket::bind(addr).is_ok() && std::net::TcpListener::bind(addr).is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "port {addr} still bound after drop");
}

#[tokio::test]
async fn unbound_serves_the_same_privatelink_zone() {
    let dig_path = require_dig!();
    let unbound = match Unbound::start() {
        Ok(u) => u,
        Err(why) => {
            support::skip("unbound peer", &why);
            return;
        }
    };
    assert!(unbound.addr.ip().is_loopback());

    for transport in [&[][..], &["+tcp"][..]] {
        let a = dig(
            &dig_path,
            unbound.addr,
            "loopsql.database.windows.net",
            "A",
            transport,
        )
        .await;
        assert_eq!(a.status(), "NOERROR", "{}", a.stdout);
        assert!(a.has_flag("ra"), "{}", a.stdout);
        assert_eq!(
            a.answer_pairs(),
            vec![
                ("CNAME", "loopsql.privatelink.database.windows.net."),
                ("A", "127.0.0.1")
            ],
            "{}",
            a.stdout
        );
    }
    let aaaa = dig(
        &dig_path,
        unbound.addr,
        "loopsql.database.windows.net",
        "AAAA",
        &[],
    )
    .await;
    assert_eq!(
        aaaa.answer_pairs(),
        vec![
            ("CNAME", "loopsql.privatelink.database.windows.net."),
            ("AAAA", "::1")
        ],
        "{}",
        aaaa.stdout
    );
    let my = dig(
        &dig_path,
        unbound.addr,
        "myserver.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(
        my.answer_pairs(),
        vec![
            ("CNAME", "myserver.privatelink.database.windows.net."),
            ("A", "10.1.2.4")
        ],
        "{}",
        my.stdout
    );

    for (name, status) in [
        ("nosuch.database.windows.net", "NXDOMAIN"),
        ("x.nxdomain.test", "NXDOMAIN"),
        ("x.refused.test", "REFUSED"),
        ("x.servfail.test", "SERVFAIL"),
    ] {
        let r = dig(&dig_path, unbound.addr, name, "A", &[]).await;
        assert_eq!(r.status(), status, "{name}: {}", r.stdout);
    }
}
