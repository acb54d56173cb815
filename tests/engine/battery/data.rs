//! Protocol faults of the data and messaging targets (postgres, mysql, redis, amqp,
//! kafka), four each: another protocol's listener on the port (an HTTP(S) server), TLS
//! accepted and then silence, TLS refused by the server, and the server closing
//! mid-handshake. The peers are `support::faults` scripts and `support::web` servers on
//! loopback; each case asserts the failing layer, the class, the hint's decisive content
//! and (through `probe`) that the run ended by its deadline.
//!
//! "TLS refused" is each protocol's own refusal where it has one (PostgreSQL's `N`, a
//! MySQL greeting without CLIENT_SSL); for the TLS-first protocols (Redis, AMQP, Kafka)
//! it is a TLS alert answering the ClientHello, which the TLS layer reports as the
//! protocol's `tls_refused`.

use super::*;
use support::faults::{Act, TLS_ALERT_HANDSHAKE_FAILURE, mysql_greeting, scripted};
use support::web;

/// Runs `uri` (an IP target on loopback; TLS verified as `localhost` against the
/// battery CA) and checks layer, class and decisive words.
async fn data_case(
    case: &str,
    f: &TlsFx,
    uri: String,
    extra: &str,
    layer: Layer,
    class: FailureClass,
) -> TargetReport {
    let target = one(&uri, &format!("sni = \"localhost\"\n{extra}"));
    let extra_engine = f.ca_engine();
    let r = probe(nodns(), &extra_engine, &target, None).await;
    expect(case, &r, layer, class).clone()
}

fn tls(f: &TlsFx) -> Act {
    Act::Tls(f.leaf.server_config(&[], &[]))
}

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: usize = 8;
/// MySQL's SSLRequest: a 4-byte header and 32 bytes of capabilities and charset.
const MYSQL_SSL_REQUEST: usize = 36;
const SASL_HEADER: &[u8] = b"AMQP\x03\x01\x00\x00";

// ------------------------------------------------------------------ postgres

#[tokio::test]
async fn postgres_on_an_http_listener() {
    let f = tls_fx().await;
    let srv = web::http().await;
    let uri = format!("postgres://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "postgres_on_an_http_listener",
        &f,
        uri,
        "",
        Layer::Postgres,
        FailureClass::PostgresNotPostgres,
    )
    .await;
    assert_eq!(t.reached, Some(Layer::Tcp));
}

#[tokio::test]
async fn postgres_stall_after_tls() {
    let f = tls_fx().await;
    let srv = scripted(vec![
        Act::Read(SSL_REQUEST),
        Act::Write(b"S".to_vec()),
        tls(&f),
        Act::Stall,
    ])
    .await;
    let uri = format!("postgres://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "postgres_stall_after_tls",
        &f,
        uri,
        "",
        Layer::Postgres,
        FailureClass::PostgresTimeout,
    )
    .await;
    assert!(
        t.layers.iter().any(|l| l.layer == Layer::Tls && l.ok),
        "TLS passed: {t:#?}"
    );
}

#[tokio::test]
async fn postgres_tls_refused() {
    let f = tls_fx().await;
    let srv = scripted(vec![
        Act::Read(SSL_REQUEST),
        Act::Write(b"N".to_vec()),
        Act::Stall,
    ])
    .await;
    let uri = format!("postgres://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "postgres_tls_refused",
        &f,
        uri,
        "",
        Layer::Postgres,
        FailureClass::PostgresTlsRefused,
    )
    .await;
    assert_eq!(
        t.reached,
        Some(Layer::Postgres),
        "`N` is PostgreSQL answering"
    );
}

#[tokio::test]
async fn postgres_closes_mid_handshake() {
    let f = tls_fx().await;
    let srv = scripted(vec![Act::Read(SSL_REQUEST), Act::Close]).await;
    let uri = format!("postgres://127.0.0.1:{}", srv.addr.port());
    data_case(
        "postgres_closes_mid_handshake",
        &f,
        uri,
        "",
        Layer::Postgres,
        FailureClass::PostgresClosed,
    )
    .await;
}

// ------------------------------------------------------------------ mysql

#[tokio::test]
async fn mysql_on_an_http_listener() {
    // An HTTP server waits for the client; MySQL always speaks first.
    let f = tls_fx().await;
    let srv = web::http().await;
    let uri = format!("mysql://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "mysql_on_an_http_listener",
        &f,
        uri,
        "",
        Layer::Mysql,
        FailureClass::MysqlNoGreeting,
    )
    .await;
    assert_eq!(t.reached, Some(Layer::Tcp));
}

#[tokio::test]
async fn mysql_stall_after_tls() {
    let f = tls_fx().await;
    let srv = scripted(vec![
        Act::Write(mysql_greeting(true)),
        Act::Read(MYSQL_SSL_REQUEST),
        tls(&f),
        Act::Stall,
    ])
    .await;
    let uri = format!("mysql://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "mysql_stall_after_tls",
        &f,
        uri,
        "",
        Layer::Mysql,
        FailureClass::MysqlTimeout,
    )
    .await;
    assert!(
        t.layers.iter().any(|l| l.layer == Layer::Tls && l.ok),
        "TLS passed: {t:#?}"
    );
}

#[tokio::test]
async fn mysql_tls_refused() {
    let f = tls_fx().await;
    let srv = scripted(vec![Act::Write(mysql_greeting(false)), Act::Stall]).await;
    let uri = format!("mysql://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "mysql_tls_refused",
        &f,
        uri,
        "",
        Layer::Mysql,
        FailureClass::MysqlTlsRefused,
    )
    .await;
    assert_eq!(
        t.reached,
        Some(Layer::Mysql),
        "the greeting is MySQL answering"
    );
}

#[tokio::test]
async fn mysql_closes_mid_handshake() {
    let f = tls_fx().await;
    let half = mysql_greeting(true)[..20].to_vec();
    let srv = scripted(vec![Act::Write(half), Act::Close]).await;
    let uri = format!("mysql://127.0.0.1:{}", srv.addr.port());
    data_case(
        "mysql_closes_mid_handshake",
        &f,
        uri,
        "",
        Layer::Mysql,
        FailureClass::MysqlClosed,
    )
    .await;
}

// ------------------------------------------------------------------ redis

#[tokio::test]
async fn redis_on_an_https_listener() {
    let f = tls_fx().await;
    let srv = web::https(f.leaf.server_config(&[], &[b"http/1.1"])).await;
    let uri = format!("rediss://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "redis_on_an_https_listener",
        &f,
        uri,
        "",
        Layer::Redis,
        FailureClass::RedisNotRedis,
    )
    .await;
    assert_eq!(t.reached, Some(Layer::Tls));
}

#[tokio::test]
async fn redis_stall_after_tls() {
    let f = tls_fx().await;
    let srv = scripted(vec![tls(&f), Act::Stall]).await;
    let uri = format!("rediss://127.0.0.1:{}", srv.addr.port());
    data_case(
        "redis_stall_after_tls",
        &f,
        uri,
        "",
        Layer::Redis,
        FailureClass::RedisNoAnswer,
    )
    .await;
}

#[tokio::test]
async fn redis_tls_refused() {
    let f = tls_fx().await;
    let srv = scripted(vec![
        Act::ReadSome,
        Act::Write(TLS_ALERT_HANDSHAKE_FAILURE.to_vec()),
        Act::Close,
    ])
    .await;
    let uri = format!("rediss://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "redis_tls_refused",
        &f,
        uri,
        "",
        Layer::Tls,
        FailureClass::RedisTlsRefused,
    )
    .await;
    assert_eq!(t.reached, Some(Layer::Tcp));
}

#[tokio::test]
async fn redis_closes_mid_handshake() {
    let f = tls_fx().await;
    let srv = scripted(vec![tls(&f), Act::ReadSome, Act::Close]).await;
    let uri = format!("rediss://127.0.0.1:{}", srv.addr.port());
    data_case(
        "redis_closes_mid_handshake",
        &f,
        uri,
        "",
        Layer::Redis,
        FailureClass::RedisClosed,
    )
    .await;
}

// ------------------------------------------------------------------ amqp

#[tokio::test]
async fn amqp_on_an_https_listener() {
    let f = tls_fx().await;
    let srv = web::https(f.leaf.server_config(&[], &[b"http/1.1"])).await;
    let uri = format!("amqps://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "amqp_on_an_https_listener",
        &f,
        uri,
        "",
        Layer::Amqp,
        FailureClass::AmqpNotThisProtocol,
    )
    .await;
    assert_eq!(t.reached, Some(Layer::Tls));
}

#[tokio::test]
async fn amqp_stall_after_tls() {
    let f = tls_fx().await;
    let srv = scripted(vec![tls(&f), Act::Stall]).await;
    let uri = format!("amqps://127.0.0.1:{}", srv.addr.port());
    data_case(
        "amqp_stall_after_tls",
        &f,
        uri,
        "",
        Layer::Amqp,
        FailureClass::AmqpTimeout,
    )
    .await;
}

#[tokio::test]
async fn amqp_tls_refused() {
    let f = tls_fx().await;
    let srv = scripted(vec![
        Act::ReadSome,
        Act::Write(TLS_ALERT_HANDSHAKE_FAILURE.to_vec()),
        Act::Close,
    ])
    .await;
    let uri = format!("amqps://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "amqp_tls_refused",
        &f,
        uri,
        "",
        Layer::Tls,
        FailureClass::AmqpTlsRefused,
    )
    .await;
    assert_eq!(t.reached, Some(Layer::Tcp));
}

#[tokio::test]
async fn amqp_closes_mid_handshake() {
    // The SASL header echoed, then the connection closed before sasl-mechanisms.
    let f = tls_fx().await;
    let srv = scripted(vec![
        tls(&f),
        Act::Read(8),
        Act::Write(SASL_HEADER.to_vec()),
        Act::Close,
    ])
    .await;
    let uri = format!("amqps://127.0.0.1:{}", srv.addr.port());
    data_case(
        "amqp_closes_mid_handshake",
        &f,
        uri,
        "",
        Layer::Amqp,
        FailureClass::AmqpClosed,
    )
    .await;
}

// ------------------------------------------------------------------ kafka

#[tokio::test]
async fn kafka_on_an_https_listener() {
    let f = tls_fx().await;
    let srv = web::https(f.leaf.server_config(&[], &[b"http/1.1"])).await;
    let uri = format!("kafka://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "kafka_on_an_https_listener",
        &f,
        uri,
        "",
        Layer::Kafka,
        FailureClass::KafkaNotThisProtocol,
    )
    .await;
    assert_eq!(t.reached, Some(Layer::Tls));
}

#[tokio::test]
async fn kafka_stall_after_tls() {
    let f = tls_fx().await;
    let srv = scripted(vec![tls(&f), Act::Stall]).await;
    let uri = format!("kafka://127.0.0.1:{}", srv.addr.port());
    data_case(
        "kafka_stall_after_tls",
        &f,
        uri,
        "",
        Layer::Kafka,
        FailureClass::KafkaTimeout,
    )
    .await;
}

#[tokio::test]
async fn kafka_tls_refused() {
    let f = tls_fx().await;
    let srv = scripted(vec![
        Act::ReadSome,
        Act::Write(TLS_ALERT_HANDSHAKE_FAILURE.to_vec()),
        Act::Close,
    ])
    .await;
    let uri = format!("kafka://127.0.0.1:{}", srv.addr.port());
    let t = data_case(
        "kafka_tls_refused",
        &f,
        uri,
        "",
        Layer::Tls,
        FailureClass::KafkaTlsRefused,
    )
    .await;
    assert_eq!(t.reached, Some(Layer::Tcp));
}

#[tokio::test]
async fn kafka_closes_mid_handshake() {
    let f = tls_fx().await;
    let srv = scripted(vec![tls(&f), Act::ReadSome, Act::Close]).await;
    let uri = format!("kafka://127.0.0.1:{}", srv.addr.port());
    data_case(
        "kafka_closes_mid_handshake",
        &f,
        uri,
        "",
        Layer::Kafka,
        FailureClass::KafkaClosed,
    )
    .await;
}
