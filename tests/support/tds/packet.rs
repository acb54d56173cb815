//! TDS packet framing (MS-TDS 2.2.3) and the PRELOGIN message (2.2.6.5).
//!
//! A TDS *message* is one or more *packets*; each packet has an 8-byte header and
//! the last one carries the EOM status bit. Clients read a response message until
//! EOM, so every reply here is framed as one message, split at the negotiated
//! packet size.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const HEADER_LEN: usize = 8;
/// Status bit "end of message".
pub const STATUS_EOM: u8 = 0x01;
/// The packet size every client starts with, before LOGIN7 negotiates another.
pub const DEFAULT_PACKET_SIZE: usize = 4096;
/// Upper bound for one reassembled client message: no client sends more at login
/// or for a short batch, and a bound keeps a garbage length from eating memory.
const MAX_MESSAGE: usize = 1 << 20;

/// Packet types (MS-TDS 2.2.3.1.1).
pub mod ty {
    pub const SQL_BATCH: u8 = 0x01;
    pub const RPC: u8 = 0x03;
    /// Every server-to-client message, including the PRELOGIN *answer*. The rejected
    /// mock answered PRELOGIN with 0x12, which is why python-tds refused it.
    pub const TABULAR_RESULT: u8 = 0x04;
    pub const ATTENTION: u8 = 0x06;
    pub const TRANSACTION_MANAGER: u8 = 0x0E;
    pub const LOGIN7: u8 = 0x10;
    /// PRELOGIN from the client, and the TLS handshake records in both directions.
    pub const PRELOGIN: u8 = 0x12;
}

/// Every packet type of MS-TDS 2.2.3.1.1 (TDS 4.2 login included).
const KNOWN_TYPES: [u8; 12] = [
    0x01, 0x02, 0x03, 0x04, 0x06, 0x07, 0x08, 0x0E, 0x0F, 0x10, 0x11, 0x12,
];

/// A reassembled message: the type of its packets and their concatenated payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub ty: u8,
    pub payload: Vec<u8>,
}

/// Reads packets until EOM. `Ok(None)` when the peer closed before a new message
/// began; a close in the middle of one is an error.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Message>> {
    let mut payload = Vec::new();
    let mut first_ty = None;
    loop {
        let mut header = [0u8; HEADER_LEN];
        let n = r.read(&mut header[..1]).await?;
        if n == 0 {
            if first_ty.is_none() {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if !KNOWN_TYPES.contains(&header[0]) {
            // Fail at once, as SQL Server does: waiting for a length that is not a
            // length (a TLS record, an HTTP request) would stall both sides.
            return Err(invalid(format!(
                "not a TDS packet type: {:#04x}",
                header[0]
            )));
        }
        r.read_exact(&mut header[1..]).await?;
        let len = u16::from_be_bytes([header[2], header[3]]) as usize;
        if len < HEADER_LEN {
            return Err(invalid(format!(
                "TDS packet length {len} below header size"
            )));
        }
        let start = payload.len();
        if start + len > MAX_MESSAGE {
            return Err(invalid("TDS message too large".into()));
        }
        payload.resize(start + len - HEADER_LEN, 0);
        r.read_exact(&mut payload[start..]).await?;
        let ty = *first_ty.get_or_insert(header[0]);
        if header[1] & STATUS_EOM != 0 {
            return Ok(Some(Message { ty, payload }));
        }
    }
}

/// Frames `payload` as one message of `ty`, split so no packet exceeds
/// `packet_size`; an empty payload still yields one (header-only) packet.
pub fn frame(ty: u8, payload: &[u8], packet_size: usize, spid: u16) -> Vec<u8> {
    let chunk = packet_size.clamp(512, 32767) - HEADER_LEN;
    let mut out = Vec::with_capacity(payload.len() + HEADER_LEN * (payload.len() / chunk + 1));
    let mut chunks: Vec<&[u8]> = payload.chunks(chunk).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, c) in chunks.iter().enumerate() {
        let len = (c.len() + HEADER_LEN) as u16;
        let status = if i == last { STATUS_EOM } else { 0 };
        // PacketID counts from 1 and wraps; clients ignore it but real servers set it.
        let packet_id = ((i + 1) % 256) as u8;
        out.extend_from_slice(&[ty, status]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&spid.to_be_bytes());
        out.extend_from_slice(&[packet_id, 0]);
        out.extend_from_slice(c);
    }
    out
}

/// Writes one framed message and flushes it.
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    ty: u8,
    payload: &[u8],
    packet_size: usize,
    spid: u16,
) -> io::Result<()> {
    w.write_all(&frame(ty, payload, packet_size, spid)).await?;
    w.flush().await
}

pub fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// PRELOGIN option tokens (MS-TDS 2.2.6.5).
pub mod opt {
    pub const VERSION: u8 = 0x00;
    pub const ENCRYPTION: u8 = 0x01;
    pub const INSTOPT: u8 = 0x02;
    pub const THREADID: u8 = 0x03;
    pub const MARS: u8 = 0x04;
    pub const FEDAUTHREQUIRED: u8 = 0x06;
    pub const TERMINATOR: u8 = 0xFF;
}

/// Values of the ENCRYPTION option.
pub mod enc {
    pub const OFF: u8 = 0x00;
    pub const ON: u8 = 0x01;
    pub const NOT_SUP: u8 = 0x02;
    pub const REQ: u8 = 0x03;
}

/// A PRELOGIN message as an ordered list of (option, data). Kept as raw bytes so a
/// test can both check what a client sent and assert on the server's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prelogin {
    pub options: Vec<(u8, Vec<u8>)>,
}

impl Prelogin {
    /// Parses the option table: 5-byte entries (token, big-endian offset and length)
    /// up to the terminator, offsets counted from the start of the payload.
    pub fn parse(payload: &[u8]) -> io::Result<Prelogin> {
        let mut options = Vec::new();
        let mut i = 0;
        loop {
            let token = *payload
                .get(i)
                .ok_or_else(|| invalid("PRELOGIN without terminator".into()))?;
            if token == opt::TERMINATOR {
                return Ok(Prelogin { options });
            }
            let entry = payload
                .get(i + 1..i + 5)
                .ok_or_else(|| invalid("PRELOGIN option table truncated".into()))?;
            let off = u16::from_be_bytes([entry[0], entry[1]]) as usize;
            let len = u16::from_be_bytes([entry[2], entry[3]]) as usize;
            let data = payload
                .get(off..off + len)
                .ok_or_else(|| invalid(format!("PRELOGIN option {token} out of bounds")))?;
            options.push((token, data.to_vec()));
            i += 5;
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let table_len = self.options.len() * 5 + 1;
        let mut table = Vec::with_capacity(table_len);
        let mut data = Vec::new();
        for (token, value) in &self.options {
            let off = (table_len + data.len()) as u16;
            table.push(*token);
            table.extend_from_slice(&off.to_be_bytes());
            table.extend_from_slice(&(value.len() as u16).to_be_bytes());
            data.extend_from_slice(value);
        }
        table.push(opt::TERMINATOR);
        table.extend_from_slice(&data);
        table
    }

    pub fn get(&self, token: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(t, _)| *t == token)
            .map(|(_, v)| v.as_slice())
    }

    pub fn encryption(&self) -> Option<u8> {
        self.get(opt::ENCRYPTION).and_then(|v| v.first().copied())
    }

    /// `(major, minor, build)` from the VERSION option.
    pub fn version(&self) -> Option<(u8, u8, u16)> {
        let v = self.get(opt::VERSION)?;
        (v.len() >= 4).then(|| (v[0], v[1], u16::from_be_bytes([v[2], v[3]])))
    }

    pub fn fedauth_required(&self) -> Option<bool> {
        self.get(opt::FEDAUTHREQUIRED)
            .and_then(|v| v.first())
            .map(|b| *b == 1)
    }
}
