//! PostgreSQL frontend/backend protocol 3.0 framing: the few messages the probe sends and
//! reads (PostgreSQL documentation, "Frontend/Backend Protocol" chapter, "Message Formats").

use std::net::IpAddr;

use tokio::io::AsyncRead;
use tokio::time::Instant;

use super::{Failure, Kind, Phase, ServerError, fail, io_failure};
use crate::probe::handshake::{self, IoFail, printable};

/// Length 8, code 80877103.
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
pub const TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];

pub const AUTH_OK: u32 = 0;
pub const AUTH_CLEARTEXT: u32 = 3;
pub const AUTH_MD5: u32 = 5;
pub const AUTH_SASL: u32 = 10;
pub const AUTH_SASL_CONTINUE: u32 = 11;
pub const AUTH_SASL_FINAL: u32 = 12;

/// Backend messages are small during startup; anything larger is not PostgreSQL.
const MAX_MESSAGE: usize = 1 << 20;
const BACKEND_TAGS: &[u8] = b"RENvSKZTDCIn123stAcdGHWV";

pub enum ReadErr {
    Io(IoFail),
    Garbage(String),
}

impl ReadErr {
    /// Garbage in place of the first startup answer means another protocol; later, a
    /// malformed PostgreSQL stream.
    pub fn into_failure(self, phase: Phase) -> Failure {
        match self {
            ReadErr::Io(e) => io_failure(phase, e),
            ReadErr::Garbage(what) if phase == Phase::Startup || phase == Phase::SslRequest => {
                fail(
                    Kind::NotThisProtocol,
                    format!("the server's answer is not PostgreSQL: {what}"),
                )
            }
            ReadErr::Garbage(what) => fail(Kind::ProtocolViolation { phase }, what),
        }
    }
}

pub async fn read_message<S: AsyncRead + Unpin>(
    s: &mut S,
    deadline: Instant,
) -> Result<(u8, Vec<u8>), ReadErr> {
    let mut head = [0u8; 5];
    handshake::read_exact(s, &mut head, deadline)
        .await
        .map_err(ReadErr::Io)?;
    let tag = head[0];
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !BACKEND_TAGS.contains(&tag) || !(4..=MAX_MESSAGE).contains(&len) {
        return Err(ReadErr::Garbage(format!(
            "it began {:?}",
            printable(&head, head.len())
        )));
    }
    let mut body = vec![0u8; len - 4];
    handshake::read_exact(s, &mut body, deadline)
        .await
        .map_err(ReadErr::Io)?;
    Ok((tag, body))
}

/// The rest of a message whose tag byte was already read.
pub async fn read_body<S: AsyncRead + Unpin>(
    s: &mut S,
    _tag: u8,
    deadline: Instant,
) -> Result<Vec<u8>, ReadErr> {
    let mut len = [0u8; 4];
    handshake::read_exact(s, &mut len, deadline)
        .await
        .map_err(ReadErr::Io)?;
    let len = u32::from_be_bytes(len) as usize;
    if !(4..=MAX_MESSAGE).contains(&len) {
        return Err(ReadErr::Garbage(format!("a message of length {len}")));
    }
    let mut body = vec![0u8; len - 4];
    handshake::read_exact(s, &mut body, deadline)
        .await
        .map_err(ReadErr::Io)?;
    Ok(body)
}

fn frame(tag: Option<u8>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.extend(tag);
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

pub fn startup(user: &str, database: Option<&str>, application_name: &str) -> Vec<u8> {
    let mut body = 196608u32.to_be_bytes().to_vec(); // protocol 3.0
    for (k, v) in [
        ("user", Some(user)),
        ("database", database),
        ("application_name", Some(application_name)),
    ] {
        if let Some(v) = v {
            cstr(&mut body, k);
            cstr(&mut body, v);
        }
    }
    body.push(0);
    frame(None, &body)
}

pub fn password(secret: &[u8]) -> Vec<u8> {
    let mut body = secret.to_vec();
    body.push(0);
    frame(Some(b'p'), &body)
}

pub fn sasl_initial(mechanism: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, mechanism);
    body.extend_from_slice(&(data.len() as u32).to_be_bytes());
    body.extend_from_slice(data);
    frame(Some(b'p'), &body)
}

pub fn sasl_response(data: &[u8]) -> Vec<u8> {
    frame(Some(b'p'), data)
}

pub fn query(sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, sql);
    frame(Some(b'Q'), &body)
}

pub fn auth_code(body: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(body.get(..4)?.try_into().ok()?))
}

pub fn auth_name(code: u32) -> &'static str {
    match code {
        AUTH_OK => "ok",
        2 => "kerberos_v5",
        AUTH_CLEARTEXT => "cleartext",
        AUTH_MD5 => "md5",
        7 => "gss",
        9 => "sspi",
        AUTH_SASL => "sasl",
        _ => "unknown",
    }
}

/// NUL-terminated strings up to an empty one (or the end).
pub fn cstrings(b: &[u8]) -> Vec<String> {
    b.split(|&c| c == 0)
        .take_while(|s| !s.is_empty())
        .map(|s| printable(s, 256))
        .collect()
}

/// ErrorResponse fields: S (severity), C (SQLSTATE), M, D, H.
pub fn parse_error(body: &[u8]) -> ServerError {
    let mut e = ServerError::default();
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let end = tail.iter().position(|&c| c == 0).unwrap_or(tail.len());
        let value = printable(&tail[..end], 1024);
        match code {
            b'S' if e.severity.is_empty() => e.severity = value,
            b'V' => e.severity = value,
            b'C' => e.sqlstate = value,
            b'M' => e.message = value,
            b'D' => e.detail = Some(value),
            b'H' => e.hint = Some(value),
            _ => {}
        }
        rest = tail.get(end + 1..).unwrap_or(&[]);
    }
    e
}

/// The address in `no pg_hba.conf entry for host "ADDR", user ...` (or `pg_hba.conf
/// rejects connection for host "ADDR"`).
pub fn hba_witness(message: &str) -> Option<IpAddr> {
    if !message.contains("pg_hba.conf") {
        return None;
    }
    handshake::quoted_after(message, "for host", '"')?
        .parse()
        .ok()
}

/// The first column of a DataRow, as text.
pub fn first_column(body: &[u8]) -> Option<String> {
    let n = u16::from_be_bytes(body.get(..2)?.try_into().ok()?);
    if n == 0 {
        return None;
    }
    let len = i32::from_be_bytes(body.get(2..6)?.try_into().ok()?);
    if len < 0 {
        return Some("NULL".into());
    }
    Some(printable(body.get(6..6 + len as usize)?, 256))
}
