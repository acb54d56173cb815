//! Ad-hoc `/api/probe` requests against the handler, through the host emulator: off by
//! default; with an allow-list, every target outside it is `403 policy.denied` naming
//! the rule before any packet, or a per-target `policy.denied` after DNS; the limits
//! (targets per request, concurrent runs) hold; `env:` is never ad-hoc. Everything
//! listens on 127.0.0.1, and no denied target is ever connected to.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;

use routeproof::config;
use routeproof::handler::{Settings, State};
use serde_json::Value;
use support::dns::{DnsServer, Zone};
use support::host::{Caller, Host};
use support::net::SilentDns;
use tokio::net::{TcpListener, TcpStream};

const IID: &str = "7d3f1a2b-0000-4000-8000-000000000006";
const POLICY: &str =
    "[policy]\nallow_adhoc = true\nallow = [\"10.0.0.0/8\", \"*.internal.contoso.com\"]\n";

fn zone() -> Zone {
    Zone::new()
        .a("rebind.internal.contoso.com", "127.0.0.1", 0)
        .a("imds.internal.contoso.com", "169.254.169.254", 0)
        .a("db.internal.contoso.com", "10.1.2.4", 0)
        .a("db.other.example", "10.1.2.7", 0)
        .a("www.other.example", "20.0.0.9", 0)
}

struct AdhocApp {
    host: Host,
    state: Arc<State>,
    addr: SocketAddr,
    _dns: Option<DnsServer>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The handler with `policy` in its config, the handler's own port known to the policy
/// (it binds first, as `serve` does), and an identity endpoint in its environment.
async fn start(policy: &str, settings: Settings, dns: Option<SocketAddr>) -> AdhocApp {
    let server = match dns {
        Some(_) => None,
        None => Some(DnsServer::start(zone()).await),
    };
    let dns_addr = dns.unwrap_or_else(|| server.as_ref().unwrap().addr);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let text = format!(
        "[engine]\ndns_servers = [\"{dns_addr}\"]\ntcp_settle = \"0s\"\n[engine.timeouts]\ndns = \"2s\"\ntcp = \"2s\"\n{policy}\n[[targets]]\nname = \"db\"\ntarget = \"dns://db.internal.contoso.com\"\n"
    );
    let cfg = config::parse(&text, &|_| None).unwrap();
    let env =
        |k: &str| (k == "IDENTITY_ENDPOINT").then(|| "http://10.9.9.9:8081/msi/token".to_string());
    let settings = Settings {
        handler_port: Some(addr.port()),
        ..settings
    };
    let state = State::new(cfg, settings, &env).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(routeproof::handler::run(
        listener,
        Arc::clone(&state),
        async move {
            let _ = stopped.await;
        },
    ));
    AdhocApp {
        host: Host::new(addr),
        state,
        addr,
        _dns: server,
        _stop: stop,
    }
}

fn q(target: &str) -> String {
    format!(
        "/api/probe?code=KEY&target={}",
        url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
    )
}

fn error(body: &Value) -> (&str, &str, &str) {
    (
        body["error"]["class"].as_str().unwrap_or("?"),
        body["error"]["rule"].as_str().unwrap_or("-"),
        body["error"]["message"].as_str().unwrap_or(""),
    )
}

async fn assert_no_connection_before_marker(listener: &TcpListener) {
    let marker = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (_, peer) = listener.accept().await.unwrap();
    assert_eq!(
        peer,
        marker.local_addr().unwrap(),
        "a denied target was connected to"
    );
}

#[tokio::test]
async fn adhoc_is_off_by_default_and_says_how_to_turn_it_on() {
    let app = start("", Settings::default(), None).await;
    for c in [
        Caller::get(&q("tcp://10.1.2.4:1433")),
        Caller::post(
            "/api/probe?code=KEY",
            "application/json",
            br#"{"targets":["tcp://10.1.2.4:1433"]}"#,
        ),
    ] {
        let r = app.host.forward(&c, IID, None).await;
        assert_eq!(r.status, 403);
        let b = r.json();
        let (class, rule, msg) = error(&b);
        assert_eq!((class, rule), ("policy.denied", "adhoc.off"));
        assert!(
            msg.contains("allow-list") && msg.contains("[policy]"),
            "{msg}"
        );
    }
    assert!(app.state.adhoc().is_none());
    // The kill switch: ROUTEPROOF_ALLOW_ADHOC=false wins over the config.
    let app = start(
        POLICY,
        Settings {
            allow_adhoc: Some(false),
            ..Settings::default()
        },
        None,
    )
    .await;
    let r = app
        .host
        .forward(&Caller::get(&q("tcp://10.1.2.4:1433")), IID, None)
        .await;
    assert_eq!(error(&r.json()).1, "adhoc.off");
}

#[tokio::test]
async fn switching_adhoc_on_needs_an_allow_list() {
    // By the app setting: refused at start-up, naming the setting.
    let cfg = config::parse("", &|_| None).unwrap();
    let s = Settings {
        allow_adhoc: Some(true),
        ..Settings::default()
    };
    let Err(e) = State::new(cfg, s, &|_| None) else {
        panic!("ad-hoc without an allow-list must not start");
    };
    assert_eq!(e.key, "ROUTEPROOF_ALLOW_ADHOC");
    assert!(e.message.contains("allow-list"), "{e}");
    // By the config: refused at load, naming the key.
    let e = config::parse("[policy]\nallow_adhoc = true\n", &|_| None).unwrap_err();
    assert_eq!(e.key, "policy.allow");
    // With an allow-list the app setting turns it on.
    let cfg = config::parse("[policy]\nallow = [\"10.0.0.0/8\"]\n", &|_| None).unwrap();
    let s = Settings {
        allow_adhoc: Some(true),
        ..Settings::default()
    };
    assert!(State::new(cfg, s, &|_| None).unwrap().adhoc().is_some());
}

#[tokio::test]
async fn targets_outside_the_policy_are_403_with_the_rule_before_any_packet() {
    let app = start(POLICY, Settings::default(), None).await;
    let own = app.addr.port();
    let table: Vec<(String, &str)> = vec![
        ("tcp://169.254.169.254:80".into(), "always.link_local"),
        (
            "http://169.254.169.254/metadata/instance".into(),
            "always.link_local",
        ),
        ("tcp://[fe80::1]:80".into(), "always.link_local"),
        (
            "tcp://[::ffff:169.254.169.254]:80".into(),
            "always.link_local",
        ),
        ("tcp://168.63.129.16:32526".into(), "always.azure_platform"),
        ("tcp://127.0.0.1:8081".into(), "always.loopback"),
        ("http://localhost:8081/msi/token".into(), "always.loopback"),
        ("tcp://0.0.0.0:80".into(), "always.unspecified"),
        (format!("tcp://10.1.2.4:{own}"), "always.handler_port"),
        ("tcp://10.9.9.9:8081".into(), "always.identity_endpoint"),
        ("tcp://8.8.8.8:53".into(), "allow_list"),
        ("sqlserver://db.internal.contoso.com".into(), "adhoc.scheme"),
        ("env:SqlConnectionString".into(), "adhoc.env"),
    ];
    for (t, rule) in &table {
        for mode in ["forward", "proxy", "payload"] {
            let caller = Caller::get(&q(t));
            let (status, body) = match mode {
                "forward" => {
                    let r = app.host.forward(&caller, IID, None).await;
                    (r.status, r.json())
                }
                "proxy" => {
                    let r = app.host.proxy(&caller, IID, None).await;
                    (r.status, r.json())
                }
                _ => {
                    let (_, o) = app.host.payload_http("probe", &caller, IID, None).await;
                    let c = o.succeeded().3.unwrap();
                    (c.status, c.json())
                }
            };
            assert_eq!(status, 403, "{mode} {t}: {body}");
            let (class, got, msg) = error(&body);
            assert_eq!((class, got), ("policy.denied", *rule), "{mode} {t}: {msg}");
            assert_eq!(body["invocation"]["id"], IID);
        }
    }
    // One bad target refuses the whole request: nothing runs.
    let r = app
        .host
        .forward(
            &Caller::post(
                "/api/probe?code=KEY",
                "application/json",
                br#"{"targets":["dns://db.internal.contoso.com","tcp://169.254.169.254:80"]}"#,
            ),
            IID,
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    let b = r.json();
    assert_eq!(error(&b).1, "always.link_local");
    assert_eq!(b["error"]["target"], "tcp://169.254.169.254:80");
    assert_eq!(app.state.adhoc_running(), 0);
    assert_eq!(
        app._dns.as_ref().unwrap().queries(),
        0,
        "a refused request sent a DNS query"
    );
}

#[tokio::test]
async fn refused_after_dns_is_a_per_target_policy_denied_and_nothing_connects() {
    let app = start(POLICY, Settings::default(), None).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = format!(
        r#"{{"targets":["tcp://rebind.internal.contoso.com:{port}","dns://imds.internal.contoso.com","dns://www.other.example","dns://db.internal.contoso.com","dns://db.other.example"]}}"#
    );
    let r = app
        .host
        .forward(
            &Caller::post("/api/probe?code=KEY", "application/json", body.as_bytes()),
            IID,
            None,
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    let b = r.json();
    assert_eq!(b["invocation"]["run"], "adhoc");
    let rules: Vec<(String, Value)> = b["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["failure"]["rule"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            (
                format!("tcp://rebind.internal.contoso.com:{port}"),
                Value::from("always.loopback")
            ),
            (
                "dns://imds.internal.contoso.com".into(),
                Value::from("always.link_local")
            ),
            ("dns://www.other.example".into(), Value::from("allow_list")),
            ("dns://db.internal.contoso.com".into(), Value::Null),
            ("dns://db.other.example".into(), Value::Null),
        ]
    );
    let rebind = &b["targets"][0];
    assert_eq!(rebind["failure"]["class"], "policy.denied");
    assert_eq!(rebind["reached"], "dns");
    assert_eq!(rebind["layers"].as_array().unwrap().len(), 1);
    assert_no_connection_before_marker(&listener).await;
}

#[tokio::test]
async fn allowed_adhoc_targets_run() {
    let app = start(POLICY, Settings::default(), None).await;
    let r = app
        .host
        .forward(&Caller::get(&q("dns://db.internal.contoso.com")), IID, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["invocation"]["run"], "adhoc");
    assert_eq!(b["targets"][0]["ok"], true);
    // Forward mode joins repeated keys with commas; both targets still arrive.
    let r = app
        .host
        .forward(
            &Caller::get(
                "/api/probe?target=dns://db.internal.contoso.com&target=dns://db.other.example",
            ),
            IID,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["summary"]["total"], 2);
    // Configured targets by name still work alongside.
    let r = app
        .host
        .forward(&Caller::get("/api/probe?name=db"), IID, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["invocation"]["run"], "new");
}

#[tokio::test]
async fn limits_and_request_shape() {
    let app = start(
        &format!("{POLICY}max_targets = 3\n"),
        Settings::default(),
        None,
    )
    .await;
    let post = |body: &str| Caller::post("/api/probe", "application/json", body.as_bytes());
    let cases: Vec<(Caller, u16, &str, &str)> = vec![
        (
            post(
                r#"{"targets":["dns://a.internal.contoso.com","dns://b.internal.contoso.com","dns://c.internal.contoso.com","dns://d.internal.contoso.com"]}"#,
            ),
            400,
            "request.too_many_targets",
            "at most 3",
        ),
        (
            post(r#"{"targets":[],"timeoutMs":5}"#),
            400,
            "request.invalid",
            "`timeoutMs`",
        ),
        (
            post(r#"{"targets":"dns://a.internal.contoso.com"}"#),
            400,
            "request.invalid",
            "not a list",
        ),
        (
            post(r#"{"targets":[]}"#),
            400,
            "request.invalid",
            "no ad-hoc target",
        ),
        (
            post(r#"{"targets":["ftp://x:21"]}"#),
            400,
            "request.invalid_target",
            "unknown scheme",
        ),
        (
            Caller::get("/api/probe?target=dns://db.internal.contoso.com&name=db"),
            400,
            "request.invalid",
            "cannot be combined",
        ),
    ];
    for (c, status, class, text) in cases {
        let r = app.host.forward(&c, IID, None).await;
        let b = r.json();
        assert_eq!(r.status, status, "{}: {b}", c.path_and_query);
        let (got, _, msg) = error(&b);
        assert_eq!(got, class, "{msg}");
        assert!(msg.contains(text), "{msg}");
    }
}

#[tokio::test]
async fn concurrent_adhoc_runs_beyond_the_limit_get_429() {
    // A DNS server that never answers keeps the first run in flight (until its 2 s DNS
    // timeout) while the second request arrives.
    let silent = SilentDns::start();
    let app = start(
        &format!("{POLICY}max_concurrent = 1\n"),
        Settings::default(),
        Some(silent.addr),
    )
    .await;
    let host = Host::new(app.host_addr());
    let first = tokio::spawn(async move {
        host.forward(&Caller::get(&q("dns://db.internal.contoso.com")), IID, None)
            .await
    });
    while app.state.adhoc_running() == 0 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let r = app
        .host
        .forward(&Caller::get(&q("dns://db.other.example")), IID, None)
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(error(&r.json()).0, "request.busy");
    // Configured targets are not ad-hoc and are not limited by the ad-hoc slots.
    let first = first.await.unwrap();
    assert_eq!(first.status, 503);
    assert_eq!(
        first.json()["targets"][0]["failure"]["class"],
        "dns.timeout"
    );
    assert_eq!(app.state.adhoc_running(), 0);
}

#[tokio::test]
async fn secrets_in_an_adhoc_request_are_not_echoed() {
    let app = start(POLICY, Settings::default(), None).await;
    for t in [
        "https://bob:PLANTED-userinfo@169.254.169.254/x?sig=PLANTED-sig&code=PLANTED-code",
        "https://bob:PLANTED-userinfo@db.internal.contoso.com:99999/",
        "tcp://h:1/?Password=PLANTED-pw",
    ] {
        let r = app.host.forward(&Caller::get(&q(t)), IID, None).await;
        assert!(r.status == 403 || r.status == 400, "{t}: {}", r.text());
        assert!(!r.text().contains("PLANTED"), "{t}: {}", r.text());
    }
}

impl AdhocApp {
    fn host_addr(&self) -> SocketAddr {
        self.addr
    }
}
