//! AMQP over WebSockets: the client side of RFC 6455 on the proven stream, as Service
//! Bus and Event Hubs accept it on 443 at `/$servicebus/websocket` with subprotocol
//! `AMQPWSB10` (OASIS "AMQP WebSocket Binding 1.0": AMQP bytes in binary messages).
//!
//! Hand-written: the upgrade is one request and the framing a few header bytes; a
//! WebSocket crate would bring its own HTTP types and a Stream/Sink interface that
//! would still need an adapter back to `AsyncRead`/`AsyncWrite`; tokio-tungstenite
//! (handshake only) would add about 256 KB (docs/protocols.md). SHA-1 (for `Sec-WebSocket-Accept`) and the random key and masks come
//! from aws-lc-rs, already linked for TLS.
//!
//! [`WsStream`] turns binary and continuation frames back into a byte stream, answers
//! pings, and reports a close frame as end of stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use super::{ErrorKind, printable};

pub const SUBPROTOCOL: &str = "AMQPWSB10";
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
const MAX_FRAME_OUT: usize = 64 * 1024;

#[derive(Debug, Clone, Default, Serialize)]
pub struct WsEvidence {
    /// The HTTP status of the upgrade answer (101 when it worked).
    pub status: u16,
    pub subprotocol: Option<String>,
    /// The `Server` header, when the answer has one.
    pub server: Option<String>,
}

#[derive(Debug)]
pub struct WsError {
    pub kind: ErrorKind,
    pub message: String,
}

fn werr<T>(kind: ErrorKind, message: impl Into<String>) -> Result<T, WsError> {
    Err(WsError {
        kind,
        message: message.into(),
    })
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455, 4.2.2).
pub fn accept_for(key: &str) -> String {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{ACCEPT_GUID}").as_bytes(),
    );
    base64(d.as_ref())
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // A failing system RNG leaves zeros: the key and masks only need to differ per
    // connection for proxies' sake, they protect nothing secret.
    let _ = aws_lc_rs::rand::fill(&mut b);
    b
}

/// Upgrades `io` to a WebSocket for AMQP; returns the stream and what the server said.
pub async fn connect<IO>(
    mut io: IO,
    host: &str,
    path: &str,
    deadline: Instant,
) -> Result<(WsStream<IO>, WsEvidence), WsError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let key = base64(&random::<16>());
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
    );
    let head = tokio::time::timeout_at(deadline, async {
        io.write_all(req.as_bytes()).await?;
        io.flush().await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok::<_, io::Error>(Some((buf, end + 4)));
            }
            if buf.len() > MAX_RESPONSE_HEAD {
                return Ok(Some((buf, 0)));
            }
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                return if buf.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some((buf, 0)))
                };
            }
            buf.extend(&chunk[..n]);
            if !b"HTTP/".starts_with(&buf[..buf.len().min(5)]) && !buf.starts_with(b"HTTP/") {
                return Ok(Some((buf, 0)));
            }
        }
    })
    .await;
    let (buf, end) = match head {
        Err(_) => {
            return werr(
                ErrorKind::Timeout,
                "deadline reached waiting for the WebSocket upgrade answer",
            );
        }
        Ok(Err(e)) => {
            return werr(
                ErrorKind::Closed,
                format!("the connection failed during the WebSocket upgrade: {e}"),
            );
        }
        Ok(Ok(None)) => {
            return werr(
                ErrorKind::Closed,
                "the server closed the connection without answering the WebSocket upgrade",
            );
        }
        Ok(Ok(Some(x))) => x,
    };
    if !buf.starts_with(b"HTTP/") {
        return werr(
            ErrorKind::NotThisProtocol,
            format!(
                "not an HTTP answer to the WebSocket upgrade: {}",
                printable(&buf)
            ),
        );
    }
    if end == 0 {
        return werr(
            ErrorKind::WebSocketRefused,
            "the upgrade answer's header is incomplete or too long",
        );
    }
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let ev = WsEvidence {
        status,
        subprotocol: header("sec-websocket-protocol"),
        server: header("server").map(|s| s.chars().take(80).collect()),
    };
    if status != 101 {
        let reason: String = status_line.chars().take(120).collect();
        return werr(
            ErrorKind::WebSocketRefused,
            format!("the WebSocket upgrade to {path} was answered `{reason}`, not 101"),
        );
    }
    if header("sec-websocket-accept").as_deref() != Some(accept_for(&key).as_str()) {
        return werr(
            ErrorKind::WebSocketRefused,
            "101 without the right Sec-WebSocket-Accept: not a WebSocket server",
        );
    }
    if !ev
        .subprotocol
        .as_deref()
        .is_some_and(|p| p.split(',').any(|x| x.trim() == SUBPROTOCOL))
    {
        return werr(
            ErrorKind::WebSocketRefused,
            format!("the WebSocket server did not agree to subprotocol {SUBPROTOCOL}"),
        );
    }
    let stream = WsStream {
        io,
        rbuf: buf[end..].to_vec(),
        payload_left: 0,
        wbuf: Vec::new(),
        eof: false,
        close_sent: false,
    };
    Ok((stream, ev))
}

/// Encodes one masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend((n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend((n as u64).to_be_bytes());
        }
    }
    let mask = random::<4>();
    f.extend(mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A WebSocket as a byte stream: binary payloads in, binary frames out.
pub struct WsStream<IO> {
    io: IO,
    /// Bytes read from the server and not yet parsed.
    rbuf: Vec<u8>,
    /// Payload bytes of the current data frame still to hand out.
    payload_left: u64,
    /// Encoded frames not yet written.
    wbuf: Vec<u8>,
    eof: bool,
    close_sent: bool,
}

enum Parsed {
    Need,
    Data(u64),
    Control { opcode: u8, len: usize },
}

impl<IO: AsyncRead + AsyncWrite + Unpin> WsStream<IO> {
    fn parse_header(&self) -> io::Result<(Parsed, usize)> {
        let b = &self.rbuf;
        if b.len() < 2 {
            return Ok((Parsed::Need, 0));
        }
        let opcode = b[0] & 0x0f;
        if b[1] & 0x80 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the server sent a masked WebSocket frame",
            ));
        }
        let (len, hl) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap_or_default()),
                10,
            ),
            126 | 127 => return Ok((Parsed::Need, 0)),
            n => (u64::from(n), 2),
        };
        match opcode {
            0x0 | 0x2 => Ok((Parsed::Data(len), hl)),
            0x8..=0xa => {
                if len > 125 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "oversized WebSocket control frame",
                    ));
                }
                if b.len() < hl + len as usize {
                    return Ok((Parsed::Need, 0));
                }
                Ok((
                    Parsed::Control {
                        opcode,
                        len: len as usize,
                    },
                    hl,
                ))
            }
            o => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected WebSocket opcode {o} (AMQP uses binary frames)"),
            )),
        }
    }

    /// Writes as much of `wbuf` as the socket takes now.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.wbuf.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.wbuf))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wbuf.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.payload_left > 0 && !this.rbuf.is_empty() {
                let n =
                    (this.payload_left.min(this.rbuf.len() as u64) as usize).min(out.remaining());
                out.put_slice(&this.rbuf[..n]);
                this.rbuf.drain(..n);
                this.payload_left -= n as u64;
                return Poll::Ready(Ok(()));
            }
            if this.payload_left == 0 {
                match this.parse_header()? {
                    (Parsed::Data(len), hl) => {
                        this.rbuf.drain(..hl);
                        this.payload_left = len;
                        continue;
                    }
                    (Parsed::Control { opcode, len }, hl) => {
                        let payload: Vec<u8> = this.rbuf[hl..hl + len].to_vec();
                        this.rbuf.drain(..hl + len);
                        match opcode {
                            0x8 => this.eof = true,
                            0x9 => this.wbuf.extend(client_frame(0xa, &payload)),
                            _ => {}
                        }
                        continue;
                    }
                    (Parsed::Need, _) => {}
                }
            }
            // Opportunistic: a pong queued above goes out even if nobody writes.
            if !this.wbuf.is_empty() {
                let _ = this.poll_drain(cx);
            }
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                return Poll::Ready(if this.payload_left > 0 || !this.rbuf.is_empty() {
                    Err(io::ErrorKind::UnexpectedEof.into())
                } else {
                    Ok(())
                });
            }
            this.rbuf.extend(rb.filled());
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let n = buf.len().min(MAX_FRAME_OUT);
        this.wbuf.extend(client_frame(0x2, &buf[..n]));
        let _ = this.poll_drain(cx)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            this.close_sent = true;
            this.wbuf.extend(client_frame(0x8, &1000u16.to_be_bytes()));
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_matches_rfc_example() {
        // RFC 6455, section 1.3.
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn client_frames_are_masked() {
        let f = client_frame(0x2, b"AMQP");
        assert_eq!(f[0], 0x82);
        assert_eq!(f[1], 0x80 | 4);
        let mask = &f[2..6];
        let un: Vec<u8> = f[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(un, b"AMQP");
        assert_eq!(client_frame(0x2, &[0; 300])[1], 0x80 | 126);
    }
}
