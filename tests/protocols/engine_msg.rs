//! The messaging layers wired into the engine: config text -> `Engine::run` -> report,
//! against real RabbitMQ 3.10 (AMQP 1.0 plugin) and Tansu (Kafka-compatible, not Apache
//! Kafka), the same peers the protocol modules' own tests start (`msg_peers`). RabbitMQ
//! 3.10 has no AMQP 1.0 over WebSocket listener, so the WebSocket cases go through
//! `msg_peers::ws_bridge`, a loopback WebSocket server relaying to RabbitMQ's AMQP port:
//! the WebSocket answer is the bridge's (tungstenite), the AMQP answer RabbitMQ's.

use routeproof::report::{Evidence, FailureClass, Layer, Report, TargetReport};
use serde_json::Value;

use crate::msg_peers;
use crate::peers::{self, PLANTED_PASSWORD};
use crate::support::engine::{class, engine_toml, env_of, hint, layers, no_env, run, tls_ev};

fn head() -> String {
    let dns = "127.0.0.1:9".parse().unwrap();
    engine_toml(&[dns], "azure_dns = \"127.0.0.1:9\"", &[])
}

/// The protocol layer's evidence (`ProtocolEvidence.detail`).
fn detail(t: &TargetReport) -> &Value {
    t.layers
        .iter()
        .find_map(|l| match &l.evidence {
            Evidence::Protocol(p) => Some(&p.detail),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no protocol evidence: {t:#?}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn no_secret(r: &Report, secret: &str) {
    let json = serde_json::to_string(r).unwrap();
    assert!(!json.contains(secret), "the secret is in the JSON report");
    assert!(
        !format!("{r:?}").contains(secret),
        "the secret is in the Debug"
    );
}

/// A `SCHEME://` target through a loopback TLS terminator in front of `upstream`, with
/// the terminator's CA: the proxy's address and the report.
async fn behind_tls(scheme: &str, upstream: u16) -> (std::net::SocketAddr, Report) {
    let (proxy, ca) = msg_peers::tls_proxy_ca(upstream).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let text = format!(
        "{}[[targets]]\ntarget = \"{scheme}://127.0.0.1:{}\"\nsni = \"localhost\"\nca_file = \"{}\"\n",
        head(),
        proxy.port(),
        ca_file.display()
    );
    (proxy, peers::bounded(60, run(&text, &no_env, None)).await)
}

#[tokio::test]
async fn engine_amqp_rabbitmq_credential_free_login_and_wrong_password() {
    let Some(r) =
        msg_peers::rabbit("engine_amqp_rabbitmq_credential_free_login_and_wrong_password")
    else {
        return;
    };
    let tls = |extra: &str| {
        format!(
            "{}[[targets]]\ntarget = \"amqps://127.0.0.1:{}\"\nsni = \"localhost\"\nca_file = \"{}\"\n{extra}\n",
            head(),
            r.tls,
            r.ca_file().display()
        )
    };
    // Credential-free over TLS: the header echoed and the mechanisms listed, passed.
    let rep = peers::bounded(60, run(&tls(""), &no_env, None)).await;
    let t = &rep.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Amqp));
    assert_eq!(layers(t), vec![Layer::Tcp, Layer::Tls, Layer::Amqp]);
    assert!(
        !tls_ev(t).chain.is_empty(),
        "the certificate is the TLS layer's"
    );
    let d = detail(t);
    assert_eq!(d["header"], "AMQP 3.1.0.0");
    assert_eq!(
        strings(&d["mechanisms"]),
        ["ANONYMOUS", "PLAIN", "AMQPLAIN"]
    );
    assert_eq!(d["transport"], "tcp", "TLS is the TLS layer's, below");

    // Plain listener, SASL PLAIN login and open: the container id and frame size recorded.
    let text = format!(
        "{}[[targets]]\ntarget = \"amqp://127.0.0.1:{}\"\nuser = \"guest\"\npassword = \"env:AMQP_PW\"\n",
        head(),
        r.plain
    );
    let rep = run(&text, &env_of(&[("AMQP_PW", "guest")]), None).await;
    let t = &rep.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(layers(t), vec![Layer::Tcp, Layer::Amqp]);
    let d = detail(t);
    assert_eq!(d["mechanism"], "PLAIN");
    assert!(
        d["container_id"].as_str().is_some_and(|c| !c.is_empty()),
        "{d}"
    );
    assert!(d["max_frame_size"].as_u64().is_some(), "{d}");
    assert_eq!(d["properties"]["product"], "RabbitMQ");

    // A planted wrong password: amqp.auth_failed, reached, and the password nowhere.
    let rep = run(&text, &env_of(&[("AMQP_PW", PLANTED_PASSWORD)]), None).await;
    let t = &rep.targets[0];
    assert_eq!(class(t), Some(FailureClass::AmqpAuthFailed), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Amqp));
    assert!(hint(t).contains("refused the credential"), "{}", hint(t));
    assert!(
        hint(t).contains("https://servicebus.azure.net"),
        "{}",
        hint(t)
    );
    no_secret(&rep, PLANTED_PASSWORD);

    // A SAS policy (key name + key) and a connection string go through SASL PLAIN too
    // (RabbitMQ's guest/guest stands in for the policy name and key).
    let rep = run(
        &tls("sas_key_name = \"guest\"\nsas_key = \"env:K\""),
        &env_of(&[("K", "guest")]),
        None,
    )
    .await;
    assert!(rep.targets[0].ok, "{:#?}", rep.targets[0]);
    let cs = format!(
        "Endpoint=sb://127.0.0.1:{}/;SharedAccessKeyName=guest;SharedAccessKey={PLANTED_PASSWORD}",
        r.tls
    );
    let text = format!(
        "{}[[targets]]\nname = \"sb\"\ntarget = \"env:SB\"\nsni = \"localhost\"\nca_file = \"{}\"\n",
        head(),
        r.ca_file().display()
    );
    let rep = run(&text, &env_of(&[("SB", cs.as_str())]), None).await;
    let t = &rep.targets[0];
    assert_eq!(t.target, format!("amqps://127.0.0.1:{}", r.tls));
    assert_eq!(class(t), Some(FailureClass::AmqpAuthFailed), "{t:#?}");
    no_secret(&rep, PLANTED_PASSWORD);

    // TLS to the plain AMQP port: the handshake fails before any certificate, as AMQP's class.
    let text = format!(
        "{}[[targets]]\ntarget = \"amqps://127.0.0.1:{}\"\n",
        head(),
        r.plain
    );
    let rep = peers::bounded(30, run(&text, &no_env, None)).await;
    let t = &rep.targets[0];
    assert_eq!(class(t), Some(FailureClass::AmqpTlsRefused), "{t:#?}");
    assert_eq!(t.failure.as_ref().unwrap().layer, Some(Layer::Tls));
    assert_eq!(t.reached, Some(Layer::Tcp));
    assert!(
        hint(t).contains("the port is not TLS") && hint(t).contains("5671"),
        "{}",
        hint(t)
    );
}

#[tokio::test]
async fn engine_amqp_over_websocket_through_a_loopback_bridge() {
    let Some(r) = msg_peers::rabbit("engine_amqp_over_websocket_through_a_loopback_bridge") else {
        return;
    };
    let bridge = msg_peers::ws_bridge(r.plain).await;
    // Plain WebSocket (the bridge) to RabbitMQ: AMQPWSB10 agreed, SASL answered through it.
    let text = format!(
        "{}[[targets]]\ntarget = \"amqpws://127.0.0.1:{}\"\nuser = \"guest\"\npassword = \"guest\"\n",
        head(),
        bridge.port()
    );
    let rep = peers::bounded(60, run(&text, &no_env, None)).await;
    let t = &rep.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(layers(t), vec![Layer::Tcp, Layer::Amqp]);
    let d = detail(t);
    assert_eq!(d["transport"], "websocket");
    assert_eq!(d["websocket"]["subprotocol"], "AMQPWSB10", "{d}");
    assert_eq!(d["mechanism"], "PLAIN");

    // TLS in front of the bridge: amqpwss:// is TLS layer + WebSocket + AMQP, on 443's shape.
    let (proxy, rep) = behind_tls("amqpwss", bridge.port()).await;
    let t = &rep.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(layers(t), vec![Layer::Tcp, Layer::Tls, Layer::Amqp]);
    assert_eq!(
        t.target,
        format!("amqpwss://127.0.0.1:{}/$servicebus/websocket", proxy.port())
    );
    let d = detail(t);
    assert_eq!(d["transport"], "websocket");
    assert_eq!(
        strings(&d["mechanisms"]),
        ["ANONYMOUS", "PLAIN", "AMQPLAIN"]
    );

    // An HTTP server on the WebSocket port refuses the upgrade.
    let http = peers::http_server().await;
    let text = format!(
        "{}[[targets]]\ntarget = \"amqpws://127.0.0.1:{}\"\n",
        head(),
        http.port()
    );
    let rep = peers::bounded(30, run(&text, &no_env, None)).await;
    let t = &rep.targets[0];
    assert_eq!(class(t), Some(FailureClass::AmqpWebsocketRefused), "{t:#?}");
    assert!(hint(t).contains("AMQPWSB10"), "{}", hint(t));
}

#[tokio::test]
async fn engine_amqp_on_an_http_listener_is_not_this_protocol() {
    let addr = peers::http_server().await;
    let text = format!(
        "{}[[targets]]\ntarget = \"amqp://127.0.0.1:{}\"\n",
        head(),
        addr.port()
    );
    let rep = peers::bounded(30, run(&text, &no_env, None)).await;
    let t = &rep.targets[0];
    assert_eq!(class(t), Some(FailureClass::AmqpNotThisProtocol), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Tcp));
    assert!(
        hint(t).contains("not as AMQP 1.0") && hint(t).contains("5671"),
        "{}",
        hint(t)
    );
}

#[tokio::test]
async fn engine_kafka_tansu_api_versions_with_and_without_tls() {
    let Some(k) = msg_peers::tansu(
        "engine_kafka_tansu_api_versions_with_and_without_tls",
        false,
    ) else {
        return;
    };
    // Plain broker (tls = "disable"): ApiVersions answered; the TLS layer is not run.
    let text = format!(
        "{}[[targets]]\ntarget = \"kafka://127.0.0.1:{}\"\ntls = \"disable\"\n",
        head(),
        k.port
    );
    let rep = peers::bounded(60, run(&text, &no_env, None)).await;
    let t = &rep.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Kafka));
    assert_eq!(layers(t), vec![Layer::Tcp, Layer::Kafka]);
    let d = detail(t);
    assert_eq!(d["api_versions_error"], 0);
    let range = d["api_key_range"].as_array().expect("range");
    assert_eq!(range[0], 0, "{d}");
    assert!(range[1].as_i64().unwrap() >= 18, "{d}");

    // TLS in front (Tansu's own TLS listener cannot be used, see msg_peers::tls_proxy).
    let (_, rep) = behind_tls("kafka", k.port).await;
    let t = &rep.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(layers(t), vec![Layer::Tcp, Layer::Tls, Layer::Kafka]);
    assert!(!tls_ev(t).chain.is_empty());
}

#[tokio::test]
async fn engine_kafka_plain_login_advertised_brokers_and_refusal() {
    // Tansu offers SCRAM and OAUTHBEARER, not PLAIN: the PLAIN login goes to the contract
    // stub of kafka.rs (its answers from the Apache Kafka protocol guide and Microsoft's
    // "Use Azure Event Hubs from Apache Kafka applications").
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let ok = crate::kafka::plain_stub(0, tx).await;
    let cs = format!(
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey={PLANTED_PASSWORD}"
    );
    let target = |port: u16| {
        format!(
            "{}[[targets]]\ntarget = \"kafka://127.0.0.1:{port}\"\ntls = \"disable\"\nconnection_string = \"env:EH\"\n",
            head()
        )
    };
    let env = env_of(&[("EH", cs.as_str())]);
    let rep = peers::bounded(30, run(&target(ok.port()), &env, None)).await;
    let t = &rep.targets[0];
    assert!(t.ok, "{t:#?}");
    let d = detail(t);
    assert_eq!(strings(&d["brokers"]), ["ns.servicebus.windows.net:9093"]);
    assert_eq!(d["mechanism"], "PLAIN");
    let sent = rx.recv().await.expect("SaslAuthenticate");
    assert!(sent.starts_with(b"\0$ConnectionString\0"));
    no_secret(&rep, PLANTED_PASSWORD);

    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let refused = crate::kafka::plain_stub(58, tx).await;
    let rep = peers::bounded(30, run(&target(refused.port()), &env, None)).await;
    let t = &rep.targets[0];
    assert_eq!(class(t), Some(FailureClass::KafkaAuthFailed), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Kafka));
    assert!(hint(t).contains("$ConnectionString"), "{}", hint(t));
    no_secret(&rep, PLANTED_PASSWORD);
}

#[tokio::test]
async fn engine_kafka_on_an_http_listener_is_not_this_protocol() {
    let addr = peers::http_server().await;
    let text = format!(
        "{}[[targets]]\ntarget = \"kafka://127.0.0.1:{}\"\ntls = \"disable\"\n",
        head(),
        addr.port()
    );
    let rep = peers::bounded(30, run(&text, &no_env, None)).await;
    let t = &rep.targets[0];
    assert_eq!(class(t), Some(FailureClass::KafkaNotThisProtocol), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Tcp));
    assert!(hint(t).contains("not as a Kafka broker"), "{}", hint(t));
}
