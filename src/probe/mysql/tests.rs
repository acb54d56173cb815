use super::wire;

fn greeting(caps: u32, plugin: &str) -> Vec<u8> {
    let mut g = vec![10];
    g.extend_from_slice(b"5.5.5-10.11.19-MariaDB\0");
    g.extend_from_slice(&7u32.to_le_bytes());
    g.extend_from_slice(b"abcdefgh\0");
    g.extend_from_slice(&(caps as u16).to_le_bytes());
    g.push(45);
    g.extend_from_slice(&2u16.to_le_bytes());
    g.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    g.push(21);
    g.extend_from_slice(&[0u8; 10]);
    g.extend_from_slice(b"ijklmnopqrst\0");
    g.extend_from_slice(plugin.as_bytes());
    g.push(0);
    g
}

#[test]
fn parses_a_greeting() {
    let g = wire::parse_greeting(&greeting(0x81fffffe, "mysql_native_password")).unwrap();
    assert_eq!(g.server_version, "5.5.5-10.11.19-MariaDB");
    assert_eq!(g.connection_id, 7);
    assert_eq!(g.capabilities, 0x81fffffe);
    assert_eq!(g.scramble, b"abcdefghijklmnopqrst");
    assert_eq!(g.auth_plugin.as_deref(), Some("mysql_native_password"));
    assert!(wire::capability_names(g.capabilities).contains(&"ssl"));
    assert!(wire::parse_greeting(b"HTTP/1.1 400").is_none());
    // Truncated greetings never panic.
    let full = greeting(0x81fffffe, "x");
    for n in 0..full.len() {
        let _ = wire::parse_greeting(&full[..n]);
    }
}

#[test]
fn err_packets_and_witnesses() {
    let mut p = vec![0xff];
    p.extend_from_slice(&1045u16.to_le_bytes());
    p.extend_from_slice(b"#28000Access denied for user 'u'@'10.0.0.9' (using password: NO)");
    let (code, state, msg) = wire::parse_err(&p);
    assert_eq!((code, state.as_deref()), (1045, Some("28000")));
    assert_eq!(wire::witness_host(&msg).as_deref(), Some("10.0.0.9"));
    let mut p = vec![0xff];
    p.extend_from_slice(&1130u16.to_le_bytes());
    p.extend_from_slice(b"Host '192.0.2.7' is not allowed to connect to this MariaDB server");
    let (code, state, msg) = wire::parse_err(&p);
    assert_eq!((code, state), (1130, None));
    assert_eq!(wire::witness_host(&msg).as_deref(), Some("192.0.2.7"));
    assert_eq!(
        wire::witness_host(
            "Client with IP address '203.0.113.5' is not allowed to connect to this MySQL server."
        )
        .as_deref(),
        Some("203.0.113.5")
    );
}

#[test]
fn scrambles_and_lenenc() {
    assert!(wire::native_scramble(b"", b"12345678901234567890").is_empty());
    assert_eq!(
        wire::native_scramble(b"pw", b"12345678901234567890").len(),
        20
    );
    assert_eq!(
        wire::sha2_scramble(b"pw", b"12345678901234567890").len(),
        32
    );
    assert_eq!(wire::read_lenenc(&[0xfc, 0x01, 0x01]), Some((257, 3)));
    assert_eq!(wire::read_lenenc(&[0xfc, 0x01]), None);
}
