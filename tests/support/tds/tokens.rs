//! Server-to-client tokens (MS-TDS 2.2.7) appended to one response buffer.
//!
//! Layouts follow SQL Server, including what changed with TDS 7.2 (see
//! [`super::login::is_tds72_plus`]); clients parse these byte by byte, so each
//! length field is computed from what was actually written.

use super::login::string_to_ucs2;

pub mod token {
    pub const COLMETADATA: u8 = 0x81;
    pub const ERROR: u8 = 0xAA;
    pub const INFO: u8 = 0xAB;
    pub const LOGINACK: u8 = 0xAD;
    pub const FEATUREEXTACK: u8 = 0xAE;
    pub const ROW: u8 = 0xD1;
    pub const RETURNSTATUS: u8 = 0x79;
    pub const ENVCHANGE: u8 = 0xE3;
    pub const DONE: u8 = 0xFD;
    pub const DONEPROC: u8 = 0xFE;
    pub const DONEINPROC: u8 = 0xFF;
}

/// ENVCHANGE types.
pub mod env {
    pub const DATABASE: u8 = 1;
    pub const LANGUAGE: u8 = 2;
    pub const PACKET_SIZE: u8 = 4;
    pub const COLLATION: u8 = 7;
    pub const BEGIN_TRAN: u8 = 8;
    pub const COMMIT_TRAN: u8 = 9;
    pub const ROLLBACK_TRAN: u8 = 10;
    pub const ROUTING: u8 = 20;
}

/// DONE status bits.
pub mod done {
    pub const FINAL: u16 = 0x00;
    pub const MORE: u16 = 0x01;
    pub const ERROR: u16 = 0x02;
    pub const COUNT: u16 = 0x10;
    pub const ATTN: u16 = 0x20;
}

/// SQL_Latin1_General_CP1_CI_AS: LCID 0x0409 with case/accent flags, sort id 52.
/// Sent at login like SQL Server; drivers use it to decode non-Unicode text.
pub const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

pub struct Tokens {
    pub buf: Vec<u8>,
    tds72: bool,
}

impl Tokens {
    pub fn new(tds72: bool) -> Tokens {
        Tokens {
            buf: Vec::new(),
            tds72,
        }
    }

    /// A token with a u16 length prefix: `body` writes everything after the length.
    fn sized(&mut self, token: u8, body: impl FnOnce(&mut Vec<u8>)) {
        let mut b = Vec::new();
        body(&mut b);
        self.buf.push(token);
        self.buf.extend_from_slice(&(b.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(&b);
    }

    pub fn env_string(&mut self, ty: u8, new: &str, old: &str) {
        self.sized(token::ENVCHANGE, |b| {
            b.push(ty);
            b_varchar(b, new);
            b_varchar(b, old);
        });
    }

    pub fn env_bytes(&mut self, ty: u8, new: &[u8], old: &[u8]) {
        self.sized(token::ENVCHANGE, |b| {
            b.push(ty);
            b.push(new.len() as u8);
            b.extend_from_slice(new);
            b.push(old.len() as u8);
            b.extend_from_slice(old);
        });
    }

    /// Azure SQL's Redirect policy: "reconnect to host:port" (protocol 0 = TCP).
    pub fn env_routing(&mut self, host: &str, port: u16) {
        self.sized(token::ENVCHANGE, |b| {
            b.push(env::ROUTING);
            let host = string_to_ucs2(host);
            b.extend_from_slice(&((host.len() + 5) as u16).to_le_bytes());
            b.push(0);
            b.extend_from_slice(&port.to_le_bytes());
            b.extend_from_slice(&((host.len() / 2) as u16).to_le_bytes());
            b.extend_from_slice(&host);
            b.extend_from_slice(&[0, 0]); // old value: none
        });
    }

    pub fn info(&mut self, number: u32, state: u8, class: u8, msg: &str, server: &str) {
        self.message(token::INFO, number, state, class, msg, server);
    }

    pub fn error(&mut self, number: u32, state: u8, class: u8, msg: &str, server: &str) {
        self.message(token::ERROR, number, state, class, msg, server);
    }

    fn message(&mut self, token: u8, number: u32, state: u8, class: u8, msg: &str, server: &str) {
        let tds72 = self.tds72;
        self.sized(token, |b| {
            b.extend_from_slice(&number.to_le_bytes());
            b.push(state);
            b.push(class);
            us_varchar(b, msg);
            b_varchar(b, server);
            b_varchar(b, ""); // procedure name
            if tds72 {
                b.extend_from_slice(&1u32.to_le_bytes());
            } else {
                b.extend_from_slice(&1u16.to_le_bytes());
            }
        });
    }

    /// `tds_version` goes out big-endian here although LOGIN7 sends it little-endian;
    /// every client reads it that way. `version` is major, minor, build (u16).
    pub fn loginack(&mut self, tds_version: u32, prog_name: &str, version: (u8, u8, u16)) {
        self.sized(token::LOGINACK, |b| {
            b.push(1); // interface: SQL_TSQL
            b.extend_from_slice(&tds_version.to_be_bytes());
            b_varchar(b, prog_name);
            b.push(version.0);
            b.push(version.1);
            b.extend_from_slice(&version.2.to_be_bytes());
        });
    }

    pub fn featureextack(&mut self, features: &[(u8, Vec<u8>)]) {
        self.buf.push(token::FEATUREEXTACK);
        for (id, data) in features {
            self.buf.push(*id);
            self.buf
                .extend_from_slice(&(data.len() as u32).to_le_bytes());
            self.buf.extend_from_slice(data);
        }
        self.buf.push(0xFF);
    }

    pub fn done(&mut self, status: u16, cur_cmd: u16, rows: u64) {
        self.done_token(token::DONE, status, cur_cmd, rows);
    }

    /// DONE, DONEPROC or DONEINPROC: one layout, three meanings (end of a
    /// statement in a batch, of an RPC, of a statement inside an RPC).
    pub fn done_token(&mut self, kind: u8, status: u16, cur_cmd: u16, rows: u64) {
        self.buf.push(kind);
        self.buf.extend_from_slice(&status.to_le_bytes());
        self.buf.extend_from_slice(&cur_cmd.to_le_bytes());
        if self.tds72 {
            self.buf.extend_from_slice(&rows.to_le_bytes());
        } else {
            self.buf.extend_from_slice(&(rows as u32).to_le_bytes());
        }
    }

    pub fn return_status(&mut self, value: i32) {
        self.buf.push(token::RETURNSTATUS);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn column_prefix(&mut self, flags: u16) {
        if self.tds72 {
            self.buf.extend_from_slice(&0u32.to_le_bytes()); // UserType
        } else {
            self.buf.extend_from_slice(&0u16.to_le_bytes());
        }
        self.buf.extend_from_slice(&flags.to_le_bytes());
    }

    /// One result column of type INT (fixed-length INT4, not nullable), as SQL
    /// Server describes `SELECT 1`.
    pub fn int_column(&mut self, name: &str) {
        self.buf.push(token::COLMETADATA);
        self.buf.extend_from_slice(&1u16.to_le_bytes());
        self.column_prefix(0x0000);
        self.buf.push(0x38); // INT4
        b_varchar(&mut self.buf, name);
    }

    pub fn int_row(&mut self, value: i32) {
        self.buf.push(token::ROW);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// One result column of type NVARCHAR(4000), nullable, as for `SELECT @@VERSION`.
    pub fn nvarchar_column(&mut self, name: &str) {
        self.buf.push(token::COLMETADATA);
        self.buf.extend_from_slice(&1u16.to_le_bytes());
        self.column_prefix(0x0001);
        self.buf.push(0xE7); // NVARCHARTYPE
        self.buf.extend_from_slice(&8000u16.to_le_bytes());
        self.buf.extend_from_slice(&COLLATION);
        b_varchar(&mut self.buf, name);
    }

    pub fn nvarchar_row(&mut self, value: &str) {
        self.buf.push(token::ROW);
        let v = string_to_ucs2(value);
        self.buf.extend_from_slice(&(v.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(&v);
    }
}

/// A string with a one-byte character count.
fn b_varchar(b: &mut Vec<u8>, s: &str) {
    let v = string_to_ucs2(s);
    b.push((v.len() / 2) as u8);
    b.extend_from_slice(&v);
}

/// A string with a two-byte character count.
fn us_varchar(b: &mut Vec<u8>, s: &str) {
    let v = string_to_ucs2(s);
    b.extend_from_slice(&((v.len() / 2) as u16).to_le_bytes());
    b.extend_from_slice(&v);
}
