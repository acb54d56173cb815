//! DNS layer against real DNS servers on loopback: an in-process hickory-server with a
//! Private-Link-shaped zone, a silent socket, and unbound end to end. Every assertion is
//! on the layer and the failure class, not just pass/fail.

use crate::support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use routeproof::addr::AddrClass;
use routeproof::probe::Engine;
use routeproof::report::{FailureClass, Layer, Report};
use support::dns::{DnsServer, Zone};
use support::engine::{build, class, dns_ev, engine_toml, no_env, parse};
use support::net::SilentDns;

/// An engine asking `servers` in order, with short timeouts so failures come quickly.
fn engine(servers: &[std::net::SocketAddr], extra: &str) -> (Arc<Engine>, String) {
    let head = engine_toml(
        servers,
        &format!("tcp_settle = \"0s\"\n{extra}"),
        &[("dns", "800ms"), ("tcp", "1s")],
    );
    (build(&head, &no_env).0, head)
}

async fn run(servers: &[std::net::SocketAddr], targets: &str) -> Report {
    run_with(servers, "", targets, None).await
}

async fn run_with(
    servers: &[std::net::SocketAddr],
    extra: &str,
    targets: &str,
    deadline: Option<Duration>,
) -> Report {
    let (engine, head) = engine(servers, extra);
    let cfg = parse(&format!("{head}\n{targets}"), &no_env);
    engine.run(&cfg.targets, deadline).await
}

#[tokio::test]
async fn private_link_chain_is_reported_in_order_with_the_answering_server() {
    let dns = DnsServer::start(Zone::privatelink_fixture()).await;
    let r = run(
        &[dns.addr],
        "[[targets]]\nname = \"sql\"\ntarget = \"dns://myserver.database.windows.net\"\nprivate = true\naddresses = [\"10.1.0.0/16\"]\n",
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Dns));
    let d = dns_ev(t);
    assert_eq!(d.server.as_deref(), Some(dns.addr.to_string().as_str()));
    assert_eq!(d.rcode.as_deref(), Some("NOERROR"));
    assert_eq!(d.query, "myserver.database.windows.net.");
    assert_eq!(d.cname_chain.len(), 1);
    assert_eq!(d.cname_chain[0].name, "myserver.database.windows.net.");
    assert_eq!(
        d.cname_chain[0].target,
        "myserver.privatelink.database.windows.net."
    );
    assert_eq!(d.cname_chain[0].ttl, 60);
    assert_eq!(d.addresses.len(), 1);
    assert_eq!(d.addresses[0].ip, "10.1.2.4".parse::<IpAddr>().unwrap());
    assert_eq!(d.addresses[0].class, AddrClass::Private);
    assert_eq!(d.addresses[0].ttl, 60);
    // A single server: no per-server comparison block, no disagreement.
    assert!(d.servers.is_empty() && !d.disagreement);
    assert!(r.ok);
    assert_eq!(r.environment.resolvers[0].server, dns.addr.to_string());
}

#[tokio::test]
async fn public_answer_behind_a_privatelink_hop_is_dns_public_address() {
    let dns = DnsServer::start(Zone::privatelink_fixture()).await;
    let r = run(
        &[dns.addr],
        "[[targets]]\ntarget = \"tcp://publicsql.database.windows.net:1433\"\nprivate = true\n",
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::DnsPublicAddress), "{t:#?}");
    // The server answered: the route is proven as far as DNS, and TCP never ran (so no
    // connection to the public address was attempted).
    assert_eq!(t.reached, Some(Layer::Dns));
    assert_eq!(t.layers.len(), 1);
    assert_eq!(t.skipped[0].layer, Layer::Tcp);
    let d = dns_ev(t);
    assert_eq!(d.cname_chain.len(), 2);
    assert_eq!(d.addresses[0].class, AddrClass::Public);
    let hint = &t.failure.as_ref().unwrap().hint;
    assert!(hint.contains("privatelink.database.windows.net"), "{hint}");
    assert!(hint.contains("not linked"), "{hint}");
}

#[tokio::test]
async fn rcode_failures_are_classified() {
    let dns = DnsServer::start(Zone::privatelink_fixture()).await;
    let r = run(
        &[dns.addr],
        r#"
[[targets]]
name = "nx"
target = "tcp://nosuch.database.windows.net:1433"
[[targets]]
name = "servfail"
target = "dns://x.servfail.test"
[[targets]]
name = "refused"
target = "dns://x.refused.test"
[[targets]]
name = "nodata"
target = "dns://empty.database.windows.net"
[[targets]]
name = "addr"
target = "dns://local.database.windows.net"
addresses = ["10.0.0.0/8"]
"#,
    )
    .await;
    let want = [
        (
            "nx",
            FailureClass::DnsNxdomain,
            Some(Layer::Dns),
            Some("NXDOMAIN"),
        ),
        ("servfail", FailureClass::DnsServfail, None, None),
        ("refused", FailureClass::DnsRefused, None, None),
        (
            "nodata",
            FailureClass::DnsNoRecords,
            Some(Layer::Dns),
            Some("NOERROR"),
        ),
        (
            "addr",
            FailureClass::ExpectAddresses,
            Some(Layer::Dns),
            Some("NOERROR"),
        ),
    ];
    for (t, (name, cls, reached, rcode)) in r.targets.iter().zip(want) {
        assert_eq!(t.name, name);
        assert_eq!(class(t), Some(cls), "{name}: {t:#?}");
        assert_eq!(t.reached, reached, "{name}");
        assert_eq!(dns_ev(t).rcode.as_deref(), rcode, "{name}");
        let f = t.failure.as_ref().unwrap();
        assert_eq!(f.layer, Some(Layer::Dns), "{name}");
        assert!(!f.hint.is_empty() && !f.message.is_empty(), "{name}");
        assert!(!t.ok);
    }
    assert!(!r.ok);
    assert_eq!(r.summary.failed, 5);
}

#[tokio::test]
async fn silent_server_is_dns_timeout() {
    let silent = SilentDns::start();
    let r = run(
        &[silent.addr],
        "[[targets]]\ntarget = \"dns://myserver.database.windows.net\"\n",
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::DnsTimeout), "{t:#?}");
    assert_eq!(t.reached, None);
    assert_eq!(dns_ev(t).server, None);
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    let dns = DnsServer::start(
        Zone::new()
            .a("big.example.test", "127.0.0.7", 30)
            .truncate_udp("big.example.test"),
    )
    .await;
    let r = run(
        &[dns.addr],
        "[[targets]]\ntarget = \"dns://big.example.test\"\n",
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(
        dns_ev(t).addresses[0].ip,
        "127.0.0.7".parse::<IpAddr>().unwrap()
    );
    assert!(
        dns.queries() >= 2,
        "UDP then TCP: {} queries",
        dns.queries()
    );
}

#[tokio::test]
async fn cname_loop_fails_without_hanging() {
    let dns = DnsServer::start(Zone::privatelink_fixture()).await;
    let r = run(
        &[dns.addr],
        "[[targets]]\ntarget = \"tcp://loop1.database.windows.net:1433\"\n",
    )
    .await;
    let t = &r.targets[0];
    let c = class(t).expect("a CNAME loop cannot pass");
    assert!(
        matches!(c, FailureClass::DnsNoRecords | FailureClass::DnsError),
        "{c}: {t:#?}"
    );
    assert_eq!(t.layers.len(), 1, "TCP must not run");
    let chain = &dns_ev(t).cname_chain;
    assert!(chain.len() <= 2, "the loop is cut: {chain:?}");
}

#[tokio::test]
async fn other_record_types() {
    let zone = Zone::new()
        .txt("kv.example.test", "v=probe", 30)
        .mx("kv.example.test", 10, "mail.example.test", 30)
        .srv("_sql._tcp.example.test", 0, 5, 1433, "db.example.test", 30)
        .cname("www.example.test", "web.example.test", 30)
        .a("web.example.test", "127.0.0.9", 30);
    let dns = DnsServer::start(zone).await;
    let r = run(
        &[dns.addr],
        r#"
[[targets]]
target = "dns://kv.example.test?type=TXT"
[[targets]]
target = "dns://kv.example.test?type=MX"
[[targets]]
target = "dns://_sql._tcp.example.test?type=SRV"
[[targets]]
target = "dns://www.example.test?type=CNAME"
[[targets]]
target = "dns://kv.example.test?type=SRV"
"#,
    )
    .await;
    let data = |i: usize| {
        dns_ev(&r.targets[i])
            .records
            .iter()
            .map(|x| format!("{} {}", x.rtype, x.data))
            .collect::<Vec<_>>()
    };
    assert!(
        data(0)
            .iter()
            .any(|d| d.starts_with("TXT") && d.contains("v=probe")),
        "{:?}",
        data(0)
    );
    assert!(
        data(1).iter().any(|d| d == "MX 10 mail.example.test."),
        "{:?}",
        data(1)
    );
    assert!(
        data(2)
            .iter()
            .any(|d| d.starts_with("SRV") && d.contains("1433") && d.contains("db.example.test.")),
        "{:?}",
        data(2)
    );
    assert!(
        data(3).iter().any(|d| d == "CNAME web.example.test."),
        "{:?}",
        data(3)
    );
    for t in &r.targets[..4] {
        assert!(t.ok, "{t:#?}");
    }
    assert_eq!(class(&r.targets[4]), Some(FailureClass::DnsNoRecords));
}

#[tokio::test]
async fn two_servers_that_disagree_are_reported_per_server() {
    let azure_like = DnsServer::start(Zone::privatelink_fixture()).await;
    // A custom DNS server without the privatelink zone: public answer for the same name.
    let custom =
        DnsServer::start(Zone::new().a("myserver.database.windows.net", "20.1.1.1", 60)).await;
    let r = run(
        &[custom.addr, azure_like.addr],
        "[[targets]]\ntarget = \"dns://myserver.database.windows.net\"\n",
    )
    .await;
    let t = &r.targets[0];
    let d = dns_ev(t);
    // The first server's answer is what the app uses.
    assert_eq!(d.server.as_deref(), Some(custom.addr.to_string().as_str()));
    assert_eq!(d.addresses[0].ip, "20.1.1.1".parse::<IpAddr>().unwrap());
    assert!(d.disagreement);
    assert_eq!(d.servers.len(), 2);
    assert_eq!(
        d.servers[1].addresses,
        vec!["10.1.2.4".parse::<IpAddr>().unwrap()]
    );
    assert!(
        t.warnings.iter().any(|w| w.contains("disagree")),
        "{:?}",
        t.warnings
    );
    assert_eq!(custom.queries(), 1);
    assert_eq!(azure_like.queries(), 1);
}

#[tokio::test]
async fn failover_to_the_alternate_server_is_a_pass_with_a_warning() {
    let silent = SilentDns::start();
    let alt = DnsServer::start(Zone::privatelink_fixture()).await;
    let r = run(
        &[silent.addr, alt.addr],
        "[[targets]]\ntarget = \"dns://local.database.windows.net\"\n",
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let d = dns_ev(t);
    assert_eq!(d.server.as_deref(), Some(alt.addr.to_string().as_str()));
    assert_eq!(d.servers[0].class, Some(FailureClass::DnsTimeout));
    assert!(
        t.warnings
            .iter()
            .any(|w| w.contains("gave no usable answer")),
        "{:?}",
        t.warnings
    );
    // Disagreement is about answers, not failures.
    assert!(!d.disagreement);
}

#[tokio::test]
async fn every_server_failing_reports_the_primary() {
    let a = DnsServer::start(Zone::new().servfail("svc.example.test")).await;
    let b = DnsServer::start(Zone::new().refused("svc.example.test")).await;
    let r = run(
        &[a.addr, b.addr],
        "[[targets]]\ntarget = \"dns://svc.example.test\"\n",
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::DnsServfail));
    let msg = &t.failure.as_ref().unwrap().message;
    assert!(
        msg.contains("every server failed") && msg.contains("dns.refused"),
        "{msg}"
    );
}

#[tokio::test]
async fn run_deadline_cuts_a_slow_lookup_and_marks_it_deadline() {
    let dns = DnsServer::start(
        Zone::privatelink_fixture().delay("local.database.windows.net", Duration::from_secs(5)),
    )
    .await;
    let r = run_with(
        &[dns.addr],
        "",
        "[[targets]]\nname = \"slow\"\ntarget = \"dns://local.database.windows.net\"\n[[targets]]\nname = \"fast\"\ntarget = \"dns://myserver.database.windows.net\"\n",
        Some(Duration::from_millis(300)),
    )
    .await;
    assert_eq!(r.deadline_ms, 300.0);
    let slow = &r.targets[0];
    // The DNS timeout (800 ms) is longer than the run's 300 ms: the deadline binds.
    assert_eq!(class(slow), Some(FailureClass::Deadline), "{slow:#?}");
    assert_eq!(slow.layers[0].layer, Layer::Dns);
    let fast = &r.targets[1];
    assert!(fast.ok, "what finished is returned: {fast:#?}");
}

#[tokio::test]
async fn targets_waiting_for_a_slot_at_the_deadline_are_marked_deadline() {
    let silent = SilentDns::start();
    let mut targets = String::new();
    for i in 0..4 {
        targets.push_str(&format!(
            "[[targets]]\nname = \"t{i}\"\ntarget = \"dns://n{i}.example.test\"\n"
        ));
    }
    let r = run_with(
        &[silent.addr],
        "concurrency = 1",
        &targets,
        Some(Duration::from_millis(400)),
    )
    .await;
    assert_eq!(r.targets.len(), 4);
    // The first holds the only slot until its 800 ms DNS timeout is cut at 400 ms.
    assert_eq!(class(&r.targets[0]), Some(FailureClass::Deadline));
    for t in &r.targets[1..] {
        assert_eq!(class(t), Some(FailureClass::Deadline), "{t:#?}");
        assert!(t.layers.is_empty(), "never started: {t:#?}");
        assert_eq!(t.skipped[0].reason, "not run: run deadline");
    }
    // Order is config order, whatever finished first.
    let names: Vec<&str> = r.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["t0", "t1", "t2", "t3"]);
}

#[tokio::test]
async fn unbound_end_to_end() {
    let ub = match support::unbound::Unbound::start() {
        Ok(u) => u,
        Err(why) => {
            support::skip(
                "unbound_end_to_end",
                &format!("{why} (apt-get install unbound)"),
            );
            return;
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = run(
        &[ub.addr],
        &format!(
            "[[targets]]\ntarget = \"tcp://loopsql.database.windows.net:{port}\"\nprivate = true\n[[targets]]\ntarget = \"dns://x.servfail.test\"\n[[targets]]\ntarget = \"dns://x.refused.test\"\n[[targets]]\ntarget = \"dns://x.nxdomain.test\"\n"
        ),
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Tcp));
    let d = dns_ev(t);
    assert_eq!(
        d.cname_chain[0].target,
        "loopsql.privatelink.database.windows.net."
    );
    assert!(
        d.addresses
            .iter()
            .any(|a| a.ip == "127.0.0.1".parse::<IpAddr>().unwrap()
                && a.class == AddrClass::Loopback)
    );
    assert_eq!(class(&r.targets[1]), Some(FailureClass::DnsServfail));
    assert_eq!(class(&r.targets[2]), Some(FailureClass::DnsRefused));
    assert_eq!(class(&r.targets[3]), Some(FailureClass::DnsNxdomain));
}
