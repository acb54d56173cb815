//! The VNet lab's servers (scripts/lab.sh, docs/lab.md): run inside one of the lab's
//! network namespaces (`ip netns exec rpl-pe lab_peer ...`), it serves the private or
//! public side of the lab's Azure services on the addresses it is given.
//!
//! - `--tds ADDR` : a SQL gateway (Proxy connection policy): PRELOGIN, TLS, login.
//! - `--tds ADDR=HOST:PORT` : a SQL gateway under the Redirect policy: after the login
//!   it sends the routing ENVCHANGE to HOST:PORT, as Azure SQL's gateway does.
//! - `--witness ADDR` : an HTTPS endpoint shaped like Key Vault's (docs/lab.md): an
//!   anonymous request gets 401 with a Bearer challenge and an
//!   `x-ms-keyvault-network-info` header naming the client address it saw.
//! - `--big ADDR` : the same witness with a certificate of several kilobytes, so the
//!   server's TLS flight needs full-size packets (the path-MTU scenario).
//!
//! The TDS server is the test server of tests/support/tds (checked against real
//! drivers in tests/tds_peer.rs); it binds loopback only, so each TDS address here is
//! a plain TCP relay to it inside the same namespace. One CA (written to `--ca-out`)
//! signs every certificate of the process; `--names` are the leaf's DNS names.
//! The SQL login accepted is `--user` with the password from the environment variable
//! `LAB_SQL_PASSWORD` (never an argument, so it is not visible in `ps`).
//! `--ready FILE` is written once every address is bound.

#[allow(dead_code, unused_imports)]
#[path = "../tests/support/certs.rs"]
mod certs;
#[allow(dead_code, unused_imports)]
#[path = "../tests/support/tds/mod.rs"]
mod tds;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use certs::{Ca, LeafSpec};
use tds::{Encryption, TdsConfig, TdsServer};

#[derive(Default)]
struct Args {
    tds: Vec<(SocketAddr, Option<(String, u16)>)>,
    witness: Vec<SocketAddr>,
    big: Vec<SocketAddr>,
    names: Vec<String>,
    ca_out: Option<PathBuf>,
    ready: Option<PathBuf>,
    user: String,
}

fn usage(msg: &str) -> ! {
    eprintln!("lab_peer: {msg}");
    eprintln!(
        "usage: lab_peer [--tds ADDR[=HOST:PORT]]... [--witness ADDR]... [--big ADDR]... \
         --names N1,N2 --ca-out FILE [--user U] [--ready FILE]"
    );
    std::process::exit(2)
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| usage(&format!("not an address: {s}")))
}

fn parse_args() -> Args {
    let mut a = Args {
        user: "app".into(),
        ..Default::default()
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--tds" => {
                let v = val();
                let (listen, route) = match v.split_once('=') {
                    Some((l, r)) => {
                        let (h, p) = r
                            .rsplit_once(':')
                            .unwrap_or_else(|| usage("redirect target is HOST:PORT"));
                        let p = p.parse().unwrap_or_else(|_| usage("bad redirect port"));
                        (l.to_string(), Some((h.to_string(), p)))
                    }
                    None => (v, None),
                };
                a.tds.push((addr(&listen), route));
            }
            "--witness" => a.witness.push(addr(&val())),
            "--big" => a.big.push(addr(&val())),
            "--names" => a.names = val().split(',').map(str::to_string).collect(),
            "--ca-out" => a.ca_out = Some(PathBuf::from(val())),
            "--ready" => a.ready = Some(PathBuf::from(val())),
            "--user" => a.user = val(),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if a.names.is_empty() {
        usage("--names is required");
    }
    a
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof VNet lab CA");
    let leaf = ca.issue(&LeafSpec::new(args.names.clone()));
    if let Some(p) = &args.ca_out {
        std::fs::write(p, ca.pem()).unwrap_or_else(|e| usage(&format!("{}: {e}", p.display())));
    }
    let password = std::env::var("LAB_SQL_PASSWORD").unwrap_or_default();

    let mut tasks = Vec::new();
    for (listen, route) in &args.tds {
        let mut cfg = TdsConfig::default()
            .encrypted(Encryption::Required, leaf.clone())
            .user(&args.user, &password);
        cfg.server_name = format!("lab-{listen}");
        cfg.route_to = route.clone();
        let server = TdsServer::start(cfg).await;
        let listener = bind(*listen).await;
        tasks.push(tokio::spawn(relay(listener, server)));
    }
    let web = leaf.server_config(&[], &[b"http/1.1"]);
    for w in &args.witness {
        tasks.push(tokio::spawn(witness(bind(*w).await, web.clone())));
    }
    if !args.big.is_empty() {
        // About 150 extra names make a certificate of several kilobytes: the server's
        // first flight spans several full-size TCP segments.
        let mut names = args.names.clone();
        names.extend((0..150).map(|i| format!("s{i:03}.filler.lab.azurewebsites.net")));
        let big = ca
            .issue(&LeafSpec::new(names))
            .server_config(&[], &[b"http/1.1"]);
        for b in &args.big {
            tasks.push(tokio::spawn(witness(bind(*b).await, big.clone())));
        }
    }
    if let Some(p) = &args.ready {
        std::fs::write(p, "ready\n").unwrap_or_else(|e| usage(&format!("{}: {e}", p.display())));
    }
    eprintln!("lab_peer: serving (pid {})", std::process::id());
    for t in tasks {
        let _ = t.await;
    }
}

async fn bind(a: SocketAddr) -> TcpListener {
    TcpListener::bind(a)
        .await
        .unwrap_or_else(|e| usage(&format!("cannot bind {a}: {e}")))
}

/// Every accepted connection is relayed to the loopback TDS server, byte for byte.
async fn relay(listener: TcpListener, server: TdsServer) {
    let target = server.addr;
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        let _ = inbound.set_nodelay(true);
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
    // `server` lives as long as the loop, which never ends.
}

static REQUESTS: AtomicU64 = AtomicU64::new(1);

/// Key Vault's answer to an anonymous request (docs/azure-facts.md, row V4, and
/// docs/services.md): 401, a Bearer challenge, and the client address it saw.
async fn witness(listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut s) = acceptor.accept(tcp).await else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 2048];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let ip = peer.ip();
            let fam = if ip.is_ipv4() {
                "InterNetwork"
            } else {
                "InterNetworkV6"
            };
            let body = format!("{{\"error\":{{\"code\":\"Unauthorized\"}},\"client\":\"{ip}\"}}");
            let resp = format!(
                "HTTP/1.1 401 Unauthorized\r\n\
                 content-type: application/json; charset=utf-8\r\n\
                 www-authenticate: Bearer authorization=\"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000\", resource=\"https://vault.azure.net\"\r\n\
                 x-ms-keyvault-network-info: conn_type=Ipv4;addr={ip};act_addr_fam={fam};\r\n\
                 x-ms-request-id: lab-{}\r\n\
                 content-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                REQUESTS.fetch_add(1, Ordering::Relaxed),
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
        });
    }
}
