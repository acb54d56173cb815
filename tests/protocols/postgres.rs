//! PostgreSQL probe against a real PostgreSQL 15 (initdb in a temp dir, ssl = on, pg_hba
//! rules for: scram user, token user (`password` method: the server asks for the
//! password in clear, inside TLS, as Azure does for Entra tokens), a `reject` rule, and
//! no entry for anyone else), plus stubs for the fault cases.

use std::path::Path;
use std::process::Command;

use routeproof::probe::handshake::{Credential, TlsMode};
use routeproof::probe::postgres::{self, Kind, Options, Phase};
use routeproof::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::peers::{self, Certs, Proc};

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub(crate) struct Pg {
    pub(crate) proc: Proc,
    pub(crate) token: String,
}

pub(crate) fn start(certs: &Certs, ssl: bool) -> Result<Pg, String> {
    if !Path::new(BIN).join("initdb").exists() {
        return Err(format!("{BIN}/initdb not found (postgresql-15)"));
    }
    peers::user_ids("postgres").ok_or("no postgres system user")?;
    let dir = tempfile::tempdir().unwrap();
    let dpath = dir.path().to_path_buf();
    let d = dpath.as_path();
    certs.write(d);
    peers::chown_r(d, "postgres");
    let data = d.join("data");
    let mut init = Command::new(format!("{BIN}/initdb"));
    init.arg("-D")
        .arg(&data)
        .args([
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-U",
            "postgres",
            "--no-instructions",
            "--no-sync",
        ])
        .current_dir(d);
    peers::run_as(init, Some("postgres")).map_err(|e| format!("initdb: {e}"))?;
    let port = peers::free_port();
    let conf = format!(
        "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{dir}'\n\
         ssl = {ssl}\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
         password_encryption = 'scram-sha-256'\nfsync = off\nlogging_collector = off\n",
        dir = d.display(),
        ssl = if ssl { "on" } else { "off" },
    );
    std::fs::write(data.join("postgresql.auto.conf"), conf).unwrap();
    let hba = "local all all trust\n\
               hostssl all scramuser 127.0.0.1/32 scram-sha-256\n\
               hostssl all tokenuser 127.0.0.1/32 password\n\
               hostssl all md5user 127.0.0.1/32 md5\n\
               host all rejectuser 127.0.0.1/32 reject\n\
               host all plainuser 127.0.0.1/32 scram-sha-256\n\
               host all tokenuser 127.0.0.1/32 password\n";
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    peers::chown_r(d, "postgres");
    let log = d.join("server.log");
    let mut cmd = Command::new(format!("{BIN}/postgres"));
    cmd.arg("-D").arg(&data).current_dir(d);
    let mut child = peers::spawn_as(cmd, Some("postgres"), &log);
    peers::wait_port(port, &mut child, "postgres", &log)?;
    let token = peers::fake_token("pgtoken");
    let proc = Proc {
        child,
        dir,
        port,
        log,
    };
    let sql = |s: &str| {
        let mut c = Command::new(format!("{BIN}/psql"));
        c.args(["-X", "-q", "-h"])
            .arg(d)
            .args([
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                s,
            ])
            .current_dir(d);
        peers::run_as(c, Some("postgres"))
    };
    // psql may connect a moment before the server accepts on the socket.
    let mut ok = Err(String::new());
    for _ in 0..50 {
        ok = sql("CREATE ROLE scramuser LOGIN PASSWORD 'scrampass'");
        if ok.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ok.map_err(|e| format!("create role: {e}"))?;
    sql(&format!("CREATE ROLE tokenuser LOGIN PASSWORD '{token}'"))?;
    sql("CREATE ROLE plainuser LOGIN PASSWORD 'plainpass'")?;
    sql("SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'md5pass'")?;
    Ok(Pg { proc, token })
}

fn opts(tls: TlsMode, user: &str, cred: Credential) -> Options {
    Options {
        tls,
        user: user.into(),
        database: Some("postgres".into()),
        credential: cred,
        application_name: "routeproof-test".into(),
    }
}

fn pw(s: &str) -> Credential {
    Credential::Password(Secret::new(s))
}

async fn run(pg: &Pg, certs: &Certs, o: &Options) -> postgres::Outcome {
    let s = peers::connect(pg.proc.addr()).await;
    postgres::probe(s, o, certs.upgrade(), peers::deadline(10)).await
}

#[tokio::test]
async fn real_postgres_answers_logins_and_witnesses() {
    let certs = Certs::new();
    let pg = match start(&certs, true) {
        Ok(pg) => pg,
        Err(why) => return peers::skip("real_postgres_answers_logins_and_witnesses", &why),
    };

    // Credential-free, an allowed user: S, TLS, SASL request with SCRAM mechanisms.
    let o = run(
        &pg,
        &certs,
        &Options {
            database: None,
            ..opts(TlsMode::VerifyFull, "scramuser", Credential::None)
        },
    )
    .await;
    assert!(o.ok() && o.reached, "{o:?}");
    assert_eq!(o.evidence.ssl_answer, Some('S'));
    assert!(
        o.evidence
            .tls
            .as_ref()
            .unwrap()
            .version
            .as_deref()
            .unwrap()
            .contains("TLS"),
        "{o:?}"
    );
    assert_eq!(o.evidence.auth_request.as_deref(), Some("sasl"));
    assert!(
        o.evidence
            .sasl_mechanisms
            .iter()
            .any(|m| m == "SCRAM-SHA-256"),
        "{o:?}"
    );
    assert!(!o.evidence.authenticated);
    assert!(o.evidence.timings.ssl_request_ms.is_some() && o.evidence.timings.startup_ms.is_some());
    assert!(
        o.evidence.timings.query_ms.is_none(),
        "no query phase credential-free"
    );

    // The probe user has no pg_hba line: 28000 naming 127.0.0.1, the witness.
    let o = run(&pg, &certs, &Options::credential_free(TlsMode::VerifyFull)).await;
    let f = o.failure.as_ref().expect("no hba entry");
    let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(f.kind, Kind::NoHbaEntry { witness: Some(lo) }, "{o:?}");
    assert_eq!(f.kind.class(), "postgres.no_hba_entry");
    assert!(o.reached);
    assert_eq!(o.evidence.witness, Some(lo));
    assert_eq!(o.evidence.error.as_ref().unwrap().sqlstate, "28000");
    assert!(
        f.message
            .contains("no pg_hba.conf entry for host \"127.0.0.1\""),
        "{f:?}"
    );

    // The same over plain text: the message says "no encryption".
    let o = run(&pg, &certs, &Options::credential_free(TlsMode::Disable)).await;
    assert!(
        matches!(
            o.failure.as_ref().unwrap().kind,
            Kind::NoHbaEntry { witness: Some(_) }
        ),
        "{o:?}"
    );
    assert!(
        o.evidence
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("no encryption"),
        "{o:?}"
    );
    assert!(o.evidence.ssl_answer.is_none() && o.evidence.tls.is_none());

    // A reject rule.
    let o = run(
        &pg,
        &certs,
        &opts(TlsMode::VerifyFull, "rejectuser", Credential::None),
    )
    .await;
    assert_eq!(
        o.failure.unwrap().kind,
        Kind::HbaRejected { witness: Some(lo) }
    );

    // Password login + SELECT 1 (SCRAM-SHA-256), with server parameters.
    let o = run(
        &pg,
        &certs,
        &opts(TlsMode::VerifyFull, "scramuser", pw("scrampass")),
    )
    .await;
    assert!(o.ok(), "{o:?}");
    assert!(o.evidence.authenticated);
    assert_eq!(
        o.evidence.sasl_mechanism_used.as_deref(),
        Some("SCRAM-SHA-256")
    );
    assert_eq!(o.evidence.query_result.as_deref(), Some("1"));
    assert!(
        o.evidence.server_params["server_version"].starts_with("15."),
        "{o:?}"
    );
    assert!(o.evidence.timings.auth_ms.is_some() && o.evidence.timings.query_ms.is_some());

    // MD5 and plain TLS-less SCRAM logins work too.
    let o = run(
        &pg,
        &certs,
        &opts(TlsMode::VerifyFull, "md5user", pw("md5pass")),
    )
    .await;
    assert!(
        o.ok() && o.evidence.auth_request.as_deref() == Some("md5"),
        "{o:?}"
    );
    let o = run(
        &pg,
        &certs,
        &opts(TlsMode::Disable, "plainuser", pw("plainpass")),
    )
    .await;
    assert!(o.ok() && o.evidence.tls.is_none(), "{o:?}");

    // Wrong password: 28P01, and the planted password appears nowhere.
    let opt = opts(
        TlsMode::VerifyFull,
        "scramuser",
        pw(peers::PLANTED_PASSWORD),
    );
    let o = run(&pg, &certs, &opt).await;
    let f = o.failure.clone().unwrap();
    assert_eq!(f.kind, Kind::AuthFailed, "{o:?}");
    assert_eq!(f.kind.class(), "postgres.auth_failed");
    assert_eq!(o.evidence.error.as_ref().unwrap().sqlstate, "28P01");
    peers::assert_no_secret("outcome json", &serde_json::to_string(&o).unwrap());
    peers::assert_no_secret("outcome debug", &format!("{o:?}"));
    peers::assert_no_secret("options debug", &format!("{opt:?}"));

    // Token as the password: the server asks in cleartext (inside TLS), the token logs in.
    let o = run(
        &pg,
        &certs,
        &opts(
            TlsMode::VerifyFull,
            "tokenuser",
            Credential::Token(Secret::new(pg.token.clone())),
        ),
    )
    .await;
    assert!(o.ok(), "{o:?}");
    assert_eq!(o.evidence.auth_request.as_deref(), Some("cleartext"));
    assert_eq!(o.evidence.credential, "token");
    assert_eq!(o.evidence.query_result.as_deref(), Some("1"));
    peers::assert_no_secret("token outcome", &format!("{o:?}"));
    assert!(!format!("{o:?}").contains(&pg.token));

    // A rejected token is its own kind; the planted token leaks nowhere.
    let opt = opts(
        TlsMode::VerifyFull,
        "tokenuser",
        Credential::Token(Secret::new(peers::PLANTED_TOKEN)),
    );
    let o = run(&pg, &certs, &opt).await;
    assert_eq!(
        o.failure.as_ref().unwrap().kind,
        Kind::TokenRejected,
        "{o:?}"
    );
    peers::assert_no_secret("outcome json", &serde_json::to_string(&o).unwrap());
    peers::assert_no_secret("outcome debug", &format!("{o:?} {opt:?}"));

    // Missing database.
    let o = run(
        &pg,
        &certs,
        &Options {
            database: Some("nosuchdb".into()),
            ..opts(TlsMode::VerifyFull, "scramuser", pw("scrampass"))
        },
    )
    .await;
    assert_eq!(o.failure.unwrap().kind, Kind::DatabaseMissing);

    // Rough wall time on loopback (not an assertion).
    for (name, o) in [
        (
            "credential-free",
            opts(TlsMode::VerifyFull, "scramuser", Credential::None),
        ),
        (
            "scram login + SELECT 1",
            opts(TlsMode::VerifyFull, "scramuser", pw("scrampass")),
        ),
    ] {
        peers::time_probes(&format!("postgres {name}"), || async {
            run(&pg, &certs, &o).await.ok()
        })
        .await;
    }
}

#[tokio::test]
async fn postgres_without_ssl_refuses_tls() {
    let certs = Certs::new();
    let pg = match start(&certs, false) {
        Ok(pg) => pg,
        Err(why) => return peers::skip("postgres_without_ssl_refuses_tls", &why),
    };
    let o = run(&pg, &certs, &Options::credential_free(TlsMode::Require)).await;
    let f = o.failure.unwrap();
    assert_eq!(f.kind, Kind::TlsRefusedByServer);
    assert_eq!(f.kind.class(), "postgres.tls_refused");
    assert!(o.reached && o.evidence.ssl_answer == Some('N'));
}

#[tokio::test]
async fn http_server_is_not_postgres() {
    let addr = peers::http_server().await;
    let o = postgres::probe(
        peers::connect(addr).await,
        &Options::credential_free(TlsMode::VerifyFull),
        Certs::new().upgrade(),
        peers::deadline(5),
    )
    .await;
    let f = o.failure.unwrap();
    assert_eq!(f.kind, Kind::NotThisProtocol, "{f:?}");
    assert_eq!(f.kind.class(), "postgres.not_postgres");
    assert!(
        f.message.contains("'H'") || f.message.contains("\"H\""),
        "{f:?}"
    );
    assert!(!o.reached);
}

#[tokio::test]
async fn stall_after_tls_hits_the_deadline() {
    let certs = Certs::new();
    let addr = peers::tls_stall(certs.acceptor(), |mut s| async move {
        let mut req = [0u8; 8];
        s.read_exact(&mut req).await.unwrap();
        s.write_all(b"S").await.unwrap();
        s
    })
    .await;
    let o = peers::bounded(
        15,
        postgres::probe(
            peers::connect(addr).await,
            &Options::credential_free(TlsMode::VerifyFull),
            certs.upgrade(),
            peers::deadline(2),
        ),
    )
    .await;
    let f = o.failure.unwrap();
    assert_eq!(
        f.kind,
        Kind::Timeout {
            phase: Phase::Startup
        },
        "{f:?}"
    );
    assert_eq!(f.kind.class(), "postgres.timeout");
    assert!(o.evidence.tls.is_some());
}

#[tokio::test]
async fn silent_server_and_mid_handshake_close() {
    let silent = peers::stub(|s| async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        drop(s);
    })
    .await;
    let o = peers::bounded(
        15,
        postgres::probe(
            peers::connect(silent).await,
            &Options::credential_free(TlsMode::VerifyFull),
            Certs::new().upgrade(),
            peers::deadline(2),
        ),
    )
    .await;
    let k = o.failure.unwrap().kind;
    assert_eq!(
        k,
        Kind::Timeout {
            phase: Phase::SslRequest
        }
    );
    assert_eq!(k.class(), "postgres.no_answer");

    // 'S', then the server hangs up instead of doing TLS.
    let closer = peers::stub(|mut s| async move {
        let mut req = [0u8; 8];
        let _ = s.read_exact(&mut req).await;
        let _ = s.write_all(b"S").await;
    })
    .await;
    let o = postgres::probe(
        peers::connect(closer).await,
        &Options::credential_free(TlsMode::VerifyFull),
        Certs::new().upgrade(),
        peers::deadline(5),
    )
    .await;
    let f = o.failure.unwrap();
    assert_eq!(f.kind, Kind::Closed { phase: Phase::Tls }, "{f:?}");
    assert_eq!(f.kind.class(), "postgres.closed");
}
