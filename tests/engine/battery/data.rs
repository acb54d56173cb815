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

fn tls(f: &TlsFx) -> Act {
    Act::Tls(f.leaf.server_config(&[], &[]))
}

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: usize = 8;
/// MySQL's SSLRequest: a 4-byte header and 32 bytes of capabilities and charset.
const MYSQL_SSL_REQUEST: usize = 36;
const SASL_HEADER: &[u8] = b"AMQP\x03\x01\x00\x00";

/// What listens at the target's loopback port.
enum Peer {
    /// An HTTP server (support::web): another protocol's listener.
    Http,
    /// An HTTPS server with the battery's leaf.
    Https,
    /// A `support::faults` script, built with the battery's TLS material.
    Script(fn(&TlsFx) -> Vec<Act>),
}

/// What the report must show beyond layer and class.
enum Then {
    Nothing,
    /// The last layer that passed (`reached`), and why that is right.
    Reached(Layer, &'static str),
    /// TLS completed before the protocol failed.
    TlsPassed,
}

struct Case {
    name: &'static str,
    scheme: &'static str,
    peer: Peer,
    layer: Layer,
    class: FailureClass,
    then: Then,
}

const CASES: &[Case] = &[
    // ---------------------------------------------------------------- postgres
    Case {
        name: "postgres_on_an_http_listener",
        scheme: "postgres",
        peer: Peer::Http,
        layer: Layer::Postgres,
        class: FailureClass::PostgresNotPostgres,
        then: Then::Reached(Layer::Tcp, "nothing PostgreSQL answered"),
    },
    Case {
        name: "postgres_stall_after_tls",
        scheme: "postgres",
        peer: Peer::Script(|f| {
            vec![
                Act::Read(SSL_REQUEST),
                Act::Write(b"S".to_vec()),
                tls(f),
                Act::Stall,
            ]
        }),
        layer: Layer::Postgres,
        class: FailureClass::PostgresTimeout,
        then: Then::TlsPassed,
    },
    Case {
        name: "postgres_tls_refused",
        scheme: "postgres",
        peer: Peer::Script(|_| {
            vec![
                Act::Read(SSL_REQUEST),
                Act::Write(b"N".to_vec()),
                Act::Stall,
            ]
        }),
        layer: Layer::Postgres,
        class: FailureClass::PostgresTlsRefused,
        then: Then::Reached(Layer::Postgres, "`N` is PostgreSQL answering"),
    },
    Case {
        name: "postgres_closes_mid_handshake",
        scheme: "postgres",
        peer: Peer::Script(|_| vec![Act::Read(SSL_REQUEST), Act::Close]),
        layer: Layer::Postgres,
        class: FailureClass::PostgresClosed,
        then: Then::Nothing,
    },
    // ---------------------------------------------------------------- mysql
    Case {
        // An HTTP server waits for the client; MySQL always speaks first.
        name: "mysql_on_an_http_listener",
        scheme: "mysql",
        peer: Peer::Http,
        layer: Layer::Mysql,
        class: FailureClass::MysqlNoGreeting,
        then: Then::Reached(Layer::Tcp, "no greeting came"),
    },
    Case {
        name: "mysql_stall_after_tls",
        scheme: "mysql",
        peer: Peer::Script(|f| {
            vec![
                Act::Write(mysql_greeting(true)),
                Act::Read(MYSQL_SSL_REQUEST),
                tls(f),
                Act::Stall,
            ]
        }),
        layer: Layer::Mysql,
        class: FailureClass::MysqlTimeout,
        then: Then::TlsPassed,
    },
    Case {
        name: "mysql_tls_refused",
        scheme: "mysql",
        peer: Peer::Script(|_| vec![Act::Write(mysql_greeting(false)), Act::Stall]),
        layer: Layer::Mysql,
        class: FailureClass::MysqlTlsRefused,
        then: Then::Reached(Layer::Mysql, "the greeting is MySQL answering"),
    },
    Case {
        name: "mysql_closes_mid_handshake",
        scheme: "mysql",
        peer: Peer::Script(|_| vec![Act::Write(mysql_greeting(true)[..20].to_vec()), Act::Close]),
        layer: Layer::Mysql,
        class: FailureClass::MysqlClosed,
        then: Then::Nothing,
    },
    // ---------------------------------------------------------------- redis
    Case {
        name: "redis_on_an_https_listener",
        scheme: "rediss",
        peer: Peer::Https,
        layer: Layer::Redis,
        class: FailureClass::RedisNotRedis,
        then: Then::Reached(Layer::Tls, "TLS passed, Redis did not answer"),
    },
    Case {
        name: "redis_stall_after_tls",
        scheme: "rediss",
        peer: Peer::Script(|f| vec![tls(f), Act::Stall]),
        layer: Layer::Redis,
        class: FailureClass::RedisNoAnswer,
        then: Then::Nothing,
    },
    Case {
        name: "redis_tls_refused",
        scheme: "rediss",
        peer: Peer::Script(|_| alert()),
        layer: Layer::Tls,
        class: FailureClass::RedisTlsRefused,
        then: Then::Reached(Layer::Tcp, "the alert answered the ClientHello"),
    },
    Case {
        name: "redis_closes_mid_handshake",
        scheme: "rediss",
        peer: Peer::Script(|f| vec![tls(f), Act::ReadSome, Act::Close]),
        layer: Layer::Redis,
        class: FailureClass::RedisClosed,
        then: Then::Nothing,
    },
    // ---------------------------------------------------------------- amqp
    Case {
        name: "amqp_on_an_https_listener",
        scheme: "amqps",
        peer: Peer::Https,
        layer: Layer::Amqp,
        class: FailureClass::AmqpNotThisProtocol,
        then: Then::Reached(Layer::Tls, "TLS passed, AMQP did not answer"),
    },
    Case {
        name: "amqp_stall_after_tls",
        scheme: "amqps",
        peer: Peer::Script(|f| vec![tls(f), Act::Stall]),
        layer: Layer::Amqp,
        class: FailureClass::AmqpTimeout,
        then: Then::Nothing,
    },
    Case {
        name: "amqp_tls_refused",
        scheme: "amqps",
        peer: Peer::Script(|_| alert()),
        layer: Layer::Tls,
        class: FailureClass::AmqpTlsRefused,
        then: Then::Reached(Layer::Tcp, "the alert answered the ClientHello"),
    },
    Case {
        // The SASL header echoed, then the connection closed before sasl-mechanisms.
        name: "amqp_closes_mid_handshake",
        scheme: "amqps",
        peer: Peer::Script(|f| {
            vec![
                tls(f),
                Act::Read(8),
                Act::Write(SASL_HEADER.to_vec()),
                Act::Close,
            ]
        }),
        layer: Layer::Amqp,
        class: FailureClass::AmqpClosed,
        then: Then::Nothing,
    },
    // ---------------------------------------------------------------- kafka
    Case {
        name: "kafka_on_an_https_listener",
        scheme: "kafka",
        peer: Peer::Https,
        layer: Layer::Kafka,
        class: FailureClass::KafkaNotThisProtocol,
        then: Then::Reached(Layer::Tls, "TLS passed, Kafka did not answer"),
    },
    Case {
        name: "kafka_stall_after_tls",
        scheme: "kafka",
        peer: Peer::Script(|f| vec![tls(f), Act::Stall]),
        layer: Layer::Kafka,
        class: FailureClass::KafkaTimeout,
        then: Then::Nothing,
    },
    Case {
        name: "kafka_tls_refused",
        scheme: "kafka",
        peer: Peer::Script(|_| alert()),
        layer: Layer::Tls,
        class: FailureClass::KafkaTlsRefused,
        then: Then::Reached(Layer::Tcp, "the alert answered the ClientHello"),
    },
    Case {
        name: "kafka_closes_mid_handshake",
        scheme: "kafka",
        peer: Peer::Script(|f| vec![tls(f), Act::ReadSome, Act::Close]),
        layer: Layer::Kafka,
        class: FailureClass::KafkaClosed,
        then: Then::Nothing,
    },
];

/// A TLS server refusing the ClientHello with a fatal alert.
fn alert() -> Vec<Act> {
    vec![
        Act::ReadSome,
        Act::Write(TLS_ALERT_HANDSHAKE_FAILURE.to_vec()),
        Act::Close,
    ]
}

/// Runs one row: its peer on loopback, the target `SCHEME://127.0.0.1:PORT` (TLS verified
/// as `localhost` against the battery CA), and checks layer, class, decisive words, the
/// deadline (through `probe`) and the row's `then`.
async fn run_case(c: &Case) {
    let f = tls_fx().await;
    let (port, _peer): (u16, Box<dyn std::any::Any>) = match c.peer {
        Peer::Http => {
            let s = web::http().await;
            (s.addr.port(), Box::new(s))
        }
        Peer::Https => {
            let s = web::https(f.leaf.server_config(&[], &[b"http/1.1"])).await;
            (s.addr.port(), Box::new(s))
        }
        Peer::Script(script) => {
            let s = scripted(script(&f)).await;
            (s.addr.port(), Box::new(s))
        }
    };
    let target = one(
        &format!("{}://127.0.0.1:{port}", c.scheme),
        "sni = \"localhost\"",
    );
    let r = probe(nodns(), &f.ca_engine(), &target, None).await;
    let t = expect(c.name, &r, c.layer, c.class);
    match c.then {
        Then::Nothing => {}
        Then::Reached(layer, why) => assert_eq!(t.reached, Some(layer), "{}: {why}", c.name),
        Then::TlsPassed => assert!(
            t.layers.iter().any(|l| l.layer == Layer::Tls && l.ok),
            "{}: TLS passed: {t:#?}",
            c.name
        ),
    }
}

crate::cases!(
    postgres_on_an_http_listener,
    postgres_stall_after_tls,
    postgres_tls_refused,
    postgres_closes_mid_handshake,
    mysql_on_an_http_listener,
    mysql_stall_after_tls,
    mysql_tls_refused,
    mysql_closes_mid_handshake,
    redis_on_an_https_listener,
    redis_stall_after_tls,
    redis_tls_refused,
    redis_closes_mid_handshake,
    amqp_on_an_https_listener,
    amqp_stall_after_tls,
    amqp_tls_refused,
    amqp_closes_mid_handshake,
    kafka_on_an_https_listener,
    kafka_stall_after_tls,
    kafka_tls_refused,
    kafka_closes_mid_handshake,
);
