//! Lingering close, as nginx's `lingering_close` does it: when a connection ends while
//! the client may still be sending (a refused oversized body), closing at once would
//! make the kernel answer the unread bytes with a reset, and a reset can destroy our
//! `413` before the client reads it. So a closing connection first half-closes (our
//! reply and a FIN go out), then reads and discards what still arrives, within
//! `LINGER_TIME` and `LINGER_BYTES`, and only then closes. Both caps keep the
//! connection from being held open by a client that never stops.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The longest a closing connection keeps reading.
pub const LINGER_TIME: Duration = Duration::from_secs(5);
/// The most a closing connection reads (and discards).
pub const LINGER_BYTES: u64 = 16 * 1024 * 1024;

/// The handler's listener: plain TCP whose connections close with a linger. `early`
/// holds connections accepted before the runtime ran (`super::early`), served first.
pub struct Listener {
    pub tcp: TcpListener,
    pub early: std::collections::VecDeque<std::net::TcpStream>,
}

impl axum::serve::Listener for Listener {
    type Io = Lingering;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        while let Some(std_tcp) = self.early.pop_front() {
            // Already non-blocking (`super::early`); one that cannot be adopted is dropped.
            let adopted = std_tcp
                .peer_addr()
                .and_then(|addr| Ok((TcpStream::from_std(std_tcp)?, addr)));
            if let Ok((tcp, addr)) = adopted {
                let _ = tcp.set_nodelay(true);
                return (Lingering(Some(tcp)), addr);
            }
        }
        loop {
            match self.tcp.accept().await {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    return (Lingering(Some(tcp)), addr);
                }
                // Out of file descriptors and the like: wait a little, as axum's own
                // TcpListener does, instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A TCP connection that lingers when dropped.
pub struct Lingering(Option<TcpStream>);

impl Lingering {
    fn tcp(&mut self) -> &mut TcpStream {
        self.0.as_mut().expect("a live connection until dropped")
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.tcp()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.tcp()).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.tcp()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.tcp()).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.tcp()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.as_ref().is_some_and(|t| t.is_write_vectored())
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(tcp) = self.0.take() else { return };
        // Outside a runtime (never, under axum) the stream just closes.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(linger(tcp));
        }
    }
}

/// Half-closes, then discards what the client still sends, within both caps.
async fn linger(mut tcp: TcpStream) {
    let _ = tcp.shutdown().await;
    let work = async {
        // Small: most clients send nothing more, and zeroing 64 KiB per connection showed in
        // the start-up profile (docs/benchmarks.md, "Cold start").
        let mut buf = vec![0u8; 8 * 1024];
        let mut seen: u64 = 0;
        while seen < LINGER_BYTES {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen += n as u64,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, work).await;
}
