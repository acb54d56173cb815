//! A TDS (SQL Server wire protocol) test server that independent clients accept.
//!
//! No SQL Server can run here (docs/testing.md, Real peers), and a registry mock that
//! was never run against real drivers was rejected by all of them. This server is
//! checked by python-tds, FreeTDS `tsql`, pymssql and tedious in `tests/tds_peer.rs`,
//! so the probe's TDS layer is tested against bytes real drivers agree with.
//!
//! Map:
//! - [`packet`]: packet framing, PRELOGIN options.
//! - [`tls_shim`]: TDS 7.x's TLS handshake carried inside PRELOGIN packets.
//! - [`login`]: LOGIN7 parsing (strings, password, FEDAUTH feature).
//! - [`tokens`]: response tokens (ENVCHANGE, LOGINACK, ERROR, COLMETADATA, DONE …).
//! - [`batch`]: what a SQL batch or `sp_executesql` RPC is answered with.
//! - [`clients`]: the independent clients (python-tds, tsql, pymssql, tedious) as subprocesses.
//! - `session`: one connection from PRELOGIN to close, fault injection included.
//!
//! It binds 127.0.0.1:0 only and stops (all connections included) when the
//! [`TdsServer`] drops.

pub mod batch;
pub mod clients;
pub mod login;
pub mod packet;
mod requests;
mod session;
pub mod tls_shim;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU16;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::certs::{self, Material};

/// The server's encryption setting. Clients state theirs in PRELOGIN; the answer
/// follows MS-TDS 2.2.6.5 and SQL Server's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// SQL Server's default: a certificate exists, encryption is not forced. Answers
    /// NOT_SUP to NOT_SUP (no TLS), OFF to OFF (only LOGIN7 is encrypted) and ON to
    /// ON/REQ (everything encrypted). Without a certificate it answers NOT_SUP.
    Off,
    /// Always answers ON: the whole connection is encrypted; a client that cannot
    /// encrypt must give up.
    On,
    /// "Force encryption": always answers REQ (Azure SQL behaves this way).
    Required,
    /// No certificate at all: always answers NOT_SUP; a client requiring encryption
    /// must give up.
    NotSupported,
}

/// Misbehaviours a probe must classify. Each one is a real-world failure shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never answers PRELOGIN (a blackholing middlebox after the TCP handshake).
    StallDuringPrelogin,
    /// Reads PRELOGIN, then closes without a word (a gateway refusing the client).
    CloseDuringPrelogin,
    /// Answers PRELOGIN with an HTTP response: something that is not SQL Server
    /// listens on the port.
    GarbageReply,
    /// Offers encryption, then closes when the TLS handshake starts.
    CloseDuringTlsHandshake,
    /// Reads LOGIN7 and never answers it.
    StallDuringLogin,
    /// Acknowledges the login, then closes when the first request arrives.
    CloseAfterLogin,
    /// Acknowledges the login and never answers the first SQL batch.
    StallDuringQuery,
}

#[derive(Clone)]
pub struct TdsConfig {
    pub encryption: Encryption,
    /// TDS 8.0: TLS first (ALPN `tds/8.0`, TLS 1.2 or 1.3), PRELOGIN inside it.
    pub strict: bool,
    /// Needed for any encryption except [`Encryption::NotSupported`] and a
    /// certificate-less [`Encryption::Off`].
    pub cert: Option<Material>,
    /// SQL logins accepted: (user, password).
    pub users: Vec<(String, String)>,
    /// The access token a FEDAUTH (security-token) login must present. When set,
    /// PRELOGIN answers FEDAUTHREQUIRED=1 to clients that ask.
    pub fedauth_token: Option<String>,
    /// Refuse every login with this ERROR (number, state, message), e.g. 40615
    /// (server firewall) or 47073 (public network access denied).
    pub login_error: Option<(u32, u8, String)>,
    /// After LOGINACK, send a routing ENVCHANGE to this host:port and close, as
    /// Azure SQL's gateway does under the Redirect connection policy.
    pub route_to: Option<(String, u16)>,
    pub fault: Option<Fault>,
    /// The name in ERROR/INFO tokens and `@@SERVERNAME`.
    pub server_name: String,
    /// The product version in PRELOGIN and LOGINACK: major, minor, build.
    pub version: (u8, u8, u16),
    /// The default database; a database named in LOGIN7 wins.
    pub database: String,
    /// Every SQL batch is answered with this ERROR (number, message), class 16.
    pub query_error: Option<(u32, String)>,
}

impl Default for TdsConfig {
    fn default() -> TdsConfig {
        TdsConfig {
            encryption: Encryption::NotSupported,
            strict: false,
            cert: None,
            users: Vec::new(),
            fedauth_token: None,
            login_error: None,
            route_to: None,
            fault: None,
            server_name: "routeproof-test".into(),
            version: (16, 0, 1000),
            database: "master".into(),
            query_error: None,
        }
    }
}

impl TdsConfig {
    pub fn user(mut self, user: &str, password: &str) -> TdsConfig {
        self.users.push((user.into(), password.into()));
        self
    }

    pub fn encrypted(mut self, encryption: Encryption, cert: Material) -> TdsConfig {
        self.encryption = encryption;
        self.cert = Some(cert);
        self
    }
}

/// How the last LOGIN7 travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginTransport {
    Plain,
    /// TLS inside PRELOGIN packets for the LOGIN7 only (client and server OFF).
    LoginOnlyTls,
    /// TLS inside PRELOGIN packets, then everything encrypted.
    Tls,
    /// TDS 8.0: TLS before any TDS byte.
    Strict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: String,
    pub alpn: Option<String>,
    pub sni: Option<String>,
}

/// What the server saw. Secrets are not kept: a test proves a login happened by
/// its user name and outcome, never by the password.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub connections: u64,
    pub prelogins: u64,
    /// The ENCRYPTION byte of the last client PRELOGIN (see [`packet::enc`]).
    pub last_client_encryption: Option<u8>,
    pub tls_handshakes: u64,
    pub last_tls: Option<TlsInfo>,
    pub logins_attempted: u64,
    pub logins_succeeded: u64,
    pub fedauth_logins: u64,
    pub routed: u64,
    pub last_user: Option<String>,
    pub last_app: Option<String>,
    pub last_client_tds_version: Option<u32>,
    pub last_login_transport: Option<LoginTransport>,
    pub last_database: Option<String>,
    pub batches: u64,
    pub last_sql: Option<String>,
}

pub struct TdsServer {
    pub addr: SocketAddr,
    shared: Arc<session::Shared>,
    task: JoinHandle<()>,
}

impl TdsServer {
    /// Binds 127.0.0.1:0 and serves until dropped.
    ///
    /// Panics on a configuration that could not work (encryption forced without a
    /// certificate), because that is a bug in the test, not a case to probe.
    pub async fn start(cfg: TdsConfig) -> TdsServer {
        certs::install_crypto_provider();
        let needs_cert =
            cfg.strict || matches!(cfg.encryption, Encryption::On | Encryption::Required);
        assert!(
            !needs_cert || cfg.cert.is_some(),
            "TdsConfig: {:?} (strict: {}) needs a certificate",
            cfg.encryption,
            cfg.strict
        );
        // SQL Server speaks TLS 1.2 at most inside PRELOGIN packets; TLS 1.3 only
        // with TDS 8.0. Limiting ourselves the same way also keeps clients whose
        // wrapping code predates TLS 1.3 (python-tds) on their tested path.
        let tls_prelogin = cfg
            .cert
            .as_ref()
            .map(|m| m.server_config(&[&rustls::version::TLS12], &[]));
        let tls_strict = cfg
            .cert
            .as_ref()
            .map(|m| m.server_config(&[], &[b"tds/8.0"]));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(session::Shared {
            cfg,
            tls_prelogin,
            tls_strict,
            stats: Mutex::new(Stats::default()),
            next_spid: AtomicU16::new(51),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        TdsServer { addr, shared, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().expect("stats lock").clone()
    }
}

impl Drop for TdsServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection,
        // stalled ones included.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<session::Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                connections.spawn(session::serve(tcp, shared.clone()));
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
