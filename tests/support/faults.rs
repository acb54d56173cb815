//! Scripted loopback servers for the protocol faults of the battery: each connection
//! runs the same script (read, write, accept TLS, stall, close), so one helper plays
//! "TLS accepted, then silence", "closes after the first answer", "answers the
//! ClientHello with an alert", and the few bytes of a protocol's own opening (a
//! PostgreSQL `S`/`N`, a MySQL greeting) that come before those.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One step of a fault server's script.
#[derive(Clone)]
pub enum Act {
    /// Read exactly this many bytes (the script ends if the client closes first).
    Read(usize),
    /// Read whatever arrives next (at least one byte).
    ReadSome,
    Write(Vec<u8>),
    /// Accept TLS with this configuration; the rest of the script runs inside it.
    Tls(Arc<rustls::ServerConfig>),
    /// Read and discard until the client closes: accepted, then silence.
    Stall,
    /// Close the connection (a FIN) now.
    Close,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A fault server, stopped when dropped.
pub struct Fault {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fault {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a listener on 127.0.0.1 that runs `script` on every connection.
pub async fn scripted(script: Vec<Act>) -> Fault {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(script);
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let script = Arc::clone(&script);
            tokio::spawn(async move {
                let mut io: Box<dyn Io> = Box::new(s);
                for act in script.iter() {
                    match act {
                        Act::Read(n) => {
                            let mut b = vec![0u8; *n];
                            if io.read_exact(&mut b).await.is_err() {
                                return;
                            }
                        }
                        Act::ReadSome => {
                            let mut b = [0u8; 4096];
                            if !matches!(io.read(&mut b).await, Ok(n) if n > 0) {
                                return;
                            }
                        }
                        Act::Write(bytes) => {
                            if io.write_all(bytes).await.is_err() {
                                return;
                            }
                        }
                        Act::Tls(cfg) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(cfg));
                            match acceptor.accept(io).await {
                                Ok(t) => io = Box::new(t),
                                Err(_) => return,
                            }
                        }
                        Act::Stall => {
                            let mut b = [0u8; 4096];
                            // Bounded so a client that never closes cannot pin the task.
                            let _ = tokio::time::timeout(Duration::from_secs(60), async {
                                while matches!(io.read(&mut b).await, Ok(n) if n > 0) {}
                            })
                            .await;
                            return;
                        }
                        Act::Close => {
                            let _ = io.shutdown().await;
                            return;
                        }
                    }
                }
            });
        }
    });
    Fault { addr, task }
}

/// A fatal TLS alert record (`handshake_failure`, RFC 8446 6.2): a TLS server refusing
/// the ClientHello.
pub const TLS_ALERT_HANDSHAKE_FAILURE: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

/// A MySQL protocol-10 greeting (MySQL's "Protocol::HandshakeV10", the MariaDB/MySQL
/// client-server protocol documentation), sequence 0, with or without CLIENT_SSL, and
/// `mysql_native_password` as the plugin.
pub fn mysql_greeting(ssl: bool) -> Vec<u8> {
    const CLIENT_PROTOCOL_41: u32 = 0x200;
    const CLIENT_SSL: u32 = 0x800;
    const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
    const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
    let mut caps = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
    if ssl {
        caps |= CLIENT_SSL;
    }
    let mut p = vec![10u8];
    p.extend(b"10.11.0-fault\0");
    p.extend(7u32.to_le_bytes()); // connection id
    p.extend(b"abcdefgh\0"); // auth-plugin-data part 1 + filler
    p.extend(((caps & 0xffff) as u16).to_le_bytes());
    p.push(45); // utf8mb4_general_ci
    p.extend(2u16.to_le_bytes()); // SERVER_STATUS_AUTOCOMMIT
    p.extend(((caps >> 16) as u16).to_le_bytes());
    p.push(21); // auth-plugin-data length
    p.extend([0u8; 10]);
    p.extend(b"ijklmnopqrst\0"); // auth-plugin-data part 2
    p.extend(b"mysql_native_password\0");
    let mut out = (p.len() as u32).to_le_bytes()[..3].to_vec();
    out.push(0);
    out.extend(p);
    out
}
