//! The connection under the AMQP probe: bytes in and out under the deadline, frames,
//! protocol headers, and the evidence and timings being recorded.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::codec::{self, Frame, Value};
use super::{ErrorKind, Evidence, Fail, IoStream, MAX_FRAME, Phase, Timing, fail};

/// The connection, the deadline and the evidence being built.
pub(crate) struct Conn<'a> {
    pub io: Box<dyn IoStream + 'a>,
    pub deadline: Instant,
    pub ev: Evidence,
    pub phase: Phase,
    pub started: Instant,
    pub secrets: Vec<String>,
}

impl<'a> Conn<'a> {
    pub fn begin(&mut self, phase: Phase) {
        self.phase = phase;
        self.started = Instant::now();
    }

    pub fn done(&mut self) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.ev.timings.push(Timing {
            phase: self.phase,
            ms: (ms * 1000.0).round() / 1000.0,
        });
    }

    pub fn redact(&self, text: &str) -> String {
        super::redact(text, &self.secrets)
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        let deadline = self.deadline;
        let io = &mut self.io;
        match tokio::time::timeout_at(deadline, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => io_fail(e),
            Err(_) => fail(ErrorKind::Timeout, "deadline reached while sending"),
        }
    }

    pub async fn send(
        &mut self,
        kind: u8,
        channel: u16,
        p: &Value,
        payload: &[u8],
    ) -> Result<(), Fail> {
        let bytes = codec::encode_frame(kind, channel, p, payload);
        self.write(&bytes).await
    }

    /// Reads a protocol header, classifying early bytes that cannot become one.
    pub async fn read_header(&mut self) -> Result<[u8; 8], Fail> {
        let mut buf = [0u8; 8];
        let mut n = 0;
        while n < 8 {
            let deadline = self.deadline;
            let io = &mut self.io;
            let got = match tokio::time::timeout_at(deadline, io.read(&mut buf[n..])).await {
                Ok(Ok(g)) => g,
                Ok(Err(e)) => return io_fail(e),
                Err(_) if n == 0 => {
                    return fail(
                        ErrorKind::Timeout,
                        "nothing answered the AMQP protocol header before the deadline",
                    );
                }
                Err(_) => {
                    return fail(
                        ErrorKind::Timeout,
                        format!(
                            "only {} of 8 header bytes arrived: {}",
                            n,
                            printable(&buf[..n])
                        ),
                    );
                }
            };
            if got == 0 {
                return match n {
                    0 => fail(
                        ErrorKind::Closed,
                        "the server closed the connection without answering the protocol header",
                    ),
                    _ => fail(
                        ErrorKind::NotThisProtocol,
                        format!("the server sent {} and closed", printable(&buf[..n])),
                    ),
                };
            }
            n += got;
            let k = n.min(4);
            if buf[..k] != b"AMQP"[..k] {
                self.ev.header = Some(printable(&buf[..n]));
                return fail(ErrorKind::NotThisProtocol, describe_foreign(&buf[..n]));
            }
        }
        self.ev.header = Some(header_text(&buf));
        Ok(buf)
    }

    /// Reads the next non-empty frame.
    pub async fn read_frame(&mut self) -> Result<Frame, Fail> {
        loop {
            let mut h = [0u8; 8];
            let deadline = self.deadline;
            let io = &mut self.io;
            match tokio::time::timeout_at(deadline, io.read_exact(&mut h)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return io_fail(e),
                Err(_) => return fail(ErrorKind::Timeout, "deadline reached waiting for a frame"),
            }
            let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
            if !(8..=MAX_FRAME).contains(&size) {
                return fail(
                    ErrorKind::ProtocolError,
                    format!("frame size {size} out of range"),
                );
            }
            let mut rest = vec![0u8; size as usize - 8];
            let io = &mut self.io;
            match tokio::time::timeout_at(deadline, io.read_exact(&mut rest)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return io_fail(e),
                Err(_) => return fail(ErrorKind::Timeout, "deadline reached inside a frame"),
            }
            let frame = codec::decode_frame(h, &rest).map_err(|e| Fail {
                kind: ErrorKind::ProtocolError,
                message: format!("bad frame: {e}"),
            })?;
            if frame.performative.is_some() {
                return Ok(frame);
            }
        }
    }
}

fn io_fail<T>(e: std::io::Error) -> Result<T, Fail> {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => fail(
            ErrorKind::Closed,
            format!("the server closed the connection ({e})"),
        ),
        _ => fail(ErrorKind::Io, e.to_string()),
    }
}

/// Header bytes as `AMQP a.b.c.d`, or escaped text.
fn header_text(h: &[u8; 8]) -> String {
    if &h[..4] == b"AMQP" {
        format!("AMQP {}.{}.{}.{}", h[4], h[5], h[6], h[7])
    } else {
        printable(h)
    }
}

pub(crate) fn printable(b: &[u8]) -> String {
    b.iter()
        .take(48)
        .flat_map(|c| std::ascii::escape_default(*c))
        .map(char::from)
        .collect()
}

fn describe_foreign(b: &[u8]) -> String {
    let what = if b.starts_with(b"HTTP/") || b.starts_with(b"HTT") {
        "an HTTP server answered"
    } else if b.first() == Some(&0x15) {
        "a TLS server answered with an alert (this port expects TLS first)"
    } else if b.first() == Some(&0x16) {
        "a TLS handshake record answered"
    } else {
        "something other than AMQP answered"
    };
    format!("{what}: {}", printable(b))
}
