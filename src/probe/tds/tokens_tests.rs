//! Token-stream tests: bytes laid out as MS-TDS 2.2.7 describes them (what SQL Server
//! sends for a login and for `SELECT 1`), then truncated and garbage variants.

use super::*;

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn b_varchar(s: &str) -> Vec<u8> {
    let mut v = vec![s.encode_utf16().count() as u8];
    v.extend(utf16(s));
    v
}

fn us_varchar(s: &str) -> Vec<u8> {
    let mut v = (s.encode_utf16().count() as u16).to_le_bytes().to_vec();
    v.extend(utf16(s));
    v
}

fn sized(token: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![token];
    v.extend((body.len() as u16).to_le_bytes());
    v.extend(body);
    v
}

fn env_string(ty: u8, new: &str, old: &str) -> Vec<u8> {
    let mut b = vec![ty];
    b.extend(b_varchar(new));
    b.extend(b_varchar(old));
    sized(ENVCHANGE, &b)
}

fn msg(token: u8, number: u32, state: u8, class: u8, text: &str) -> Vec<u8> {
    let mut b = number.to_le_bytes().to_vec();
    b.extend([state, class]);
    b.extend(us_varchar(text));
    b.extend(b_varchar("srv"));
    b.extend(b_varchar(""));
    b.extend(1u32.to_le_bytes());
    sized(token, &b)
}

fn done(status: u16, rows: u64) -> Vec<u8> {
    let mut v = vec![DONE];
    v.extend(status.to_le_bytes());
    v.extend(0xC1u16.to_le_bytes());
    v.extend(rows.to_le_bytes());
    v
}

fn loginack() -> Vec<u8> {
    let mut b = vec![1];
    b.extend(0x7400_0004u32.to_be_bytes());
    b.extend(b_varchar("Microsoft SQL Server"));
    b.extend([16, 0, 0x03, 0xE8]);
    sized(LOGINACK, &b)
}

fn login_answer() -> Vec<u8> {
    let mut v = env_string(ENV_DATABASE, "orders", "master");
    v.extend(msg(
        INFO,
        5701,
        2,
        0,
        "Changed database context to 'orders'.",
    ));
    let mut coll = vec![7, 5];
    coll.extend([0x09, 0x04, 0xD0, 0x00, 0x34, 0]);
    v.extend(sized(ENVCHANGE, &coll));
    v.extend(loginack());
    v.extend(env_string(ENV_PACKET_SIZE, "8000", "4096"));
    v.extend([FEATUREEXTACK, 0x02, 0, 0, 0, 0, 0xFF]);
    v.extend(done(0, 0));
    v
}

/// `SELECT 1` as SQL Server answers it: one INT column without a name, one row.
fn select_one() -> Vec<u8> {
    let mut v = vec![COLMETADATA, 1, 0, 0, 0, 0, 0, 0, 0, 0x38, 0];
    v.extend([ROW, 1, 0, 0, 0]);
    v.extend(done(0x10, 1));
    v
}

#[test]
fn login_answer_is_read() {
    let r = read(&login_answer()).unwrap();
    assert!(r.login_ack && r.fedauth_ack);
    assert_eq!(r.database.as_deref(), Some("orders"));
    assert_eq!(r.packet_size, Some(8000));
    assert_eq!(r.error, None);
    assert_eq!(r.routing, None);
}

#[test]
fn refused_login_keeps_the_first_error() {
    let mut v = msg(ERROR, 18456, 1, 14, "Login failed for user 'app'.");
    v.extend(msg(ERROR, 4060, 1, 11, "second"));
    v.extend(done(0x02, 0));
    let r = read(&v).unwrap();
    assert!(!r.login_ack);
    let e = r.error.unwrap();
    assert_eq!((e.number, e.state, e.class), (18456, 1, 14));
    assert_eq!(e.message, "Login failed for user 'app'.");
}

#[test]
fn routing_envchange_names_host_and_port() {
    let host = utf16("node1.worker.database.windows.net");
    let mut b = vec![ENV_ROUTING];
    b.extend(((host.len() + 5) as u16).to_le_bytes());
    b.push(0);
    b.extend(11005u16.to_le_bytes());
    b.extend(((host.len() / 2) as u16).to_le_bytes());
    b.extend(&host);
    b.extend([0, 0]);
    let mut v = loginack();
    v.extend(sized(ENVCHANGE, &b));
    v.extend(done(0, 0));
    let r = read(&v).unwrap();
    assert_eq!(
        r.routing,
        Some(("node1.worker.database.windows.net".into(), 11005))
    );
}

#[test]
fn select_one_is_one_row_first_value_1() {
    let r = read(&select_one()).unwrap();
    let rs = r.result.unwrap();
    assert_eq!(rs.summary(), "1 row(s), first value 1");
}

#[test]
fn only_the_first_result_set_counts() {
    // NVARCHAR column, NBCROW with a NULL, a ROW, then a second set.
    let mut v = vec![COLMETADATA, 2, 0];
    v.extend([
        0, 0, 0, 0, 1, 0, 0xE7, 0x40, 0x1F, 0x09, 0x04, 0xD0, 0x00, 0x34,
    ]);
    v.extend(b_varchar("name"));
    v.extend([0, 0, 0, 0, 1, 0, 0x26, 4]);
    v.extend(b_varchar("n"));
    v.extend([NBCROW, 0b10]);
    v.extend([4, 0, b'h', 0, b'i', 0]);
    v.extend([ROW, 2, 0, b'y', 0, 4, 5, 0, 0, 0]);
    v.extend(done(0x11, 2));
    v.extend(select_one());
    let rs = read(&v).unwrap().result.unwrap();
    assert_eq!(rs.summary(), "2 row(s), first value hi");
}

#[test]
fn unknown_column_type_ends_the_walk_with_a_note() {
    let mut v = vec![COLMETADATA, 1, 0, 0, 0, 0, 0, 0, 0, 0xF4];
    v.extend([0xDE, 0xAD]);
    let rs = read(&v).unwrap().result.unwrap();
    assert_eq!(rs.rows, 0);
    assert!(rs.summary().contains("0xf4"), "{}", rs.summary());
}

#[test]
fn query_error_is_kept() {
    let mut v = msg(ERROR, 208, 1, 16, "Invalid object name 'nope'.");
    v.extend(done(0x02, 0));
    let r = read(&v).unwrap();
    assert_eq!(r.error.unwrap().number, 208);
    assert_eq!(r.result, None);
}

#[test]
fn truncated_and_garbage_answers_are_errors_not_panics() {
    for full in [login_answer(), select_one()] {
        for cut in 1..full.len() {
            // Every cut either ends between tokens (fewer facts) or is an error;
            // none may panic.
            let _ = read(&full[..cut]);
        }
    }
    assert!(read(&select_one()[..12]).is_err(), "a ROW cut short");
    assert!(read(&[ROW, 1, 0, 0, 0]).is_err(), "a ROW without columns");
    assert!(read(b"HTTP/1.1 400 Bad Request\r\n").is_err());
    assert!(read(&[ENVCHANGE, 0xFF, 0xFF, 1]).is_err());
    let mut routing_udp = vec![ENV_ROUTING, 5, 0, 1, 0, 0, 0, 0];
    routing_udp.extend([0, 0]);
    assert!(read(&sized(ENVCHANGE, &routing_udp)).is_err());
    // Pseudo-random bytes never panic.
    let mut x: u32 = 0x1234_5678;
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x & 0xFF) as u8
            })
            .collect();
        let _ = read(&bytes);
    }
}
