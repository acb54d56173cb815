use super::wire::{Reader, request};
use super::*;

#[test]
fn api_versions_request_bytes() {
    // ApiVersions v0, correlation 1, client id "routeproof": size, key 18, version 0.
    let r = request(API_VERSIONS, 0, 1, "routeproof", &[]);
    assert_eq!(&r[..4], &(r.len() as u32 - 4).to_be_bytes());
    assert_eq!(&r[4..12], &[0, 18, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&r[12..14], &[0, 10]);
    assert_eq!(&r[14..], b"routeproof");
}

#[test]
fn reader_refuses_impossible_lengths() {
    let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 0]);
    assert!(r.array_len().is_err());
    let mut r = Reader::new(&[0x00, 0x05, b'a']);
    assert!(r.string().is_err());
    let mut r = Reader::new(&[0xff, 0xff]);
    assert_eq!(r.string().unwrap(), None);
}

#[test]
fn classification_of_broker_errors() {
    assert_eq!(
        classify(58, "SASL Authentication failed."),
        ErrorKind::AuthFailed
    );
    assert_eq!(classify(58, "Token expired"), ErrorKind::TokenExpired);
    assert_eq!(
        classify(58, "Ip has been prevented to connect to the endpoint."),
        ErrorKind::NetworkRuleRefusal
    );
    assert_eq!(classify(33, ""), ErrorKind::Unsupported);
    assert_eq!(classify(34, ""), ErrorKind::IllegalSaslState);
    assert_eq!(classify(3, ""), ErrorKind::BrokerError);
    assert_eq!(ErrorKind::AuthFailed.class(), "kafka.auth_failed");
}

#[test]
fn secrets_never_print() {
    let o = Options {
        credentials: Credentials::ConnectionString(Secret::new(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=PLANTED-KAFKA-KEY",
        )),
        ..Options::default()
    };
    assert!(!format!("{o:?}").contains("PLANTED"));
    let s = o.secrets();
    assert!(s.iter().any(|x| x == "PLANTED-KAFKA-KEY"));
    assert!(!amqp::redact("echo PLANTED-KAFKA-KEY", &s).contains("PLANTED"));
}

#[test]
fn the_probe_future_is_send() {
    fn send<T: Send>(_: &T) {}
    let (io, _peer) = tokio::io::duplex(64);
    let o = Options::default();
    let f = probe(io, &o, tokio::time::Instant::now());
    send(&f);
}
