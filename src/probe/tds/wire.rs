//! The TDS wire pieces under the login (MS-TDS 2.2.3, 2.2.6.5): packet framing,
//! PRELOGIN, and TLS carried inside PRELOGIN packets for the handshake, then raw on
//! the socket. LOGIN7 and the batch are built in `login7.rs`, the answers read in
//! `tokens.rs`; all of it runs on the one connection the TCP layer proved.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

pub const PKT_PRELOGIN: u8 = 0x12;
pub const PKT_SQL_BATCH: u8 = 0x01;
pub const PKT_LOGIN7: u8 = 0x10;
/// Servers answer PRELOGIN with a tabular-result packet.
pub const PKT_REPLY: u8 = 0x04;
const STATUS_EOM: u8 = 0x01;
const HEADER: usize = 8;
/// The packet size before the server's ENVCHANGE says otherwise (MS-TDS 2.2.3.1).
pub const DEFAULT_PACKET: usize = 4096;
/// Payload per packet we write: the 4096-byte default packet size minus the header.
const MAX_PAYLOAD: usize = DEFAULT_PACKET - HEADER;

pub const ENCRYPT_OFF: u8 = 0x00;
pub const ENCRYPT_ON: u8 = 0x01;
pub const ENCRYPT_NOT_SUP: u8 = 0x02;
pub const ENCRYPT_REQ: u8 = 0x03;

pub fn encryption_name(v: u8) -> &'static str {
    match v & 0x0f {
        ENCRYPT_OFF => "off",
        ENCRYPT_ON => "on",
        ENCRYPT_NOT_SUP => "not_supported",
        ENCRYPT_REQ => "required",
        _ => "unknown",
    }
}

/// Writes one message as packets of the default size (EOM on the last).
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    ptype: u8,
    payload: &[u8],
) -> io::Result<()> {
    write_message_sized(w, ptype, payload, DEFAULT_PACKET).await
}

/// Writes one message as packets of at most `packet_size` bytes (the size the server
/// agreed in its ENVCHANGE; 512 at the least, as MS-TDS 2.2.7.9 allows).
pub async fn write_message_sized<W: AsyncWrite + Unpin>(
    w: &mut W,
    ptype: u8,
    payload: &[u8],
    packet_size: usize,
) -> io::Result<()> {
    let per_packet = packet_size.clamp(512, 32767) - HEADER;
    let mut chunks = payload.chunks(per_packet).peekable();
    let mut id: u8 = 1;
    if payload.is_empty() {
        w.write_all(&header(ptype, STATUS_EOM, 0, id)).await?;
    }
    while let Some(chunk) = chunks.next() {
        let status = if chunks.peek().is_none() {
            STATUS_EOM
        } else {
            0
        };
        let mut pkt = header(ptype, status, chunk.len(), id).to_vec();
        pkt.extend_from_slice(chunk);
        w.write_all(&pkt).await?;
        id = id.wrapping_add(1);
    }
    w.flush().await
}

fn header(ptype: u8, status: u8, payload_len: usize, id: u8) -> [u8; HEADER] {
    let len = (payload_len + HEADER) as u16;
    let l = len.to_be_bytes();
    [ptype, status, l[0], l[1], 0, 0, id, 0]
}

/// Reads one message (packets up to EOM). Returns its packet type and payload.
/// `Err(UnexpectedEof)` when the peer closes: the caller turns that into `tds.prelogin`.
pub async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> io::Result<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let mut h = [0u8; HEADER];
        r.read_exact(&mut h).await?;
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        if len < HEADER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TDS packet length {len} is below the header size"),
            ));
        }
        if out.len() + len > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TDS message larger than expected",
            ));
        }
        let start = out.len();
        out.resize(start + len - HEADER, 0);
        r.read_exact(&mut out[start..]).await?;
        if h[1] & STATUS_EOM != 0 {
            return Ok((h[0], out));
        }
    }
}

/// What the server said in its PRELOGIN answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreloginReply {
    /// `major.minor.build`, e.g. `16.0.1000` (SQL Server 2022).
    pub version: Option<String>,
    pub encryption: Option<u8>,
    pub fedauth_required: Option<bool>,
}

/// A PRELOGIN request: version, encryption, instance (default), thread id, MARS off,
/// and FEDAUTHREQUIRED so Azure SQL says whether it wants Entra authentication.
pub fn prelogin_request(encryption: u8, ask_fedauth: bool) -> Vec<u8> {
    let mut opts: Vec<(u8, Vec<u8>)> = vec![
        (0x00, vec![0, 0, 0, 0, 0, 0]),
        (0x01, vec![encryption]),
        (0x02, vec![0]),
        (0x03, std::process::id().to_be_bytes().to_vec()),
        (0x04, vec![0]),
    ];
    if ask_fedauth {
        opts.push((0x06, vec![0x01]));
    }
    let table_len = opts.len() * 5 + 1;
    let mut table = Vec::with_capacity(table_len);
    let mut data = Vec::new();
    for (token, value) in &opts {
        let offset = (table_len + data.len()) as u16;
        table.push(*token);
        table.extend_from_slice(&offset.to_be_bytes());
        table.extend_from_slice(&(value.len() as u16).to_be_bytes());
        data.extend_from_slice(value);
    }
    table.push(0xff);
    table.extend(data);
    table
}

pub fn parse_prelogin(payload: &[u8]) -> Result<PreloginReply, String> {
    let mut reply = PreloginReply::default();
    let mut i = 0;
    loop {
        let token = *payload
            .get(i)
            .ok_or("PRELOGIN answer ends inside its option table")?;
        if token == 0xff {
            return Ok(reply);
        }
        let entry = payload
            .get(i + 1..i + 5)
            .ok_or("PRELOGIN option table truncated")?;
        let off = u16::from_be_bytes([entry[0], entry[1]]) as usize;
        let len = u16::from_be_bytes([entry[2], entry[3]]) as usize;
        let value = payload
            .get(off..off + len)
            .ok_or_else(|| format!("PRELOGIN option {token:#04x} points outside the message"))?;
        match (token, value) {
            (0x00, [major, minor, b0, b1, ..]) => {
                reply.version = Some(format!(
                    "{major}.{minor}.{}",
                    u16::from_be_bytes([*b0, *b1])
                ));
            }
            (0x01, [e, ..]) => reply.encryption = Some(*e),
            (0x06, [f, ..]) => reply.fedauth_required = Some(*f != 0),
            _ => {}
        }
        i += 5;
        if i > 5 * 32 {
            return Err("PRELOGIN option table has no terminator".into());
        }
    }
}

/// TDS 7.x runs the TLS handshake inside PRELOGIN packets: this adapter frames what
/// rustls writes and unframes what it reads. After the handshake, [`TlsInTds::pass_through`]
/// turns it into a plain pipe: TLS records go raw on the socket and carry the TDS
/// packets of the login and the query (MS-TDS 2.2.6.5, as the test server's
/// `unwrap_records` in tests/support/tds/tls_shim.rs expects).
pub struct TlsInTds<S> {
    inner: S,
    passthrough: bool,
    /// Bytes of the current incoming packet not yet handed to rustls.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Raw bytes of an incoming packet being assembled.
    raw: Vec<u8>,
    /// Framed outgoing bytes not yet written.
    wbuf: Vec<u8>,
}

impl<S> TlsInTds<S> {
    /// The handshake is done: from now on bytes pass unframed in both directions.
    pub fn pass_through(&mut self) {
        self.passthrough = true;
        // Bytes that arrived after the last handshake packet belong to the raw phase.
        let rest: Vec<u8> = std::mem::take(&mut self.raw);
        self.rbuf.drain(..self.rpos);
        self.rbuf.extend(rest);
        self.rpos = 0;
    }

    pub fn new(inner: S) -> Self {
        TlsInTds {
            inner,
            passthrough: false,
            rbuf: Vec::new(),
            rpos: 0,
            raw: Vec::new(),
            wbuf: Vec::new(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TlsInTds<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.rpos < this.rbuf.len() {
                let n = (this.rbuf.len() - this.rpos).min(buf.remaining());
                buf.put_slice(&this.rbuf[this.rpos..this.rpos + n]);
                this.rpos += n;
                return Poll::Ready(Ok(()));
            }
            if this.passthrough {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            // Assemble a whole packet before handing its payload on.
            let need = if this.raw.len() < HEADER {
                HEADER
            } else {
                u16::from_be_bytes([this.raw[2], this.raw[3]]) as usize
            };
            if need < HEADER {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad TDS packet length",
                )));
            }
            if this.raw.len() >= need && this.raw.len() >= HEADER {
                let packet: Vec<u8> = this.raw.drain(..need).collect();
                this.rbuf = packet[HEADER..].to_vec();
                this.rpos = 0;
                continue;
            }
            let mut tmp = [0u8; 4096];
            let want = (need - this.raw.len()).min(tmp.len());
            let mut rb = ReadBuf::new(&mut tmp[..want]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                return Poll::Ready(Ok(())); // EOF: rustls reports it
            }
            this.raw.extend_from_slice(rb.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TlsInTds<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Drain what is pending first so the buffer stays bounded.
        ready!(self.as_mut().poll_flush(cx))?;
        if self.passthrough {
            return Pin::new(&mut self.inner).poll_write(cx, data);
        }
        let n = data.len().min(MAX_PAYLOAD);
        let mut pkt = header(PKT_PRELOGIN, STATUS_EOM, n, 1).to_vec();
        pkt.extend_from_slice(&data[..n]);
        self.wbuf = pkt;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while !this.wbuf.is_empty() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &this.wbuf))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.wbuf.drain(..n);
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelogin_round_trip() {
        let req = prelogin_request(ENCRYPT_ON, true);
        // Our own request parses with our own parser (version 0.0.0, encryption on).
        let p = parse_prelogin(&req).unwrap();
        assert_eq!(p.encryption, Some(ENCRYPT_ON));
        assert_eq!(p.fedauth_required, Some(true));
        assert_eq!(p.version.as_deref(), Some("0.0.0"));
    }

    #[test]
    fn prelogin_answer_from_sql_server_2022() {
        // VERSION 16.0.1000.0, ENCRYPTION required, no FEDAUTHREQUIRED.
        let payload = [
            0x00, 0x00, 0x0b, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xff, 0x10, 0x00, 0x03,
            0xe8, 0x00, 0x00, 0x03,
        ];
        let p = parse_prelogin(&payload).unwrap();
        assert_eq!(p.version.as_deref(), Some("16.0.1000"));
        assert_eq!(p.encryption, Some(ENCRYPT_REQ));
        assert_eq!(p.fedauth_required, None);
    }

    #[test]
    fn bad_prelogin_answers_are_errors_not_panics() {
        for bad in [
            &[][..],
            &[0x00, 0x00][..],
            &[0x00, 0xff, 0xff, 0x00, 0x06, 0xff][..],
            &[0x01; 300][..],
        ] {
            assert!(parse_prelogin(bad).is_err(), "{bad:?}");
        }
    }
}
