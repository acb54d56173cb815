use super::wire;

#[test]
fn hba_witness_from_the_message() {
    let m = "no pg_hba.conf entry for host \"10.1.2.3\", user \"u\", database \"postgres\", SSL encryption";
    assert_eq!(wire::hba_witness(m), Some("10.1.2.3".parse().unwrap()));
    let m = "pg_hba.conf rejects connection for host \"::1\", user \"u\", database \"d\", no encryption";
    assert_eq!(wire::hba_witness(m), Some("::1".parse().unwrap()));
    assert_eq!(
        wire::hba_witness("password authentication failed for user \"u\""),
        None
    );
    assert_eq!(
        wire::hba_witness("no pg_hba.conf entry for host \"[local]\""),
        None
    );
}

#[test]
fn error_response_fields() {
    let body = b"SFATAL\0VFATAL\0C28000\0Mno pg_hba.conf entry\0Fauth.c\0\0";
    let e = wire::parse_error(body);
    assert_eq!(e.severity, "FATAL");
    assert_eq!(e.sqlstate, "28000");
    assert_eq!(e.message, "no pg_hba.conf entry");
    // A truncated error does not panic.
    let e = wire::parse_error(b"C2800");
    assert_eq!(e.sqlstate, "2800");
}

#[test]
fn startup_and_data_row() {
    let s = wire::startup("u", Some("db"), "rp");
    assert_eq!(
        u32::from_be_bytes(s[..4].try_into().unwrap()) as usize,
        s.len()
    );
    assert_eq!(&s[4..8], &196608u32.to_be_bytes());
    assert!(s.ends_with(b"application_name\0rp\0\0"));
    let row = [0, 1, 0, 0, 0, 1, b'1'];
    assert_eq!(wire::first_column(&row).as_deref(), Some("1"));
    assert_eq!(wire::first_column(&[0, 1, 0xff, 0xff]), None);
    assert_eq!(
        wire::cstrings(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
        ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
    );
}
