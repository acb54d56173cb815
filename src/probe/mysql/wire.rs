//! MySQL client/server protocol framing and auth scrambles: the greeting (HandshakeV10),
//! SSLRequest, HandshakeResponse41, ERR packets, AuthSwitchRequest, COM_QUERY (MySQL
//! source documentation, "Connection Phase" and "Text Protocol"; MariaDB knowledge base,
//! "Connection").

use aws_lc_rs::digest;
use tokio::io::AsyncRead;
use tokio::time::Instant;

use crate::probe::handshake::{self, IoFail, printable};

pub const CLIENT_LONG_PASSWORD: u32 = 0x1;
pub const CLIENT_LONG_FLAG: u32 = 0x4;
pub const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
pub const CLIENT_PROTOCOL_41: u32 = 0x200;
pub const CLIENT_SSL: u32 = 0x800;
pub const CLIENT_TRANSACTIONS: u32 = 0x2000;
pub const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
pub const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
pub const CLIENT_CONNECT_ATTRS: u32 = 0x10_0000;
pub const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x20_0000;
pub const CLIENT_DEPRECATE_EOF: u32 = 0x100_0000;

pub const NATIVE: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";
pub const CLEAR: &str = "mysql_clear_password";

const MAX_PACKET: usize = 1 << 20;
/// Greetings are about 100 bytes; a "length" beyond this is another protocol's bytes.
const MAX_GREETING: usize = 1024;
const MAX_PACKET_SIZE: u32 = 16 * 1024 * 1024;
const CHARSET_UTF8MB4: u8 = 45;

pub enum ReadErr {
    Io(IoFail),
    Garbage(String),
}

pub async fn read_packet<S: AsyncRead + Unpin>(
    s: &mut S,
    deadline: Instant,
    greeting: bool,
) -> Result<(u8, Vec<u8>), ReadErr> {
    let mut head = [0u8; 4];
    handshake::read_exact(s, &mut head, deadline)
        .await
        .map_err(ReadErr::Io)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let max = if greeting { MAX_GREETING } else { MAX_PACKET };
    if len == 0 || len > max || (greeting && head[3] != 0) {
        return Err(ReadErr::Garbage(printable(&head, 4)));
    }
    let mut body = vec![0u8; len];
    handshake::read_exact(s, &mut body, deadline)
        .await
        .map_err(ReadErr::Io)?;
    Ok((head[3], body))
}

pub fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_le_bytes()[..3].to_vec();
    out.push(seq);
    out.extend_from_slice(payload);
    out
}

#[derive(Debug, Clone, Default)]
pub struct Greeting {
    pub protocol: u8,
    pub server_version: String,
    pub connection_id: u32,
    pub capabilities: u32,
    pub charset: u8,
    pub scramble: Vec<u8>,
    pub auth_plugin: Option<String>,
}

fn cstr_at(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some((&rest[..end], at + end + 1))
}

/// HandshakeV10. `None`: not a MySQL greeting.
pub fn parse_greeting(b: &[u8]) -> Option<Greeting> {
    if b.first() != Some(&10) {
        return None;
    }
    let (ver, mut i) = cstr_at(b, 1)?;
    let mut g = Greeting {
        protocol: 10,
        server_version: printable(ver, 128),
        ..Default::default()
    };
    g.connection_id = u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?);
    i += 4;
    g.scramble.extend_from_slice(b.get(i..i + 8)?);
    i += 9; // part 1 + filler
    let low = u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?) as u32;
    i += 2;
    g.capabilities = low;
    if let Some(&cs) = b.get(i) {
        g.charset = cs;
        i += 3; // charset + status flags
        let high = u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?) as u32;
        g.capabilities |= high << 16;
        i += 2;
        let auth_len = *b.get(i)? as usize;
        i += 11; // auth data length + 10 reserved (MariaDB's extended caps live there)
        if g.capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let n = auth_len.saturating_sub(8).max(13);
            let part2 = b.get(i..(i + n).min(b.len()))?;
            // The last byte of part 2 is a NUL terminator, not scramble.
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            g.scramble.extend_from_slice(part2);
            i += n;
        }
        if g.capabilities & CLIENT_PLUGIN_AUTH != 0 {
            let rest = b.get(i..).unwrap_or(&[]);
            let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
            if end > 0 {
                g.auth_plugin = Some(printable(&rest[..end], 64));
            }
        }
    }
    Some(g)
}

/// Names of the capability bits worth reporting.
pub fn capability_names(caps: u32) -> Vec<&'static str> {
    [
        (CLIENT_PROTOCOL_41, "protocol_41"),
        (CLIENT_SSL, "ssl"),
        (CLIENT_SECURE_CONNECTION, "secure_connection"),
        (CLIENT_PLUGIN_AUTH, "plugin_auth"),
        (CLIENT_PLUGIN_AUTH_LENENC, "plugin_auth_lenenc_client_data"),
        (CLIENT_CONNECT_WITH_DB, "connect_with_db"),
        (CLIENT_CONNECT_ATTRS, "connect_attrs"),
        (CLIENT_DEPRECATE_EOF, "deprecate_eof"),
    ]
    .into_iter()
    .filter(|(bit, _)| caps & bit != 0)
    .map(|(_, n)| n)
    .collect()
}

pub fn client_caps(server: u32, tls: bool, db: bool) -> u32 {
    let mut want = CLIENT_LONG_PASSWORD
        | CLIENT_LONG_FLAG
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH
        | CLIENT_PLUGIN_AUTH_LENENC;
    if tls {
        want |= CLIENT_SSL;
    }
    if db {
        want |= CLIENT_CONNECT_WITH_DB;
    }
    // LONG_PASSWORD is clear in MariaDB's greeting but harmless to send.
    want & (server | CLIENT_LONG_PASSWORD)
}

fn fixed_head(caps: u32) -> Vec<u8> {
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&MAX_PACKET_SIZE.to_le_bytes());
    p.push(CHARSET_UTF8MB4);
    p.extend_from_slice(&[0u8; 23]);
    p
}

pub fn ssl_request(caps: u32) -> Vec<u8> {
    fixed_head(caps)
}

pub fn handshake_response(
    caps: u32,
    user: &str,
    auth: &[u8],
    database: Option<&str>,
    plugin: &str,
) -> Vec<u8> {
    let mut p = fixed_head(caps);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        lenenc_int(&mut p, auth.len() as u64);
        p.extend_from_slice(auth);
    } else {
        p.push(auth.len().min(255) as u8);
        p.extend_from_slice(&auth[..auth.len().min(255)]);
    }
    if let Some(db) = database.filter(|_| caps & CLIENT_CONNECT_WITH_DB != 0) {
        p.extend_from_slice(db.as_bytes());
        p.push(0);
    }
    if caps & CLIENT_PLUGIN_AUTH != 0 {
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
    }
    p
}

fn lenenc_int(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => out.push(n as u8),
        251..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        _ => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
    }
}

/// A length-encoded integer at the start of `b`, and its size.
pub fn read_lenenc(b: &[u8]) -> Option<(u64, usize)> {
    match *b.first()? {
        n @ 0..=250 => Some((n as u64, 1)),
        0xfc => Some((u16::from_le_bytes(b.get(1..3)?.try_into().ok()?) as u64, 3)),
        0xfd => {
            let x = b.get(1..4)?;
            Some((u32::from_le_bytes([x[0], x[1], x[2], 0]) as u64, 4))
        }
        0xfe => Some((u64::from_le_bytes(b.get(1..9)?.try_into().ok()?), 9)),
        _ => None,
    }
}

/// An ERR packet: code, SQLSTATE (absent before the handshake), message.
pub fn parse_err(b: &[u8]) -> (u16, Option<String>, String) {
    let code = b
        .get(1..3)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .unwrap_or(0);
    let rest = b.get(3..).unwrap_or(&[]);
    if rest.first() == Some(&b'#') && rest.len() >= 6 {
        (
            code,
            Some(printable(&rest[1..6], 5)),
            printable(&rest[6..], 1024),
        )
    } else {
        (code, None, printable(rest, 1024))
    }
}

/// AuthSwitchRequest (0xfe): plugin name and its data.
pub fn parse_switch(b: &[u8]) -> Option<(String, Vec<u8>)> {
    let (name, i) = cstr_at(b, 1)?;
    let data = b.get(i..).unwrap_or(&[]);
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    Some((printable(name, 64), data.to_vec()))
}

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    let mut c = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    parts.iter().for_each(|p| c.update(p));
    c.finish().as_ref().to_vec()
}

fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut c = digest::Context::new(&digest::SHA256);
    parts.iter().for_each(|p| c.update(p));
    c.finish().as_ref().to_vec()
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))); empty for no password.
pub fn native_scramble(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = sha1(&[password]);
    let h2 = sha1(&[&h1]);
    xor(&h1, &sha1(&[&scramble[..scramble.len().min(20)], &h2]))
}

/// caching_sha2_password's fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble).
pub fn sha2_scramble(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = sha256(&[password]);
    let h2 = sha256(&[&h1]);
    xor(&h1, &sha256(&[&h2, &scramble[..scramble.len().min(20)]]))
}

/// The witness in `Access denied for user 'u'@'ADDR'`, `Host 'ADDR' is not allowed`, or
/// `Client with IP address 'ADDR'`: the host text, which may be a name (`localhost`) when
/// the server resolves names.
pub fn witness_host(message: &str) -> Option<String> {
    if let Some(i) = message.find("'@'") {
        let rest = &message[i + 3..];
        return Some(rest[..rest.find('\'')?].to_string());
    }
    for marker in ["Host ", "IP address "] {
        if let Some(h) = handshake::quoted_after(message, marker, '\'') {
            return Some(h.to_string());
        }
    }
    None
}

pub fn com_query(sql: &str) -> Vec<u8> {
    let mut p = vec![0x03];
    p.extend_from_slice(sql.as_bytes());
    packet(0, &p)
}

pub const COM_QUIT: [u8; 5] = [1, 0, 0, 0, 0x01];
