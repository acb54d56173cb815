//! Managed-identity logins of the messaging layers through the engine (config text ->
//! `Engine::run` -> report), the tokens from the emulated App Service identity endpoint
//! of `support::identity`: AMQP CBS `put-token` (type `jwt`) against the CBS contract
//! stub of `amqp/cbs.rs` (no real CBS peer runs here), which accepts exactly the issued
//! token; Kafka OAUTHBEARER against the contract stub of `kafka.rs` (what reaches the
//! wire) and against a real broker, Tansu 0.6 with `--authentication`, whose OAUTHBEARER
//! refuses every token (tansu-auth 0.6 validates PLAIN and SCRAM-* only).

use std::io::Write;
use std::sync::{Arc, Mutex};

use routeproof::probe::identity::resource;
use routeproof::report::{Evidence, FailureClass, Layer, Report, TargetReport};

use crate::amqp::cbs::{CbsAnswer, cbs_stub};
use crate::identity::failed;
use crate::msg_peers;
use crate::peers;
use crate::support::engine::{engine_toml, env_of, hint, run};
use crate::support::identity::{IdentityEndpoint, down_url, jwt};

const HEADER: &str = "idh-PLANTED-msg-4b2e";
const OID: &str = "9a8b7c6d-0000-4111-8222-333344445555";

/// A TRACE log sink for this test's thread (the tokio test runtime is single-threaded,
/// so the engine's tasks log here).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `target` (a `[[targets]]` body) with the identity endpoint's `env`, logging
/// everything at TRACE into the returned text.
async fn probe(target: &str, env: &[(&str, String)]) -> (Report, String) {
    let text = format!(
        "{}[[targets]]\n{target}\n",
        engine_toml(
            &["127.0.0.1:9".parse().unwrap()],
            "azure_dns = \"127.0.0.1:9\"",
            &[("login", "3s")]
        )
    );
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let report = {
        let _guard = tracing::subscriber::set_default(subscriber);
        peers::bounded(60, run(&text, &env_of(&pairs), None)).await
    };
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    (report, logs)
}

/// No token or identity header in the report (JSON, Debug, text) nor in the logs.
fn clean(r: &Report, logs: &str, tokens: &[&str]) {
    let outputs = [
        serde_json::to_string(r).unwrap(),
        format!("{r:?}"),
        routeproof::render::text::render(r),
        logs.to_string(),
    ];
    for s in tokens.iter().chain([&HEADER]) {
        for (i, out) in outputs.iter().enumerate() {
            assert!(!out.contains(s), "a secret leaked into output {i}: {out}");
        }
    }
}

fn protocol(t: &TargetReport) -> (&serde_json::Value, serde_json::Value) {
    match &t.layers.last().expect("a layer").evidence {
        Evidence::Protocol(p) => (
            &p.detail,
            serde_json::to_value(p.identity.as_ref().expect("identity evidence")).unwrap(),
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn amqp_cbs_put_token_with_the_identity_token() {
    let token = jwt(resource::SERVICE_BUS, OID);
    let issued: &'static str = Box::leak(token.clone().into_boxed_str());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let addr = cbs_stub(CbsAnswer::Jwt(issued), tx).await;
    let idp = IdentityEndpoint::start(HEADER, &[(resource::SERVICE_BUS, &token)], &[]).await;
    let target = format!(
        "target = \"amqp://127.0.0.1:{}/orders\"\nauthentication = \"managed_identity\"",
        addr.port()
    );

    // The issued token: CBS answers 202, the connection opens.
    let (r, logs) = probe(&target, &idp.env()).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let (d, id) = protocol(t);
    assert_eq!(d["cbs"]["status_code"], 202, "{d}");
    assert_eq!(d["cbs"]["token_type"], "jwt", "{d}");
    assert_eq!(d["container_id"], "stub-container", "{d}");
    assert_eq!(id["resource"], resource::SERVICE_BUS, "{id}");
    assert_eq!(id["identity"], "system-assigned", "{id}");
    let seen = idp.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].resource.as_deref(), Some(resource::SERVICE_BUS));
    let _sasl_init = rx.recv().await.expect("sasl-init");
    let put = rx.recv().await.expect("put-token");
    let body = put
        .iter()
        .filter_map(|v| v.as_described())
        .find(|(c, _)| *c == routeproof::probe::amqp::codec::code::AMQP_VALUE)
        .expect("token body");
    assert_eq!(body.1.as_str(), Some(token.as_str()));
    clean(&r, &logs, &[&token]);

    // The same login over WebSockets (amqpws://, a loopback bridge to the CBS stub).
    let bridge = msg_peers::ws_bridge(addr.port()).await;
    let ws = format!(
        "target = \"amqpws://127.0.0.1:{}\"\nauthentication = \"managed_identity\"",
        bridge.port()
    );
    let (r, logs) = probe(&ws, &idp.env()).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let (d, id) = protocol(t);
    assert_eq!(d["transport"], "websocket", "{d}");
    assert_eq!(d["cbs"]["status_code"], 202, "{d}");
    assert_eq!(id["resource"], resource::SERVICE_BUS, "{id}");
    assert_eq!(idp.seen().len(), 2, "a new run asks the endpoint again");
    clean(&r, &logs, &[&token]);

    // Another token: CBS refuses it, amqp.auth_failed naming the data roles.
    let other = jwt(
        resource::SERVICE_BUS,
        "00000000-0000-4000-8000-0000000000aa",
    );
    let wrong = IdentityEndpoint::start(HEADER, &[(resource::SERVICE_BUS, &other)], &[]).await;
    let (r, logs) = probe(&target, &wrong.env()).await;
    let t = failed(&r, FailureClass::AmqpAuthFailed, Layer::Amqp);
    for words in [
        "Azure Service Bus Data Sender",
        "Azure Event Hubs Data Sender",
        "https://servicebus.azure.net",
    ] {
        assert!(hint(t).contains(words), "hint lacks {words}: {}", hint(t));
    }
    assert_eq!(protocol(t).1["resource"], resource::SERVICE_BUS);
    clean(&r, &logs, &[&other, &token]);

    // The endpoint is down: identity.unavailable after AMQP answered credential-free.
    let env = [
        ("IDENTITY_ENDPOINT", down_url()),
        ("IDENTITY_HEADER", HEADER.to_string()),
    ];
    let (r, logs) = probe(&target, &env).await;
    let t = failed(&r, FailureClass::IdentityUnavailable, Layer::Amqp);
    let (d, _) = protocol(t);
    assert_eq!(d["cbs"], serde_json::Value::Null, "no put-token: {d}");
    assert!(hint(t).contains("The route works"), "{}", hint(t));
    clean(&r, &logs, &[]);
}

#[tokio::test]
async fn kafka_oauthbearer_with_the_identity_token() {
    // The contract stub takes any SASL bytes and records them: the RFC 7628 message.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stub = crate::kafka::plain_stub(0, tx).await;
    let ns = "https://127.0.0.1";
    let token = jwt(ns, OID);
    let idp = IdentityEndpoint::start(HEADER, &[(ns, &token)], &[]).await;
    let target = |port: u16| {
        format!(
            "target = \"kafka://127.0.0.1:{port}\"\ntls = \"disable\"\nauthentication = \"managed_identity\""
        )
    };
    let (r, logs) = probe(&target(stub.port()), &idp.env()).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let (d, id) = protocol(t);
    assert_eq!(d["mechanism"], "OAUTHBEARER", "{d}");
    assert_eq!(id["resource"], ns, "{id}");
    let sent = rx.recv().await.expect("SaslAuthenticate");
    assert_eq!(
        sent,
        format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
    );
    clean(&r, &logs, &[&token]);

    // A real broker: Tansu's OAUTHBEARER refuses the token, kafka.auth_failed.
    let Some(tansu) = msg_peers::tansu("kafka_oauthbearer_with_the_identity_token", true) else {
        return;
    };
    let (r, logs) = probe(&target(tansu.port), &idp.env()).await;
    let t = failed(&r, FailureClass::KafkaAuthFailed, Layer::Kafka);
    let (d, id) = protocol(t);
    assert_eq!(d["mechanisms"][0], "OAUTHBEARER", "{d}");
    assert_eq!(id["resource"], ns, "{id}");
    for words in ["Azure Event Hubs Data Sender", "servicebus.windows.net"] {
        assert!(hint(t).contains(words), "hint lacks {words}: {}", hint(t));
    }
    clean(&r, &logs, &[&token]);

    // No identity endpoint (not App Service): identity.not_configured, Kafka still proven.
    let (r, _) = probe(&target(tansu.port), &[]).await;
    failed(&r, FailureClass::IdentityNotConfigured, Layer::Kafka);
}
