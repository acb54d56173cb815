//! TDS 7.x carries the TLS handshake *inside* TDS packets of type PRELOGIN (0x12),
//! in both directions; once the handshake completes, TLS records flow bare on the
//! TCP stream with the TDS packets inside them (MS-TDS 3.2.5.2/3.3.5.2).
//!
//! [`PreloginShim`] sits between rustls and the socket so rustls sees a plain byte
//! stream: while wrapping, reads strip TDS headers and writes are buffered until
//! flush, then sent as one PRELOGIN message (the flight a client waits for is one
//! message ending in EOM, as SQL Server sends it). [`PreloginShim::unwrap_records`]
//! switches to pass-through when the handshake is done.
//!
//! Reads never go past the current packet, so no byte after the handshake is
//! consumed while still in wrapping mode. A client whose TLS library emits its last
//! handshake records bare (OpenSSL memory-BIO drivers with TLS 1.3 do) is detected
//! by the first byte: a TLS content type (20..=23) can never be a TDS packet type.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::packet::{self, HEADER_LEN, ty};

pub struct PreloginShim<S> {
    inner: S,
    wrapping: bool,
    // read side
    header: [u8; HEADER_LEN],
    header_len: usize,
    remaining: usize,
    /// Bytes read while sniffing a header that turned out to be a bare TLS record.
    sniffed: Vec<u8>,
    // write side
    out_plain: Vec<u8>,
    out_framed: Vec<u8>,
    out_pos: usize,
}

impl<S> PreloginShim<S> {
    pub fn new(inner: S) -> PreloginShim<S> {
        PreloginShim {
            inner,
            wrapping: true,
            header: [0; HEADER_LEN],
            header_len: 0,
            remaining: 0,
            sniffed: Vec::new(),
            out_plain: Vec::new(),
            out_framed: Vec::new(),
            out_pos: 0,
        }
    }

    /// From now on, TLS records go straight to and from the socket.
    pub fn unwrap_records(&mut self) {
        self.wrapping = false;
    }

    /// The socket, for login-only encryption, where TLS is dropped after LOGIN7.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PreloginShim<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.sniffed.is_empty() {
            let n = this.sniffed.len().min(buf.remaining());
            buf.put_slice(&this.sniffed[..n]);
            this.sniffed.drain(..n);
            return Poll::Ready(Ok(()));
        }
        if !this.wrapping {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        loop {
            if this.remaining > 0 {
                let want = this.remaining.min(buf.remaining());
                let mut limited = ReadBuf::new(buf.initialize_unfilled_to(want));
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
                let n = limited.filled().len();
                buf.advance(n);
                this.remaining -= n;
                return Poll::Ready(Ok(()));
            }
            // Collect the next packet header one read at a time.
            let mut hdr = ReadBuf::new(&mut this.header[this.header_len..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut hdr))?;
            let n = hdr.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(())); // EOF: rustls reports the handshake failure
            }
            this.header_len += n;
            if (20..=23).contains(&this.header[0]) {
                // A bare TLS record: the client already left the wrapping phase.
                this.wrapping = false;
                this.sniffed = this.header[..this.header_len].to_vec();
                this.header_len = 0;
                let n = this.sniffed.len().min(buf.remaining());
                buf.put_slice(&this.sniffed[..n]);
                this.sniffed.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if this.header[0] != ty::PRELOGIN {
                return Poll::Ready(Err(packet::invalid(format!(
                    "TDS packet type {:#04x} during the TLS handshake",
                    this.header[0]
                ))));
            }
            if this.header_len < HEADER_LEN {
                continue;
            }
            let len = u16::from_be_bytes([this.header[2], this.header[3]]) as usize;
            this.header_len = 0;
            this.remaining = len.saturating_sub(HEADER_LEN);
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PreloginShim<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.wrapping {
            this.out_plain.extend_from_slice(data);
            return Poll::Ready(Ok(data.len()));
        }
        ready!(this.drain_framed(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.out_plain.is_empty() && this.out_framed.is_empty() {
            this.out_framed = packet::frame(
                ty::PRELOGIN,
                &this.out_plain,
                packet::DEFAULT_PACKET_SIZE,
                0,
            );
            this.out_plain.clear();
            this.out_pos = 0;
        }
        ready!(this.drain_framed(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: AsyncWrite + Unpin> PreloginShim<S> {
    fn drain_framed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out_framed.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out_framed[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.out_framed.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}
