//! MySQL probe against a real MariaDB (temp datadir, TLS, require_secure_transport,
//! skip-name-resolve so the 1045 text names 127.0.0.1), plus stubs: MariaDB has no
//! server-side clear-text plugin, so the Entra token path (token sent with
//! `mysql_clear_password` inside TLS) is tested by what a loopback listener receives. The
//! listener's answers follow the MySQL source documentation ("Connection Phase",
//! "Clear text client plugin", "Text Resultset").

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use routeproof::probe::handshake::{Credential, TlsMode};
use routeproof::probe::mysql::{self, Kind, Options, Phase};
use routeproof::secret::Secret;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::peers::{self, Certs, Proc};

pub(crate) fn start(certs: &Certs, tls: bool) -> Result<Proc, String> {
    for bin in [
        "/usr/sbin/mariadbd",
        "/usr/bin/mariadb-install-db",
        "/usr/bin/mariadb",
    ] {
        if !Path::new(bin).exists() {
            return Err(format!("{bin} not found (mariadb-server)"));
        }
    }
    peers::user_ids("mysql").ok_or("no mysql system user")?;
    let dir = tempfile::tempdir().unwrap();
    let dpath = dir.path().to_path_buf();
    let d = dpath.as_path();
    certs.write(d);
    let port = peers::free_port();
    let ssl = if tls {
        format!(
            "ssl-ca = {d}/ca.crt\nssl-cert = {d}/server.crt\nssl-key = {d}/server.key\nrequire_secure_transport = ON\n",
            d = d.display()
        )
    } else {
        "skip-ssl\n".to_string()
    };
    let cnf = format!(
        "[mysqld]\nuser = mysql\ndatadir = {d}/data\nsocket = {d}/mysqld.sock\npid-file = {d}/mysqld.pid\n\
         log-error = {d}/error.log\nbind-address = 127.0.0.1\nport = {port}\n{ssl}skip-name-resolve\n\
         skip-log-bin\ninnodb_buffer_pool_size = 32M\ninnodb_log_file_size = 16M\n\n[client]\nsocket = {d}/mysqld.sock\n",
        d = d.display()
    );
    let cnf_path = d.join("my.cnf");
    std::fs::write(&cnf_path, cnf).unwrap();
    peers::chown_r(d, "mysql");
    let defaults = format!("--defaults-file={}", cnf_path.display());
    let mut init = Command::new("/usr/bin/mariadb-install-db");
    init.args([
        defaults.as_str(),
        "--user=mysql",
        "--auth-root-authentication-method=socket",
        "--skip-test-db",
    ]);
    peers::run_as(init, None).map_err(|e| format!("mariadb-install-db: {e}"))?;
    let log = d.join("mariadbd.out");
    let mut cmd = Command::new("/usr/sbin/mariadbd");
    cmd.arg(&defaults);
    let mut child = peers::spawn_as(cmd, None, &log);
    peers::wait_port(port, &mut child, "mariadbd", &d.join("error.log"))?;
    let proc = Proc {
        child,
        dir,
        port,
        log,
    };
    let mut sql = Command::new("/usr/bin/mariadb");
    sql.args([defaults.as_str(), "-uroot", "-e"]).arg(format!(
        "CREATE USER 'nativeuser'@'%' IDENTIFIED BY 'nativepass'; GRANT ALL ON *.* TO 'nativeuser'@'%'; \
         CREATE USER 'tokenuser'@'%' IDENTIFIED BY '{}';",
        peers::fake_token("mytoken")
    ));
    peers::run_as(sql, None).map_err(|e| format!("create user: {e}"))?;
    Ok(proc)
}

fn opts(tls: TlsMode, user: &str, cred: Credential) -> Options {
    Options {
        tls,
        user: user.into(),
        database: None,
        credential: cred,
    }
}

async fn run(p: &Proc, certs: &Certs, o: &Options) -> mysql::Outcome {
    mysql::probe(
        peers::connect(p.addr()).await,
        o,
        certs.upgrade(),
        peers::deadline(10),
    )
    .await
}

#[tokio::test]
async fn real_mariadb_greets_witnesses_and_logs_in() {
    let certs = Certs::new();
    let db = match start(&certs, true) {
        Ok(p) => p,
        Err(why) => return peers::skip("real_mariadb_greets_witnesses_and_logs_in", &why),
    };
    let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();

    // Credential-free: greeting, TLS, 1045 naming 127.0.0.1. Not a failure.
    let o = run(&db, &certs, &Options::credential_free(TlsMode::VerifyFull)).await;
    assert!(o.ok() && o.reached, "{o:?}");
    let ev = &o.evidence;
    assert!(
        ev.server_version.as_deref().unwrap().contains("MariaDB"),
        "{ev:?}"
    );
    assert_eq!(ev.mariadb, Some(true));
    assert!(ev.capability_names.contains(&"ssl"), "{ev:?}");
    assert!(ev.tls.as_ref().unwrap().version.is_some());
    assert_eq!(ev.error.as_ref().unwrap().code, 1045);
    assert!(
        ev.error
            .as_ref()
            .unwrap()
            .message
            .contains("'routeproof_probe'@'127.0.0.1'"),
        "{ev:?}"
    );
    assert_eq!(ev.witness, Some(lo));
    assert!(
        ev.timings.greeting_ms.is_some()
            && ev.timings.tls_ms.is_some()
            && ev.timings.login_ms.is_some()
    );

    // Plain text against require_secure_transport: MariaDB answers 1045 as well (no dedicated error).
    let o = run(
        &db,
        &certs,
        &opts(
            TlsMode::Disable,
            "nativeuser",
            Credential::Password(Secret::new("nativepass")),
        ),
    )
    .await;
    assert_eq!(
        o.failure.as_ref().unwrap().kind,
        Kind::AuthFailed { witness: Some(lo) },
        "{o:?}"
    );

    // Login + SELECT 1.
    let o = run(
        &db,
        &certs,
        &opts(
            TlsMode::VerifyFull,
            "nativeuser",
            Credential::Password(Secret::new("nativepass")),
        ),
    )
    .await;
    assert!(o.ok(), "{o:?}");
    assert!(o.evidence.authenticated);
    assert_eq!(o.evidence.auth_plugins, ["mysql_native_password"]);
    assert_eq!(o.evidence.query_result.as_deref(), Some("1"));
    assert!(o.evidence.timings.query_ms.is_some());

    // Wrong password: 1045 as a failure, with the witness; the planted password leaks nowhere.
    let opt = opts(
        TlsMode::VerifyFull,
        "nativeuser",
        Credential::Password(Secret::new(peers::PLANTED_PASSWORD)),
    );
    let o = run(&db, &certs, &opt).await;
    let f = o.failure.clone().unwrap();
    assert_eq!(f.kind, Kind::AuthFailed { witness: Some(lo) });
    assert_eq!(f.kind.class(), "mysql.auth_failed");
    assert!(f.message.contains("using password: YES"), "{f:?}");
    peers::assert_no_secret("outcome json", &serde_json::to_string(&o).unwrap());
    peers::assert_no_secret("outcome debug", &format!("{o:?} {opt:?}"));

    // A token against MariaDB: sent with the clear-text plugin, MariaDB switches the
    // client to the account's plugin, the token does not match: TokenRejected.
    let opt = opts(
        TlsMode::VerifyFull,
        "nativeuser",
        Credential::Token(Secret::new(peers::PLANTED_TOKEN)),
    );
    let o = run(&db, &certs, &opt).await;
    assert_eq!(
        o.failure.as_ref().unwrap().kind,
        Kind::TokenRejected { witness: Some(lo) },
        "{o:?}"
    );
    assert_eq!(o.evidence.auth_plugins[0], "mysql_clear_password");
    peers::assert_no_secret("outcome json", &serde_json::to_string(&o).unwrap());
    peers::assert_no_secret("outcome debug", &format!("{o:?} {opt:?}"));

    // Unknown database.
    let o = run(
        &db,
        &certs,
        &Options {
            database: Some("nosuchdb".into()),
            ..opts(
                TlsMode::VerifyFull,
                "nativeuser",
                Credential::Password(Secret::new("nativepass")),
            )
        },
    )
    .await;
    assert!(
        matches!(
            o.failure.as_ref().unwrap().kind,
            Kind::DatabaseMissing | Kind::DatabaseAccessDenied
        ),
        "{o:?}"
    );

    for (name, o) in [
        (
            "credential-free",
            Options::credential_free(TlsMode::VerifyFull),
        ),
        (
            "login + SELECT 1",
            opts(
                TlsMode::VerifyFull,
                "nativeuser",
                Credential::Password(Secret::new("nativepass")),
            ),
        ),
    ] {
        peers::time_probes(&format!("mysql {name}"), || async {
            run(&db, &certs, &o).await.ok()
        })
        .await;
    }
}

#[tokio::test]
async fn mariadb_without_tls_is_tls_refused() {
    let certs = Certs::new();
    let db = match start(&certs, false) {
        Ok(p) => p,
        Err(why) => return peers::skip("mariadb_without_tls_is_tls_refused", &why),
    };
    let o = run(&db, &certs, &Options::credential_free(TlsMode::Require)).await;
    let f = o.failure.unwrap();
    assert_eq!(f.kind, Kind::TlsRefusedByServer, "{f:?}");
    assert_eq!(f.kind.class(), "mysql.tls_refused");
    assert!(o.reached && !o.evidence.capability_names.contains(&"ssl"));
}

/// A MariaDB-shaped greeting (MySQL docs, Protocol::HandshakeV10), SSL offered.
fn greeting() -> Vec<u8> {
    let caps: u32 = 0x81fffffe;
    let mut g = vec![10];
    g.extend_from_slice(b"5.5.5-10.11.0-stub\0");
    g.extend_from_slice(&1u32.to_le_bytes());
    g.extend_from_slice(b"abcdefgh\0");
    g.extend_from_slice(&(caps as u16).to_le_bytes());
    g.push(45);
    g.extend_from_slice(&2u16.to_le_bytes());
    g.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    g.push(21);
    g.extend_from_slice(&[0u8; 10]);
    g.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    packet(0, &g)
}

fn packet(seq: u8, p: &[u8]) -> Vec<u8> {
    let mut out = (p.len() as u32).to_le_bytes()[..3].to_vec();
    out.push(seq);
    out.extend_from_slice(p);
    out
}

async fn read_packet<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await?;
    let mut b = vec![0u8; u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize];
    s.read_exact(&mut b).await?;
    Ok(b)
}

/// The clear-text token path, by what reaches the server: the stub records the
/// HandshakeResponse41 it receives inside TLS, says OK, and answers SELECT 1.
#[tokio::test]
async fn token_goes_with_the_clear_text_plugin_inside_tls() {
    let certs = Certs::new();
    let acc = certs.acceptor();
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let rec = seen.clone();
    let addr = peers::stub(move |mut s| {
        let (acc, rec) = (acc.clone(), rec.clone());
        async move {
            s.write_all(&greeting()).await.unwrap();
            let ssl = read_packet(&mut s).await.unwrap();
            rec.lock().unwrap().push(ssl);
            let mut t = acc.accept(s).await.unwrap();
            let hello = read_packet(&mut t).await.unwrap();
            rec.lock().unwrap().push(hello);
            t.write_all(&packet(3, &[0, 0, 0, 2, 0, 0, 0]))
                .await
                .unwrap();
            serve_select_1(&mut t).await;
        }
    })
    .await;
    let token = peers::fake_token("wire");
    let o = Options {
        tls: TlsMode::VerifyFull,
        user: "app@contoso.onmicrosoft.com".into(),
        database: Some("appdb".into()),
        credential: Credential::Token(Secret::new(token.clone())),
    };
    let out = mysql::probe(
        peers::connect(addr).await,
        &o,
        certs.upgrade(),
        peers::deadline(10),
    )
    .await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.evidence.query_result.as_deref(), Some("1"));
    let seen = seen.lock().unwrap();
    // The SSLRequest carries no credential (it is sent before TLS).
    assert_eq!(seen[0].len(), 32);
    let hello = &seen[1];
    let caps = u32::from_le_bytes(hello[..4].try_into().unwrap());
    assert!(caps & 0x800 != 0, "CLIENT_SSL set");
    let body = &hello[32..];
    let user_end = body.iter().position(|&b| b == 0).unwrap();
    assert_eq!(&body[..user_end], b"app@contoso.onmicrosoft.com");
    // lenenc auth data: 0xfc + u16 length, then the token and its NUL.
    let rest = &body[user_end + 1..];
    assert_eq!(rest[0], 0xfc);
    let n = u16::from_le_bytes([rest[1], rest[2]]) as usize;
    let mut want = token.clone().into_bytes();
    want.push(0);
    assert_eq!(
        &rest[3..3 + n],
        want.as_slice(),
        "the token, NUL-terminated, in clear inside TLS"
    );
    let tail = &rest[3 + n..];
    assert!(
        tail.starts_with(b"appdb\0mysql_clear_password\0"),
        "{:?}",
        String::from_utf8_lossy(tail)
    );
    assert!(!format!("{out:?}").contains(&token));
}

async fn serve_select_1<S: AsyncRead + AsyncWrite + Unpin>(t: &mut S) {
    let q = read_packet(t).await.unwrap();
    assert_eq!(q, b"\x03SELECT 1");
    let coldef =
        b"\x03def\x00\x00\x00\x011\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00";
    let eof = [0xfe, 0, 0, 2, 0];
    let mut out = packet(1, &[1]);
    out.extend(packet(2, coldef));
    out.extend(packet(3, &eof));
    out.extend(packet(4, b"\x011"));
    out.extend(packet(5, &eof));
    t.write_all(&out).await.unwrap();
    let _ = read_packet(t).await; // COM_QUIT
}

#[tokio::test]
async fn token_without_tls_is_never_sent() {
    let seen: Arc<Mutex<Vec<u8>>> = Arc::default();
    let rec = seen.clone();
    let addr = peers::stub(move |mut s| {
        let rec = rec.clone();
        async move {
            s.write_all(&greeting()).await.unwrap();
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                rec.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    })
    .await;
    let o = Options {
        tls: TlsMode::Disable,
        user: "app".into(),
        database: None,
        credential: Credential::Token(Secret::new(peers::PLANTED_TOKEN)),
    };
    let out = mysql::probe(
        peers::connect(addr).await,
        &o,
        Certs::new().upgrade(),
        peers::deadline(5),
    )
    .await;
    let f = out.failure.unwrap();
    assert_eq!(f.kind, Kind::CleartextNeedsTls);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let seen = seen.lock().unwrap();
    assert!(
        !String::from_utf8_lossy(&seen).contains("PLANTED"),
        "the token reached the wire"
    );
}

/// A credential-free probe of a fault stub, bounded.
async fn fault(addr: std::net::SocketAddr, certs: &Certs) -> mysql::Outcome {
    let o = Options::credential_free(TlsMode::VerifyFull);
    let probe = mysql::probe(
        peers::connect(addr).await,
        &o,
        certs.upgrade(),
        peers::deadline(2),
    );
    peers::bounded(15, probe).await
}

#[tokio::test]
async fn mysql_fault_cases() {
    let certs = Certs::new();
    // An HTTP server never speaks first: no greeting before the deadline.
    let http = peers::http_server().await;
    let o = fault(http, &certs).await;
    let k = o.failure.unwrap().kind;
    assert_eq!(
        k,
        Kind::Timeout {
            phase: Phase::Greeting
        }
    );
    assert_eq!(k.class(), "mysql.no_greeting");

    // A server that speaks first, but HTTP.
    let talker = peers::stub(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
    })
    .await;
    let o = fault(talker, &certs).await;
    let f = o.failure.unwrap();
    assert_eq!(f.kind, Kind::NotThisProtocol, "{f:?}");
    assert_eq!(f.kind.class(), "mysql.not_mysql");

    // Half a greeting, then the server hangs up.
    let closer = peers::stub(|mut s| async move {
        let g = greeting();
        let _ = s.write_all(&g[..20]).await;
    })
    .await;
    let o = fault(closer, &certs).await;
    assert_eq!(
        o.failure.unwrap().kind,
        Kind::Closed {
            phase: Phase::Greeting
        }
    );

    // Greeting, TLS, then silence.
    let staller = peers::tls_stall(certs.acceptor(), |mut s| async move {
        s.write_all(&greeting()).await.unwrap();
        let _ = read_packet(&mut s).await;
        s
    })
    .await;
    let o = fault(staller, &certs).await;
    let f = o.failure.unwrap();
    assert_eq!(
        f.kind,
        Kind::Timeout {
            phase: Phase::Login
        },
        "{f:?}"
    );
    assert!(o.evidence.tls.is_some());
}
