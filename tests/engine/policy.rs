//! The engine's address-policy hook against a loopback DNS server: the check runs on
//! the resolved addresses, between DNS and TCP, and a refused address is never
//! connected to (DNS rebinding to loopback or IMDS gains nothing). Every answer that is
//! not loopback belongs to a `dns://` target, which never connects.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;

use routeproof::config;
use routeproof::policy::Policy;
use routeproof::probe::{AddressPolicy, Engine};
use routeproof::report::{FailureClass, Layer, TargetReport};
use support::dns::{DnsServer, Zone};
use support::engine::{build, engine_toml, no_env};
use tokio::net::{TcpListener, TcpStream};

fn zone() -> Zone {
    Zone::new()
        .a("rebind.internal.contoso.com", "127.0.0.1", 0)
        .a("imds.internal.contoso.com", "169.254.169.254", 0)
        .aaaa("imds6.internal.contoso.com", "fe80::1", 0)
        .a("platform.internal.contoso.com", "168.63.129.16", 0)
        .a("db.internal.contoso.com", "10.1.2.4", 0)
        .a("db.other.example", "10.1.2.7", 0)
        .a("www.other.example", "20.0.0.9", 0)
}

fn policy(allow: &str) -> Arc<Policy> {
    let cfg = config::parse(
        &format!("[policy]\nallow_adhoc = true\nallow = [{allow}]\n"),
        &|_| None,
    )
    .unwrap();
    Arc::new(Policy::new(&cfg.policy, None, &|_| None))
}

fn engine(dns: SocketAddr) -> Arc<Engine> {
    let text = engine_toml(
        &[dns],
        "tcp_settle = \"0s\"",
        &[("dns", "2s"), ("tcp", "2s")],
    );
    build(&text, &no_env).0
}

fn targets(uris: &[String]) -> Vec<config::TargetConfig> {
    uris.iter()
        .map(|u| config::TargetConfig::adhoc(routeproof::target::parse_uri(u).unwrap()))
        .collect()
}

fn denied(t: &TargetReport) -> Option<&str> {
    let f = t.failure.as_ref()?;
    (f.class == FailureClass::PolicyDenied).then(|| f.rule.as_deref().unwrap_or("?"))
}

/// Proves no connection reached `listener` before now without waiting for anything:
/// connect a marker and check it is the first connection the listener accepts
/// (completed connections are accepted in order).
async fn assert_no_connection_before_marker(listener: &TcpListener) {
    let marker = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (_, peer) = listener.accept().await.unwrap();
    assert_eq!(
        peer,
        marker.local_addr().unwrap(),
        "something connected to the listener before the marker"
    );
}

#[tokio::test]
async fn resolved_addresses_are_checked_before_tcp_and_never_connected_to() {
    let dns = DnsServer::start(zone()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let engine = engine(dns.addr);
    let p = policy("\"10.0.0.0/8\", \"*.internal.contoso.com\"");

    let uris: Vec<String> = [
        format!("tcp://rebind.internal.contoso.com:{port}"),
        "dns://imds.internal.contoso.com".into(),
        "dns://imds6.internal.contoso.com?type=AAAA".into(),
        "dns://platform.internal.contoso.com".into(),
        "dns://db.internal.contoso.com".into(),
        "dns://db.other.example".into(),
        "dns://www.other.example".into(),
    ]
    .into();
    // Every one passes the pre-check: names inside a pattern, or names the networks
    // may admit once resolved. Only their answers can refuse them.
    for t in targets(&uris) {
        assert!(p.check_target(&t.spec).is_ok(), "{}", t.name);
    }
    let hook: Arc<dyn AddressPolicy> = p.clone();
    let r = engine.run_with(&targets(&uris), None, Some(hook)).await;
    let got: Vec<(&str, Option<&str>)> = r
        .targets
        .iter()
        .map(|t| (t.name.as_str(), denied(t)))
        .collect();
    let rebind = format!("tcp://rebind.internal.contoso.com:{port}");
    assert_eq!(
        got,
        vec![
            (rebind.as_str(), Some("always.loopback")),
            ("dns://imds.internal.contoso.com", Some("always.link_local")),
            (
                "dns://imds6.internal.contoso.com?type=AAAA",
                Some("always.link_local")
            ),
            (
                "dns://platform.internal.contoso.com",
                Some("always.azure_platform")
            ),
            ("dns://db.internal.contoso.com", None),
            ("dns://db.other.example", None),
            ("dns://www.other.example", Some("allow_list")),
        ]
    );
    let t = &r.targets[0];
    // DNS answered (and is in the report); TCP never ran.
    assert_eq!(t.reached, Some(Layer::Dns));
    assert_eq!(t.layers.len(), 1, "{t:#?}");
    assert_eq!(t.skipped[0].layer, Layer::Tcp);
    assert!(
        t.skipped[0]
            .reason
            .contains("refused by policy (always.loopback)")
    );
    let f = t.failure.as_ref().unwrap();
    assert!(f.message.contains("127.0.0.1 is loopback"), "{}", f.message);
    assert!(f.hint.contains("allow-list"), "{}", f.hint);
    assert_eq!(t.route[0].ip.to_string(), "127.0.0.1");
    assert!(r.targets[4].ok && r.targets[5].ok);
    let www = r.targets[6].failure.as_ref().unwrap();
    assert!(
        www.message
            .contains("www.other.example resolved to 20.0.0.9")
            && www.message.contains("10.0.0.0/8, *.internal.contoso.com"),
        "{}",
        www.message
    );
    assert_no_connection_before_marker(&listener).await;

    // The same target without a policy (a configured target) does connect: the hook,
    // not an accident of the fixture, is what kept the connection from happening.
    let r = engine.run(&targets(&[rebind]), None).await;
    assert!(r.targets[0].ok, "{:#?}", r.targets[0]);
    let (_, peer) = listener.accept().await.unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.1");
}

#[tokio::test]
async fn a_report_line_names_the_rule() {
    let dns = DnsServer::start(zone()).await;
    let engine = engine(dns.addr);
    let p: Arc<dyn AddressPolicy> = policy("\"*.internal.contoso.com\"");
    let r = engine
        .run_with(
            &targets(&["dns://imds.internal.contoso.com".to_string()]),
            None,
            Some(p),
        )
        .await;
    let text = routeproof::render::text::render(&r);
    assert!(
        text.contains("=> policy.denied (always.link_local): 169.254.169.254 is link-local"),
        "{text}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["targets"][0]["failure"]["rule"], "always.link_local");
}
