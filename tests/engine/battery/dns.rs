//! DNS faults: NXDOMAIN, SERVFAIL, REFUSED, silence, drops, truncation, CNAME loops,
//! public answers for privatelink names, split answers and answers past the deadline.

use super::*;
use routeproof::report::Evidence;
use support::net::SilentDns;

async fn dns_case(case: &str, zone: Zone, uri: &str, class: FailureClass) -> TargetReport {
    let dns = DnsServer::start(zone).await;
    let r = probe(dns.addr, "", &one(uri, ""), None).await;
    expect(case, &r, Layer::Dns, class).clone()
}

#[tokio::test]
async fn dns_nxdomain() {
    let t = dns_case(
        "dns_nxdomain",
        Zone::privatelink_fixture(),
        "tcp://nosuch.database.windows.net:1433",
        FailureClass::DnsNxdomain,
    )
    .await;
    // No privatelink hop: the hint is the custom server's, and must not blame a record
    // missing from a private zone the name never reached.
    hint_has(
        "dns_nxdomain",
        &t,
        &["This DNS server", "linked to the VNet"],
    );
    hint_lacks("dns_nxdomain", &t, &["A record is missing"]);
}

#[tokio::test]
async fn dns_servfail() {
    let t = dns_case(
        "dns_servfail",
        Zone::new().servfail("svc.example.test"),
        "dns://svc.example.test",
        FailureClass::DnsServfail,
    )
    .await;
    hint_has(
        "dns_servfail",
        &t,
        &["WEBSITE_DNS_SERVER", "inside the VNet"],
    );
}

#[tokio::test]
async fn dns_refused() {
    let t = dns_case(
        "dns_refused",
        Zone::new().refused("svc.example.test"),
        "dns://svc.example.test",
        FailureClass::DnsRefused,
    )
    .await;
    hint_has("dns_refused", &t, &["recursion"]);
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
    hint_has(
        "dns_silent_server",
        t,
        &["WEBSITE_DNS_SERVER", "route tables"],
    );
}

#[tokio::test]
async fn dns_dropped_queries() {
    let t = dns_case(
        "dns_dropped_queries",
        Zone::new()
            .a("svc.example.test", "127.0.0.1", 60)
            .drop_queries("svc.example.test"),
        "dns://svc.example.test",
        FailureClass::DnsTimeout,
    )
    .await;
    hint_has(
        "dns_dropped_queries",
        &t,
        &["firewall", "down or not reachable"],
    );
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
    hint_has("dns_cname_loop", t, decisive(f.class));
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
    // Through privatelink: the hint names the zone and the virtual-network link.
    hint_has(
        "dns_public_answer_for_a_privatelink_name",
        t,
        &[
            "went through privatelink.database.windows.net",
            "private DNS zone privatelink.database.windows.net is not linked to the app's VNet",
            "Virtual network links",
        ],
    );
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
    let (engine, cfg) = support::engine::build(&text, &env);
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
    hint_has(
        "dns_split_answers_between_two_servers",
        t,
        decisive(f.class),
    );
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
    let t = expect(
        "dns_answer_slower_than_the_run_deadline",
        &r,
        Layer::Dns,
        FailureClass::Deadline,
    );
    hint_has(
        "dns_answer_slower_than_the_run_deadline",
        t,
        &["Functions timeout", "layer timeouts"],
    );
}
