use super::codec::{Decoder, Value, code, decode_frame, encode_frame};
use super::*;

#[test]
fn values_round_trip() {
    let v = Value::described(
        code::OPEN,
        Value::List(vec![
            Value::str("container"),
            Value::Null,
            Value::Uint(65536),
            Value::Ushort(8),
            Value::Uint(60000),
            Value::Array(vec![Value::sym("en-US"), Value::sym("de")]),
            Value::Map(vec![(Value::sym("product"), Value::str(&"x".repeat(300)))]),
            Value::Binary(vec![1, 2, 3]),
            Value::Long(-5),
            Value::Bool(true),
        ]),
    );
    let mut b = Vec::new();
    v.encode(&mut b);
    let mut d = Decoder::new(&b);
    assert_eq!(d.value().unwrap(), v);
    assert_eq!(d.remaining(), 0);
}

#[test]
fn sasl_mechanisms_as_rabbitmq_sends_them() {
    // 52-byte frame captured from the RabbitMQ 3.10 test peer (ANONYMOUS, PLAIN, AMQPLAIN).
    let mechs = Value::described(
        code::SASL_MECHANISMS,
        Value::List(vec![Value::Array(vec![
            Value::sym("ANONYMOUS"),
            Value::sym("PLAIN"),
            Value::sym("AMQPLAIN"),
        ])]),
    );
    let f = encode_frame(1, 0, &mechs, &[]);
    let frame = decode_frame(f[..8].try_into().unwrap(), &f[8..]).unwrap();
    let (c, body) = frame.performative.as_ref().unwrap().as_described().unwrap();
    assert_eq!(c, code::SASL_MECHANISMS);
    assert_eq!(body.field(0).symbols(), ["ANONYMOUS", "PLAIN", "AMQPLAIN"]);
    // Hand-built sym8 array, as servers commonly encode it.
    let raw = [
        0x00, 0x53, 0x40, 0xc0, 0x0f, 0x01, 0xe0, 0x0c, 0x02, 0xa3, 0x05, b'P', b'L', b'A', b'I',
        b'N', 0x03, b'F', b'O', b'O',
    ];
    let v = Decoder::new(&raw).value().unwrap();
    assert_eq!(
        v.as_described().unwrap().1.field(0).symbols(),
        ["PLAIN", "FOO"]
    );
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    let cases: &[&[u8]] = &[
        &[0xd0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0xc0, 0x02, 0xff, 0x40],
        &[0xb1, 0x00, 0x00, 0x00, 0x10, b'a'],
        &[0xe0, 0x03, 0x50, 0x71],
        &[0x00; 200],
        &[0x99],
        &[],
    ];
    for c in cases {
        assert!(Decoder::new(c).value().is_err(), "{c:?}");
    }
    let deep: Vec<u8> = std::iter::repeat_n([0xc0u8, 0x02, 0x01], 100)
        .flatten()
        .collect();
    assert!(Decoder::new(&deep).value().is_err());
}

#[test]
fn classification_of_remote_errors() {
    assert_eq!(
        classify(
            "amqp:unauthorized-access",
            "Ip has been prevented to connect to the endpoint. TrackingId:x"
        ),
        ErrorKind::NetworkRuleRefusal
    );
    assert_eq!(
        classify(
            "amqp:unauthorized-access",
            "InvalidSignature: The token has an invalid signature."
        ),
        ErrorKind::AuthFailed
    );
    assert_eq!(
        classify(
            "amqp:unauthorized-access",
            "ExpiredToken: The token is expired."
        ),
        ErrorKind::TokenExpired
    );
    assert_eq!(
        classify(
            "amqp:unauthorized-access",
            "Unauthorized access. 'Listen' claim(s) are required"
        ),
        ErrorKind::Forbidden
    );
    assert_eq!(
        classify("amqp:not-found", "The messaging entity could not be found"),
        ErrorKind::RemoteError
    );
    assert_eq!(ErrorKind::AuthFailed.class(), "amqp.auth_failed");
    assert!(ErrorKind::AuthFailed.answered() && !ErrorKind::Timeout.answered());
}

#[test]
fn connection_string_and_secrets_never_print() {
    let cs = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManage;SharedAccessKey=PLANTED-KEY-123=;EntityPath=q1";
    let parsed = ConnString::parse(cs);
    assert_eq!(parsed.key_name.as_deref(), Some("RootManage"));
    assert_eq!(parsed.entity.as_deref(), Some("q1"));
    assert_eq!(parsed.key.as_ref().unwrap().expose(), "PLANTED-KEY-123=");
    let mut o = Options::new("ns.servicebus.windows.net");
    o.credentials = Credentials::ConnectionString(Secret::new(cs));
    let dbg = format!("{o:?} {parsed:?}");
    assert!(!dbg.contains("PLANTED"), "{dbg}");
    let secrets = o.secrets();
    assert_eq!(
        redact("server said PLANTED-KEY-123= back", &secrets),
        "server said <redacted> back"
    );
    o.credentials = Credentials::Bearer(Secret::new("eyJPLANTED.token"));
    assert!(!format!("{o:?}").contains("PLANTED"));
}

#[test]
fn cbs_request_layout() {
    let m = cbs::request_message("TOKEN-VALUE", "jwt", "amqp://ns/q");
    let sections = codec::decode_sections(&m).unwrap();
    let (c0, props) = sections[0].as_described().unwrap();
    assert_eq!(c0, code::PROPERTIES);
    assert_eq!(props.field(4).as_str(), Some("routeproof-cbs-client"));
    let (c1, app) = sections[1].as_described().unwrap();
    assert_eq!(c1, code::APPLICATION_PROPERTIES);
    assert_eq!(
        app.get("operation").and_then(Value::as_str),
        Some("put-token")
    );
    assert_eq!(app.get("type").and_then(Value::as_str), Some("jwt"));
    assert_eq!(app.get("name").and_then(Value::as_str), Some("amqp://ns/q"));
    let (c2, body) = sections[2].as_described().unwrap();
    assert_eq!(c2, code::AMQP_VALUE);
    assert_eq!(body.as_str(), Some("TOKEN-VALUE"));
}

#[test]
fn the_probe_future_is_send() {
    fn send<T: Send>(_: &T) {}
    let (io, _peer) = tokio::io::duplex(64);
    let o = Options::new("h");
    let f = probe(io, &o, tokio::time::Instant::now());
    send(&f);
}
