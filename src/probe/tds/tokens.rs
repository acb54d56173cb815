//! The server's answer to LOGIN7 or a SQL batch: a token stream (MS-TDS 2.2.7), read
//! from one whole message. What the probe reports is kept (LOGINACK, the database and
//! packet size, a routing redirect, the first ERROR, the first result set's row count
//! and first value); the rest is skipped by each token's length rule. The server side
//! that writes these is tests/support/tds/tokens.rs.
//!
//! Malformed input (a length past the end, a token with no known rule) is an `Err`;
//! a column type with no known rule ends the row walk with a note instead, since the
//! route and the login are proven by then.

use super::types::{self, Cur, Ty};
use crate::report::SqlError;

/// The most one answer may be: a probe's query is small, and a server that sends more
/// is answered with a classified error, not an allocation without end.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

const COLMETADATA: u8 = 0x81;
const ORDER: u8 = 0xA9;
const TABNAME: u8 = 0xA4;
const COLINFO: u8 = 0xA5;
const ERROR: u8 = 0xAA;
const INFO: u8 = 0xAB;
const LOGINACK: u8 = 0xAD;
const FEATUREEXTACK: u8 = 0xAE;
const RETURNSTATUS: u8 = 0x79;
const ROW: u8 = 0xD1;
const NBCROW: u8 = 0xD2;
const SESSIONSTATE: u8 = 0xE4;
const ENVCHANGE: u8 = 0xE3;
const SSPI: u8 = 0xED;
const FEDAUTHINFO: u8 = 0xEE;
const DONE: u8 = 0xFD;
const DONEPROC: u8 = 0xFE;
const DONEINPROC: u8 = 0xFF;

const ENV_DATABASE: u8 = 1;
const ENV_PACKET_SIZE: u8 = 4;
const ENV_ROUTING: u8 = 20;

/// The first result set of an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    pub rows: u64,
    /// The first row's first column, when its type is one the report shows.
    pub first: Option<String>,
    /// Why the walk ended before the answer did (a column type with no known rule).
    pub stopped: Option<String>,
}

impl ResultSet {
    /// "N row(s), first value V", as the report words it.
    pub fn summary(&self) -> String {
        let mut s = match &self.first {
            Some(v) => format!("{} row(s), first value {v}", self.rows),
            None => format!("{} row(s)", self.rows),
        };
        if let Some(why) = &self.stopped {
            s.push_str(&format!(" (read so far; {why})"));
        }
        s
    }
}

/// What an answer said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub login_ack: bool,
    /// The first ERROR token.
    pub error: Option<SqlError>,
    /// ENVCHANGE routing (Azure SQL's Redirect policy): host and port.
    pub routing: Option<(String, u16)>,
    pub database: Option<String>,
    pub packet_size: Option<usize>,
    pub fedauth_ack: bool,
    pub result: Option<ResultSet>,
}

/// Reads a whole answer.
pub fn read(payload: &[u8]) -> Result<Reply, String> {
    let mut c = Cur::new(payload);
    let mut reply = Reply::default();
    // The columns of the result set being read, and whether it is the first one.
    let mut cols: Option<Vec<Ty>> = None;
    let mut first_set = false;
    while !c.at_end() {
        let at = c.i;
        let token = c.u8()?;
        match token {
            LOGINACK => {
                sized16(&mut c)?;
                reply.login_ack = true;
            }
            ENVCHANGE => envchange(&mut Cur::new(sized16(&mut c)?), &mut reply)?,
            ERROR | INFO => {
                let body = sized16(&mut c)?;
                if token == ERROR && reply.error.is_none() {
                    reply.error = Some(message(&mut Cur::new(body))?);
                }
            }
            FEATUREEXTACK => loop {
                let id = c.u8()?;
                if id == 0xFF {
                    break;
                }
                let n = c.u32()? as usize;
                c.take(n)?;
                reply.fedauth_ack |= id == 0x02;
            },
            DONE | DONEPROC | DONEINPROC => {
                // Status, current command, row count (eight bytes from TDS 7.2 on).
                c.take(12)?;
                cols = None;
            }
            COLMETADATA => {
                first_set = reply.result.is_none();
                if first_set {
                    reply.result = Some(ResultSet::default());
                }
                match colmetadata(&mut c)? {
                    Ok(found) => cols = Some(found),
                    Err(stop) => return Ok(stopped(reply, first_set, stop)),
                }
            }
            ROW | NBCROW => {
                let Some(types) = &cols else {
                    return Err(format!(
                        "a row at offset {at} without COLMETADATA before it"
                    ));
                };
                let first = row(&mut c, types, token == NBCROW)?;
                if let (true, Some(rs)) = (first_set, reply.result.as_mut()) {
                    rs.rows += 1;
                    if rs.rows == 1 {
                        rs.first = first;
                    }
                }
            }
            ORDER | TABNAME | COLINFO | SSPI => {
                sized16(&mut c)?;
            }
            RETURNSTATUS => {
                c.take(4)?;
            }
            SESSIONSTATE | FEDAUTHINFO => {
                let n = c.u32()? as usize;
                c.take(n)?;
            }
            other => {
                let stop = format!("token {other:#04x} at offset {at} is not one the probe reads");
                if reply.result.is_some() {
                    return Ok(stopped(reply, true, stop));
                }
                return Err(stop);
            }
        }
    }
    Ok(reply)
}

fn stopped(mut reply: Reply, first_set: bool, why: String) -> Reply {
    if let (true, Some(rs)) = (first_set, reply.result.as_mut()) {
        rs.stopped = Some(why);
    }
    reply
}

/// A token with a two-byte length: its body.
fn sized16<'a>(c: &mut Cur<'a>) -> Result<&'a [u8], String> {
    let n = c.u16()? as usize;
    c.take(n)
}

fn envchange(c: &mut Cur<'_>, reply: &mut Reply) -> Result<(), String> {
    match c.u8()? {
        ENV_DATABASE => reply.database = Some(c.b_varchar()?),
        ENV_PACKET_SIZE => {
            let v = c.b_varchar()?;
            reply.packet_size = Some(
                v.parse()
                    .map_err(|_| format!("ENVCHANGE packet size `{v}` is not a number"))?,
            );
        }
        ENV_ROUTING => {
            let len = c.u16()? as usize;
            let mut v = Cur::new(c.take(len)?);
            let protocol = v.u8()?;
            if protocol != 0 {
                return Err(format!(
                    "routing ENVCHANGE with protocol {protocol}, not TCP (0)"
                ));
            }
            let port = v.u16()?;
            let host = v.us_varchar()?;
            if host.is_empty() {
                return Err("routing ENVCHANGE without a host".into());
            }
            reply.routing = Some((host, port));
        }
        _ => {} // collation, language, transactions …: the body is skipped whole
    }
    Ok(())
}

fn message(c: &mut Cur<'_>) -> Result<SqlError, String> {
    let number = c.u32()?;
    let state = c.u8()?;
    let class = c.u8()?;
    let message = c.us_varchar()?;
    Ok(SqlError {
        number,
        state,
        class,
        message,
    })
}

/// COLMETADATA: the columns' types. `Ok(Err(stop))` for a type with no known rule.
fn colmetadata(c: &mut Cur<'_>) -> Result<Result<Vec<Ty>, String>, String> {
    let count = c.u16()?;
    if count == 0xFFFF {
        return Ok(Ok(Vec::new())); // NoMetaData
    }
    let mut cols = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        c.take(4 + 2)?; // UserType, Flags
        let ty = match types::type_info(c)? {
            Ok(ty) => ty,
            Err(stop) => return Ok(Err(stop)),
        };
        if types::has_table_name(&ty) {
            let parts = c.u8()?;
            for _ in 0..parts {
                c.us_varchar()?;
            }
        }
        c.b_varchar()?; // column name
        cols.push(ty);
    }
    Ok(Ok(cols))
}

/// One ROW or NBCROW; returns its first column as shown.
fn row(c: &mut Cur<'_>, cols: &[Ty], nbc: bool) -> Result<Option<String>, String> {
    let nulls = if nbc {
        c.take(cols.len().div_ceil(8))?
    } else {
        &[]
    };
    let mut first = None;
    for (i, ty) in cols.iter().enumerate() {
        let null = nbc && nulls[i / 8] & (1 << (i % 8)) != 0;
        let v = if null {
            Some("NULL".to_string())
        } else {
            types::value(c, ty)?
        };
        if i == 0 {
            first = v;
        }
    }
    Ok(first)
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
