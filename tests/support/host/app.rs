//! The handler under test with its loopback peers.

use super::*;

// ---------------------------------------------------------------- the app under test

/// The handler under test on 127.0.0.1:0 with loopback peers: a Private-DNS-shaped
/// zone (`support::dns`), an open port and a closed one. Nothing leaves 127.0.0.0/8.
pub struct App {
    pub host: Host,
    pub state: std::sync::Arc<routeproof::handler::State>,
    pub dns: super::super::dns::DnsServer,
    pub open: SocketAddr,
    pub closed: SocketAddr,
    _listener: tokio::net::TcpListener,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Three targets that pass: a private endpoint by name, an IP, a DNS-only check.
pub const TARGETS_OK: &str = r#"
[[targets]]
name = "sql"
target = "tcp://loopsql.database.windows.net:{open}"
private = true

[[targets]]
name = "api"
target = "tcp://127.0.0.1:{open}"

[[targets]]
name = "pe-dns"
target = "dns://myserver.database.windows.net"
private = true
"#;

/// `TARGETS_OK` plus one that fails (`tcp.refused`).
pub const TARGETS_MIXED: &str = r#"
[[targets]]
name = "sql"
target = "tcp://loopsql.database.windows.net:{open}"
private = true

[[targets]]
name = "api"
target = "tcp://127.0.0.1:{open}"

[[targets]]
name = "pe-dns"
target = "dns://myserver.database.windows.net"
private = true

[[targets]]
name = "down"
target = "tcp://127.0.0.1:{closed}"
"#;

impl App {
    pub async fn start(targets: &str) -> App {
        App::start_with(targets, routeproof::handler::Settings::default(), None).await
    }

    /// `dns` overrides the DNS server the engine asks (e.g. a gate in front of it).
    pub async fn start_with(
        targets: &str,
        settings: routeproof::handler::Settings,
        dns: Option<SocketAddr>,
    ) -> App {
        let server =
            super::super::dns::DnsServer::start(super::super::dns::Zone::privatelink_fixture())
                .await;
        // Held but never accepted from: the kernel completes the handshake.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let text = format!(
            "[engine]\ndns_servers = [\"{}\"]\ndeadline = \"60s\"\ntcp_settle = \"0s\"\n[engine.timeouts]\ndns = \"30s\"\ntcp = \"5s\"\n{}",
            dns.unwrap_or(server.addr),
            targets
                .replace("{open}", &open.port().to_string())
                .replace("{closed}", &closed.port().to_string())
        );
        let cfg = routeproof::config::parse(&text, &|_| None).expect("test config");
        let state = routeproof::handler::State::new(cfg, settings, &|_| None).expect("state");
        let handler = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = handler.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(routeproof::handler::run(
            handler,
            std::sync::Arc::clone(&state),
            async move {
                let _ = stopped.await;
            },
        ));
        App {
            host: Host::new(addr),
            state,
            dns: server,
            open,
            closed,
            _listener: listener,
            stop: Some(stop),
        }
    }
}
