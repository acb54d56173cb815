//! HTTP and HTTPS peers for the TLS and HTTP layer tests: axum behind a rustls
//! listener (certificates from `support::certs`), plus raw-socket responders for the
//! misbehaviours a well-behaved framework will not produce (a stalled body, a response
//! that is not HTTP, a TLS server that never answers the ClientHello). 127.0.0.1 only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The routes every test server answers.
pub fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok: routeproof test server" }))
        .route("/500", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route("/redirect", get(|| async { Redirect::to("/") }))
        .route("/loop-a", get(|| async { Redirect::to("/loop-b") }))
        .route("/loop-b", get(|| async { Redirect::to("/loop-a") }))
        .route("/elsewhere", get(|| async { Redirect::to("https://other.example.test/") }))
        .route("/big", get(|| async { "x".repeat(200 * 1024) }))
        .route(
            "/pna",
            get(|| async {
                (
                    StatusCode::FORBIDDEN,
                    "<h1>Error 403 - Forbidden</h1><p>Public network access is disabled for this resource.</p>",
                )
            }),
        )
        .route(
            "/401",
            get(|| async { (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "login") }),
        )
        .route(
            // Storage-shaped (Azurite's path-style account): an anonymous list is 401
            // NoAuthenticationInformation; with a credential 403
            // AuthorizationPermissionMismatch whose message echoes the Authorization
            // header, as a careless proxy might: the planted-secret test needs the token
            // to come back.
            "/devstoreaccount1",
            get(|hm: HeaderMap| async move {
                match hm.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
                    None => (
                        StatusCode::UNAUTHORIZED,
                        [("x-ms-request-id", "s-401"), ("x-ms-error-code", "NoAuthenticationInformation")],
                        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>NoAuthenticationInformation</Code><Message>no credentials</Message></Error>".to_string(),
                    )
                        .into_response(),
                    Some(auth) => (
                        StatusCode::FORBIDDEN,
                        [("x-ms-request-id", "s-403"), ("x-ms-error-code", "AuthorizationPermissionMismatch")],
                        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>denied for {auth}</Message></Error>"),
                    )
                        .into_response(),
                }
            }),
        )
        .route(
            "/echo-headers",
            get(|hm: HeaderMap| async move {
                let host = hm.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let key = hm.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                ([("x-ms-request-id", "req-42"), ("x-seen-host", "yes")], format!("host={host} key={key}"))
                    .into_response()
            }),
        )
}

/// A rustls listener for `axum::serve`. Handshakes the client aborts (it rejected our
/// certificate, which is what many tests want) are skipped, not fatal.
pub struct TlsListener {
    inner: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.inner.accept().await else {
                continue;
            };
            let hs = tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await;
            if let Ok(Ok(tls)) = hs {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A running server; dropping it stops it.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn https(config: Arc<rustls::ServerConfig>) -> Server {
    https_with(config, app()).await
}

/// `router` behind rustls on 127.0.0.1:0 (a peer with routes of its own).
pub async fn https_with(config: Arc<rustls::ServerConfig>, router: Router) -> Server {
    let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = inner.local_addr().unwrap();
    let listener = TlsListener {
        inner,
        acceptor: TlsAcceptor::from(config),
    };
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Server { addr, task }
}

pub async fn http() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app()).await;
    });
    Server { addr, task }
}

/// A raw TCP peer: reads the request head, then runs `reply` on the socket.
pub async fn raw<F, Fut>(reply: F) -> Server
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = Arc::new(reply);
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let reply = Arc::clone(&reply);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                reply(s).await;
            });
        }
    });
    Server { addr, task }
}

/// Headers, then half the promised body, then silence.
pub async fn stalled_body() -> Server {
    raw(|mut s| async move {
        let _ = s
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\ncontent-type: text/plain\r\n\r\nhalf",
            )
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await
}

/// Something that is not HTTP.
pub async fn not_http() -> Server {
    raw(|mut s| async move {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    })
    .await
}

/// Accepts TCP and never speaks: a TLS client waits for a ServerHello forever.
pub async fn silent() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    Server { addr, task }
}
