//! Redis probe against a real Redis 7 with a TLS port, a plain port, `requirepass` and
//! ACL users (one whose password is a fake Entra token, standing in for Azure's
//! `AUTH <object id> <token>`), plus stubs for the fault cases.

use std::path::Path;
use std::process::Command;

use routeproof::probe::handshake::{Credential, TlsMode};
use routeproof::probe::redis::{self, Kind, Options, Phase};
use routeproof::secret::Secret;
use tokio::io::AsyncReadExt;

use crate::peers::{self, Certs, Proc};

pub(crate) const OBJECT_ID: &str = "6f1c2a4e-0000-4000-8000-000000000001";

pub(crate) struct Redis {
    pub(crate) tls: Proc,
    pub(crate) plain_port: u16,
    pub(crate) token: String,
}

pub(crate) fn start(certs: &Certs) -> Result<Redis, String> {
    if !Path::new("/usr/bin/redis-server").exists() {
        return Err("/usr/bin/redis-server not found (redis-server)".into());
    }
    let dir = tempfile::tempdir().unwrap();
    let dpath = dir.path().to_path_buf();
    let d = dpath.as_path();
    certs.write(d);
    let (port, plain_port) = (peers::free_port(), peers::free_port());
    // A token shaped as Entra issues it, whose `oid` claim is the ACL user's name.
    let token = crate::support::identity::jwt("https://redis.azure.com", OBJECT_ID);
    let conf = format!(
        "bind 127.0.0.1\nport {plain_port}\ntls-port {port}\ntls-cert-file {d}/server.crt\n\
         tls-key-file {d}/server.key\ntls-ca-cert-file {d}/ca.crt\ntls-auth-clients no\n\
         requirepass defaultpass\nuser alice on >alicepass ~* &* +@all\n\
         user {OBJECT_ID} on >{token} ~* &* +@all\nuser noping on >nopingpass ~* -@all +auth\n\
         daemonize no\ndir {d}\nsave \"\"\nappendonly no\nlogfile \"\"\n",
        d = d.display()
    );
    std::fs::write(d.join("redis.conf"), conf).unwrap();
    let log = d.join("redis.log");
    let mut cmd = Command::new("/usr/bin/redis-server");
    cmd.arg(d.join("redis.conf"));
    let mut child = peers::spawn_as(cmd, None, &log);
    peers::wait_port(port, &mut child, "redis-server", &log)?;
    peers::wait_port(plain_port, &mut child, "redis-server", &log)?;
    Ok(Redis {
        tls: Proc {
            child,
            dir,
            port,
            log,
        },
        plain_port,
        token,
    })
}

fn opts(tls: TlsMode, user: Option<&str>, cred: Credential) -> Options {
    Options {
        tls,
        user: user.map(Into::into),
        credential: cred,
    }
}

async fn run(r: &Redis, certs: &Certs, o: &Options) -> redis::Outcome {
    redis::probe(
        peers::connect(r.tls.addr()).await,
        o,
        certs.upgrade(),
        peers::deadline(10),
    )
    .await
}

#[tokio::test]
async fn real_redis_noauth_auth_ping_and_refusals() {
    let certs = Certs::new();
    let r = match start(&certs) {
        Ok(r) => r,
        Err(why) => return peers::skip("real_redis_noauth_auth_ping_and_refusals", &why),
    };

    // Credential-free: TLS, PING → -NOAUTH proves Redis.
    let o = run(
        &r,
        &certs,
        &opts(TlsMode::VerifyFull, None, Credential::None),
    )
    .await;
    assert!(o.ok() && o.reached, "{o:?}");
    assert_eq!(
        o.evidence.ping_reply.as_deref(),
        Some("-NOAUTH Authentication required.")
    );
    assert_eq!(o.evidence.auth_required, Some(true));
    assert!(o.evidence.tls.as_ref().unwrap().version.is_some());
    assert!(o.evidence.timings.tls_ms.is_some() && o.evidence.timings.ping_ms.is_some());

    // ACL user: AUTH alice + PING.
    let o = run(
        &r,
        &certs,
        &opts(
            TlsMode::VerifyFull,
            Some("alice"),
            Credential::Password(Secret::new("alicepass")),
        ),
    )
    .await;
    assert!(o.ok(), "{o:?}");
    assert!(o.evidence.authenticated);
    assert_eq!(o.evidence.auth_reply.as_deref(), Some("+OK"));
    assert_eq!(o.evidence.ping_after_auth.as_deref(), Some("+PONG"));

    // The default user (an access key): AUTH <password>.
    let o = run(
        &r,
        &certs,
        &opts(
            TlsMode::VerifyFull,
            None,
            Credential::Password(Secret::new("defaultpass")),
        ),
    )
    .await;
    assert!(o.ok(), "{o:?}");

    // Token for the object-id user, as Azure's Entra auth does it.
    let o = run(
        &r,
        &certs,
        &opts(
            TlsMode::VerifyFull,
            Some(OBJECT_ID),
            Credential::Token(Secret::new(r.token.clone())),
        ),
    )
    .await;
    assert!(o.ok(), "{o:?}");
    assert!(!format!("{o:?}").contains(&r.token));

    // Wrong password and rejected token; planted secrets leak nowhere.
    let opt = opts(
        TlsMode::VerifyFull,
        Some("alice"),
        Credential::Password(Secret::new(peers::PLANTED_PASSWORD)),
    );
    let o = run(&r, &certs, &opt).await;
    let f = o.failure.clone().unwrap();
    assert_eq!(f.kind, Kind::AuthFailed);
    assert_eq!(f.kind.class(), "redis.auth_failed");
    assert!(f.message.contains("WRONGPASS"), "{f:?}");
    peers::assert_no_secret("outcome json", &serde_json::to_string(&o).unwrap());
    peers::assert_no_secret("outcome debug", &format!("{o:?} {opt:?}"));
    let opt = opts(
        TlsMode::VerifyFull,
        Some(OBJECT_ID),
        Credential::Token(Secret::new(peers::PLANTED_TOKEN)),
    );
    let o = run(&r, &certs, &opt).await;
    assert_eq!(o.failure.as_ref().unwrap().kind, Kind::TokenRejected);
    peers::assert_no_secret("outcome json", &serde_json::to_string(&o).unwrap());
    peers::assert_no_secret("outcome debug", &format!("{o:?} {opt:?}"));

    // An ACL user without +ping.
    let o = run(
        &r,
        &certs,
        &opts(
            TlsMode::VerifyFull,
            Some("noping"),
            Credential::Password(Secret::new("nopingpass")),
        ),
    )
    .await;
    assert_eq!(o.failure.unwrap().kind, Kind::NoPermission);

    // Plain text to the TLS port: the server hangs up.
    let o = redis::probe(
        peers::connect(r.tls.addr()).await,
        &opts(TlsMode::Disable, None, Credential::None),
        certs.upgrade(),
        peers::deadline(5),
    )
    .await;
    let f = o.failure.unwrap();
    assert_eq!(f.kind, Kind::PlaintextRefused, "{f:?}");
    assert_eq!(f.kind.class(), "redis.plaintext_refused");

    // The plain port in plain text answers too (TLS disabled on purpose).
    let plain = std::net::SocketAddr::from(([127, 0, 0, 1], r.plain_port));
    let o = redis::probe(
        peers::connect(plain).await,
        &opts(TlsMode::Disable, None, Credential::None),
        certs.upgrade(),
        peers::deadline(5),
    )
    .await;
    assert!(
        o.ok() && o.evidence.tls.is_none() && o.evidence.auth_required == Some(true),
        "{o:?}"
    );

    for (name, o) in [
        (
            "credential-free",
            opts(TlsMode::VerifyFull, None, Credential::None),
        ),
        (
            "AUTH + PING",
            opts(
                TlsMode::VerifyFull,
                Some("alice"),
                Credential::Password(Secret::new("alicepass")),
            ),
        ),
    ] {
        peers::time_probes(&format!("redis {name}"), || async {
            run(&r, &certs, &o).await.ok()
        })
        .await;
    }
}

#[tokio::test]
async fn redis_fault_cases() {
    let certs = Certs::new();
    // An HTTP server answers PING with an HTTP 400.
    let http = peers::http_server().await;
    let o = redis::probe(
        peers::connect(http).await,
        &opts(TlsMode::Disable, None, Credential::None),
        certs.upgrade(),
        peers::deadline(5),
    )
    .await;
    let f = o.failure.unwrap();
    assert_eq!(f.kind, Kind::NotThisProtocol, "{f:?}");
    assert_eq!(f.kind.class(), "redis.not_redis");
    assert!(f.message.contains("HTTP/1.1"), "{f:?}");

    // A plain-text server answers the ClientHello (hyper's 400): TLS refused. (Redis's
    // own plain port may wait for a newline that a ClientHello need not contain.)
    let o = redis::probe(
        peers::connect(http).await,
        &opts(TlsMode::VerifyFull, None, Credential::None),
        certs.upgrade(),
        peers::deadline(5),
    )
    .await;
    let f = o.failure.unwrap();
    assert_eq!(f.kind, Kind::TlsRefusedByServer, "{f:?}");
    assert_eq!(f.kind.class(), "redis.tls_refused");

    // TLS accepted, PING never answered.
    let staller = peers::tls_stall(certs.acceptor(), |s| async move { s }).await;
    let o = peers::bounded(
        15,
        redis::probe(
            peers::connect(staller).await,
            &opts(TlsMode::VerifyFull, None, Credential::None),
            certs.upgrade(),
            peers::deadline(2),
        ),
    )
    .await;
    let k = o.failure.unwrap().kind;
    assert_eq!(k, Kind::Timeout { phase: Phase::Ping });
    assert_eq!(k.class(), "redis.no_answer");

    // TLS accepted, the server reads PING and hangs up.
    let acc = certs.acceptor();
    let closer = peers::stub(move |s| {
        let acc = acc.clone();
        async move {
            let mut t = acc.accept(s).await.unwrap();
            let mut b = [0u8; 14];
            let _ = t.read_exact(&mut b).await;
        }
    })
    .await;
    let o = redis::probe(
        peers::connect(closer).await,
        &opts(TlsMode::VerifyFull, None, Credential::None),
        certs.upgrade(),
        peers::deadline(5),
    )
    .await;
    let f = o.failure.unwrap();
    assert_eq!(f.kind, Kind::Closed { phase: Phase::Ping }, "{f:?}");

    // A server that accepts TCP and never does TLS.
    let silent = peers::stub(|s| async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        drop(s);
    })
    .await;
    let o = peers::bounded(
        15,
        redis::probe(
            peers::connect(silent).await,
            &opts(TlsMode::VerifyFull, None, Credential::None),
            certs.upgrade(),
            peers::deadline(2),
        ),
    )
    .await;
    assert_eq!(o.failure.unwrap().kind, Kind::Timeout { phase: Phase::Tls });
}
