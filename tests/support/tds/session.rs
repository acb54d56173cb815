//! One client connection: PRELOGIN, the encryption it agreed, LOGIN7, then
//! requests until the client leaves. Faults are injected at the step they name.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::login::{self, Login7, fedauth_library};
use super::packet::{self, Message, Prelogin, enc, opt, read_message, ty, write_message};
use super::tls_shim::PreloginShim;
use super::tokens::{self, Tokens, done, env};
use super::{Encryption, Fault, LoginTransport, Stats, TdsConfig, TlsInfo};

pub(super) struct Shared {
    pub cfg: TdsConfig,
    pub tls_prelogin: Option<Arc<rustls::ServerConfig>>,
    pub tls_strict: Option<Arc<rustls::ServerConfig>>,
    pub stats: Mutex<Stats>,
    pub next_spid: AtomicU16,
}

impl Shared {
    pub(super) fn stats(&self, update: impl FnOnce(&mut Stats)) {
        update(&mut self.stats.lock().expect("stats lock"));
    }

    pub(super) fn fault(&self, fault: Fault) -> bool {
        self.cfg.fault == Some(fault)
    }
}

/// What the PRELOGIN exchange agreed for the TDS 7.x transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agreed {
    Plain,
    LoginOnly,
    Full,
}

/// The answer to the client's ENCRYPTION byte (MS-TDS 2.2.6.5 table).
fn negotiate(server: Encryption, has_cert: bool, client: u8) -> (u8, Agreed) {
    match server {
        Encryption::NotSupported => (enc::NOT_SUP, Agreed::Plain),
        Encryption::Off if !has_cert => (enc::NOT_SUP, Agreed::Plain),
        Encryption::Off => match client {
            enc::NOT_SUP => (enc::NOT_SUP, Agreed::Plain),
            enc::OFF => (enc::OFF, Agreed::LoginOnly),
            _ => (enc::ON, Agreed::Full),
        },
        // A NOT_SUP client must now close; if it does not, the next byte decides.
        Encryption::On => (enc::ON, Agreed::Full),
        Encryption::Required => (enc::REQ, Agreed::Full),
    }
}

pub(super) async fn serve(tcp: TcpStream, shared: Arc<Shared>) {
    match serve_inner(tcp, &shared).await {
        // Clients drop TLS connections without close_notify; that is their normal goodbye.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
        // Visible in a failing test's output (a client giving up, a protocol error).
        Err(e) => eprintln!("tds test server: connection ended: {e}"),
        Ok(()) => {}
    }
}

async fn serve_inner(tcp: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    let spid = shared.next_spid.fetch_add(1, Ordering::Relaxed);
    shared.stats(|s| s.connections += 1);
    if shared.fault(Fault::StallDuringPrelogin) {
        return hold(tcp).await;
    }
    let session = Session::new(shared.clone(), spid);

    if shared.cfg.strict {
        let config = shared.tls_strict.clone().expect("checked at start");
        let mut tls = TlsAcceptor::from(config).accept(tcp).await?;
        record_tls(shared, &tls);
        if prelogin(&mut tls, shared, spid, true).await?.is_none() {
            return Ok(());
        }
        return session.run(tls, None, LoginTransport::Strict).await;
    }

    let mut tcp = tcp;
    let Some(agreed) = prelogin(&mut tcp, shared, spid, false).await? else {
        return Ok(());
    };
    if agreed == Agreed::Plain {
        return session.run(tcp, None, LoginTransport::Plain).await;
    }
    // The client's next packet says what it decided: a TLS handshake (PRELOGIN
    // packets) or, for login-only encryption, a plain LOGIN7 from drivers that
    // never encrypt (tedious with encrypt=false), which SQL Server accepts too.
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Ok(());
    }
    match first[0] {
        ty::PRELOGIN => {}
        ty::LOGIN7 if agreed == Agreed::LoginOnly => {
            return session.run(tcp, None, LoginTransport::Plain).await;
        }
        other => {
            return Err(packet::invalid(format!(
                "packet type {other:#04x} where the agreed TLS handshake should start"
            )));
        }
    }
    if shared.fault(Fault::CloseDuringTlsHandshake) {
        return Ok(());
    }
    let config = shared
        .tls_prelogin
        .clone()
        .expect("cert checked by negotiate");
    let mut tls = TlsAcceptor::from(config)
        .accept(PreloginShim::new(tcp))
        .await?;
    tls.get_mut().0.unwrap_records();
    record_tls(shared, &tls);
    if agreed == Agreed::Full {
        return session.run(tls, None, LoginTransport::Tls).await;
    }
    // Login-only: LOGIN7 arrives encrypted, then both sides drop TLS without a
    // close_notify and continue in clear on the same socket.
    let login = read_message(&mut tls).await?;
    let tcp = tls.into_inner().0.into_inner();
    match login {
        Some(login) => {
            session
                .run(tcp, Some(login), LoginTransport::LoginOnlyTls)
                .await
        }
        None => Ok(()),
    }
}

fn record_tls<S>(shared: &Shared, tls: &TlsStream<S>) {
    let conn = tls.get_ref().1;
    let info = TlsInfo {
        version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        sni: conn.server_name().map(str::to_string),
    };
    shared.stats(|s| {
        s.tls_handshakes += 1;
        s.last_tls = Some(info);
    });
}

/// Reads the client's PRELOGIN and answers it. `None`: the connection ends here
/// (a fault, or the client left).
async fn prelogin<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    shared: &Shared,
    spid: u16,
    strict: bool,
) -> io::Result<Option<Agreed>> {
    let Some(msg) = read_message(io).await? else {
        return Ok(None);
    };
    if msg.ty != ty::PRELOGIN {
        return Err(packet::invalid(format!(
            "expected PRELOGIN, got packet type {:#04x}",
            msg.ty
        )));
    }
    let client = Prelogin::parse(&msg.payload)?;
    let client_enc = client.encryption().unwrap_or(enc::NOT_SUP);
    shared.stats(|s| {
        s.prelogins += 1;
        s.last_client_encryption = Some(client_enc);
    });
    if shared.fault(Fault::CloseDuringPrelogin) {
        return Ok(None);
    }
    if shared.fault(Fault::GarbageReply) {
        io.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        io.flush().await?;
        return Ok(None);
    }
    let cfg = &shared.cfg;
    // Under TDS 8 the TLS layer already exists; nothing more is negotiated.
    let (answer, agreed) = if strict {
        (enc::NOT_SUP, Agreed::Plain)
    } else {
        negotiate(cfg.encryption, cfg.cert.is_some(), client_enc)
    };
    let (major, minor, build) = cfg.version;
    let [b0, b1] = build.to_be_bytes();
    let mut reply = Prelogin {
        options: vec![
            (opt::VERSION, vec![major, minor, b0, b1, 0, 0]),
            (opt::ENCRYPTION, vec![answer]),
            (opt::INSTOPT, vec![0]),
            (opt::THREADID, vec![]),
            // FreeTDS falls back to TDS 7.1 when the answer has no MARS option.
            (opt::MARS, vec![0]),
        ],
    };
    if client.get(opt::FEDAUTHREQUIRED).is_some() && cfg.fedauth_token.is_some() {
        reply.options.push((opt::FEDAUTHREQUIRED, vec![1]));
    }
    write_message(
        io,
        ty::TABULAR_RESULT,
        &reply.encode(),
        packet::DEFAULT_PACKET_SIZE,
        spid,
    )
    .await?;
    Ok(Some(agreed))
}

/// Keeps a connection open without answering until the client gives up.
pub(super) async fn hold<S: AsyncRead + Unpin>(mut io: S) -> io::Result<()> {
    let mut sink = [0u8; 4096];
    while io.read(&mut sink).await? > 0 {}
    Ok(())
}

pub(super) struct Session {
    pub(super) shared: Arc<Shared>,
    pub(super) spid: u16,
    pub(super) tds72: bool,
    pub(super) packet_size: usize,
    pub(super) database: String,
    pub(super) user: String,
    pub(super) transactions: u64,
}

/// A refused login: number, state, message.
type Refusal = (u32, u8, String);

impl Session {
    fn new(shared: Arc<Shared>, spid: u16) -> Session {
        let database = shared.cfg.database.clone();
        Session {
            shared,
            spid,
            tds72: true,
            packet_size: packet::DEFAULT_PACKET_SIZE,
            database,
            user: String::new(),
            transactions: 0,
        }
    }

    pub(super) async fn send<S: AsyncWrite + Unpin>(
        &self,
        io: &mut S,
        t: Tokens,
    ) -> io::Result<()> {
        write_message(io, ty::TABULAR_RESULT, &t.buf, self.packet_size, self.spid).await
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        mut self,
        mut io: S,
        first: Option<Message>,
        transport: LoginTransport,
    ) -> io::Result<()> {
        let msg = match first {
            Some(m) => m,
            None => match read_message(&mut io).await? {
                Some(m) => m,
                None => return Ok(()),
            },
        };
        if msg.ty != ty::LOGIN7 {
            return Err(packet::invalid(format!(
                "expected LOGIN7, got packet type {:#04x}",
                msg.ty
            )));
        }
        let login = Login7::parse(&msg.payload)?;
        let shared = self.shared.clone();
        shared.stats(|s| {
            s.logins_attempted += 1;
            s.last_user = Some(login.user_name.clone());
            s.last_app = Some(login.app_name.clone());
            s.last_client_tds_version = Some(login.tds_version);
            s.last_login_transport = Some(transport);
        });
        if shared.fault(Fault::StallDuringLogin) {
            return hold(io).await;
        }
        self.tds72 = login::is_tds72_plus(login.tds_version);
        if !login.database.is_empty() {
            self.database = login.database.clone();
        }
        let cfg = &shared.cfg;
        let mut t = Tokens::new(self.tds72);
        let fedauth = match self.authenticate(&login) {
            Ok(fedauth) => fedauth,
            Err((number, state, message)) => {
                t.error(number, state, 14, &message, &cfg.server_name);
                t.done(done::ERROR, 0, 0);
                // SQL Server closes the connection after a refused login.
                return self.send(&mut io, t).await;
            }
        };
        let requested = login.packet_size as usize;
        let old_db = "master";
        t.env_string(env::DATABASE, &self.database, old_db);
        t.info(
            5701,
            2,
            0,
            &format!("Changed database context to '{}'.", self.database),
            &cfg.server_name,
        );
        t.env_bytes(env::COLLATION, &tokens::COLLATION, &[]);
        t.env_string(env::LANGUAGE, "us_english", "");
        t.info(
            5703,
            1,
            0,
            "Changed language setting to us_english.",
            &cfg.server_name,
        );
        t.loginack(
            login::loginack_version(login.tds_version),
            "Microsoft SQL Server",
            cfg.version,
        );
        let negotiated = if requested == 0 {
            4096
        } else {
            requested.clamp(512, 32767)
        };
        t.env_string(
            env::PACKET_SIZE,
            &negotiated.to_string(),
            &packet::DEFAULT_PACKET_SIZE.to_string(),
        );
        if fedauth {
            t.featureextack(&[(login::feature::FEDAUTH, Vec::new())]);
        }
        if let Some((host, port)) = &cfg.route_to {
            t.env_routing(host, *port);
            t.done(done::FINAL, 0, 0);
            shared.stats(|s| s.routed += 1);
            // The gateway's part ends here; the client reconnects to the target.
            return self.send(&mut io, t).await;
        }
        t.done(done::FINAL, 0, 0);
        self.send(&mut io, t).await?;
        self.packet_size = negotiated;
        shared.stats(|s| {
            s.logins_succeeded += 1;
            s.fedauth_logins += u64::from(fedauth);
            s.last_database = Some(self.database.clone());
        });
        self.requests(io).await
    }

    /// `Ok(true)` for a FEDAUTH login, `Ok(false)` for SQL authentication.
    fn authenticate(&mut self, login: &Login7) -> Result<bool, Refusal> {
        let cfg = &self.shared.cfg;
        if let Some(refusal) = &cfg.login_error {
            return Err(refusal.clone());
        }
        if let Some(fa) = login.fedauth() {
            if fa.library != fedauth_library::SECURITY_TOKEN {
                return Err((
                    18456,
                    1,
                    "Login failed: the test server accepts only the security-token FEDAUTH workflow.".into(),
                ));
            }
            return match (&cfg.fedauth_token, &fa.token) {
                (Some(want), Some(got)) if want == got => {
                    self.user = "token-identified principal".into();
                    Ok(true)
                }
                _ => Err((
                    18456,
                    1,
                    "Login failed for user '<token-identified principal>'.".into(),
                )),
            };
        }
        if login.integrated {
            return Err((
                18452,
                1,
                "Login failed. The login is from an untrusted domain and cannot be used with Integrated authentication.".into(),
            ));
        }
        let ok = cfg
            .users
            .iter()
            .any(|(u, p)| *u == login.user_name && *p == login.password);
        if ok {
            self.user = login.user_name.clone();
            Ok(false)
        } else {
            // State 1 is what every client sees; the real reason stays in the server log.
            Err((
                18456,
                1,
                format!("Login failed for user '{}'.", login.user_name),
            ))
        }
    }
}
