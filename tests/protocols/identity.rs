//! Managed-identity logins to the data services through the engine (config text ->
//! `Engine::run` -> report), with the emulated App Service identity endpoint of
//! `support::identity` handing out the tokens: PostgreSQL 15 whose role's password is the
//! token string (token as the password, as Azure takes it), Redis 7 with an ACL user
//! named by the identity's object id (`AUTH <oid> <token>`), and MariaDB behind a loopback
//! relay that records what reaches the server: MariaDB has no server-side clear-text
//! plugin, so the Entra path is proven on the wire (plugin `mysql_clear_password`, the
//! token only inside TLS).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use routeproof::probe::identity::resource;
use routeproof::report::{Evidence, FailureClass, Layer, Report, TargetReport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::peers::{self, Certs, PLANTED_TOKEN};
use crate::support::engine::{class, engine_toml, env_of, hint, run};
use crate::support::identity::{IdentityEndpoint, down_url};

const HEADER: &str = "idh-PLANTED-7d1e";
const CLIENT: &str = "3c2b1a00-1111-4222-8333-444455556666";

fn head() -> String {
    // IP targets: no DNS query is sent.
    engine_toml(
        &["127.0.0.1:9".parse().unwrap()],
        "azure_dns = \"127.0.0.1:9\"",
        &[("login", "3s")],
    )
}

/// A target at `port` with the test CA, `extra` keys, run with `env`.
async fn probe(
    scheme: &str,
    port: u16,
    ca: &std::path::Path,
    extra: &str,
    env: &[(&str, String)],
) -> Report {
    let path = if scheme == "postgres" {
        "/postgres"
    } else {
        ""
    };
    // A plain redis:// target has no TLS keys.
    let tls = if scheme == "redis" {
        String::new()
    } else {
        format!("sni = \"localhost\"\nca_file = \"{}\"\n", ca.display())
    };
    let text = format!(
        "{}[[targets]]\ntarget = \"{scheme}://127.0.0.1:{port}{path}\"\n{tls}{extra}\n",
        head()
    );
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    peers::bounded(60, run(&text, &env_of(&pairs), None)).await
}

fn identity_ev(t: &TargetReport) -> serde_json::Value {
    let l = t.layers.last().expect("a layer");
    match &l.evidence {
        Evidence::Protocol(p) => {
            serde_json::to_value(p.identity.as_ref().expect("identity evidence")).unwrap()
        }
        other => panic!("{other:?}"),
    }
}

fn detail(t: &TargetReport) -> serde_json::Value {
    match &t.layers.last().unwrap().evidence {
        Evidence::Protocol(p) => p.detail.clone(),
        other => panic!("{other:?}"),
    }
}

/// The first target, which failed with `want` after `reached` answered.
pub(crate) fn failed(r: &Report, want: FailureClass, reached: Layer) -> &TargetReport {
    let t = &r.targets[0];
    assert_eq!(class(t), Some(want), "{t:#?}");
    assert_eq!(t.reached, Some(reached), "{t:#?}");
    t
}

/// No token, header or planted secret in the report (JSON and Debug).
fn clean(r: &Report, tokens: &[&str]) {
    let json = serde_json::to_string(r).unwrap();
    let dbg = format!("{r:?}");
    for s in tokens.iter().chain([&HEADER, &PLANTED_TOKEN]) {
        assert!(
            !json.contains(s) && !dbg.contains(s),
            "a secret leaked: {json}"
        );
    }
}

#[tokio::test]
async fn postgres_takes_the_identity_token_as_the_password() {
    let certs = Certs::new();
    let pg = match crate::postgres::start(&certs, true) {
        Ok(pg) => pg,
        Err(why) => return peers::skip("postgres_takes_the_identity_token_as_the_password", &why),
    };
    let dir = tempfile::tempdir().unwrap();
    certs.write(dir.path());
    let ca = dir.path().join("ca.crt");
    let port = pg.proc.port;
    let idp = IdentityEndpoint::start(HEADER, &[(resource::OSSRDBMS, &pg.token)], &[CLIENT]).await;
    let mi = "user = \"tokenuser\"\nauthentication = \"managed_identity\"";

    // The token is the role's password: login and SELECT 1.
    let r = probe("postgres", port, &ca, mi, &idp.env()).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let d = detail(t);
    assert_eq!(d["credential"], "token", "{d}");
    assert_eq!(d["auth_request"], "cleartext", "{d}");
    assert_eq!(d["query_result"], "1", "{d}");
    let id = identity_ev(t);
    eprintln!(
        "timing: postgres managed-identity login {} ms (token {} ms), target {} ms",
        t.layers.last().unwrap().duration_ms,
        id["token_ms"],
        t.duration_ms
    );
    assert_eq!(id["resource"], resource::OSSRDBMS, "{id}");
    assert_eq!(id["identity"], "system-assigned", "{id}");
    let seen = idp.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].header_ok && seen[0].resource.as_deref() == Some(resource::OSSRDBMS),
        "{seen:?}"
    );
    assert_eq!(seen[0].api_version.as_deref(), Some("2019-08-01"));
    clean(&r, &[&pg.token]);

    // A user-assigned identity: its client id goes to the endpoint.
    let r = probe(
        "postgres",
        port,
        &ca,
        &format!("{mi}\nclient_id = \"{CLIENT}\""),
        &idp.env(),
    )
    .await;
    assert!(r.targets[0].ok, "{:#?}", r.targets[0]);
    assert_eq!(
        idp.seen().last().unwrap().client_id.as_deref(),
        Some(CLIENT)
    );

    // A token the server does not take: postgres.token_rejected.
    let wrong = IdentityEndpoint::start(HEADER, &[(resource::OSSRDBMS, PLANTED_TOKEN)], &[]).await;
    let r = probe("postgres", port, &ca, mi, &wrong.env()).await;
    let t = failed(&r, FailureClass::PostgresTokenRejected, Layer::Postgres);
    assert!(
        hint(t).contains("ossrdbms-aad.database.windows.net"),
        "{}",
        hint(t)
    );
    clean(&r, &[]);

    // A client id the app does not have: identity.refused, after PostgreSQL answered.
    let r = probe(
        "postgres",
        port,
        &ca,
        &format!("{mi}\nclient_id = \"00000000-0000-4000-8000-00000000dead\""),
        &idp.env(),
    )
    .await;
    let t = failed(&r, FailureClass::IdentityRefused, Layer::Postgres);
    let f = t.failure.as_ref().unwrap();
    assert_eq!(f.layer, Some(Layer::Postgres));
    assert!(
        f.message
            .contains("Unable to load the proper Managed Identity"),
        "{f:?}"
    );
    for words in [
        "00000000-0000-4000-8000-00000000dead",
        "__clientId",
        "User assigned",
    ] {
        assert!(f.hint.contains(words), "hint lacks {words}: {}", f.hint);
    }

    // The endpoint is down: identity.unavailable; the route is still proven.
    let env = [
        ("IDENTITY_ENDPOINT", down_url()),
        ("IDENTITY_HEADER", HEADER.to_string()),
    ];
    let r = probe("postgres", port, &ca, mi, &env).await;
    let t = failed(&r, FailureClass::IdentityUnavailable, Layer::Postgres);
    assert_eq!(detail(t)["credential"], "none");
    for words in ["not enabled", "IDENTITY_ENDPOINT", "The route works"] {
        assert!(hint(t).contains(words), "hint lacks {words}: {}", hint(t));
    }
    clean(&r, &[]);

    // No identity endpoint at all (not App Service): identity.not_configured.
    let r = probe("postgres", port, &ca, mi, &[]).await;
    assert_eq!(
        class(&r.targets[0]),
        Some(FailureClass::IdentityNotConfigured),
        "{:#?}",
        r.targets[0]
    );

    // Without TLS the server asks for the password in clear text: the token is not sent.
    let r = probe(
        "postgres",
        port,
        &ca,
        &format!("{mi}\ntls = \"disable\""),
        &idp.env(),
    )
    .await;
    let t = failed(&r, FailureClass::PostgresTokenNeedsTls, Layer::Postgres);
    assert!(hint(t).contains("verify-full"), "{}", hint(t));
    clean(&r, &[&pg.token]);
}

#[tokio::test]
async fn redis_auth_with_object_id_and_token() {
    let certs = Certs::new();
    let rd = match crate::redis::start(&certs) {
        Ok(r) => r,
        Err(why) => return peers::skip("redis_auth_with_object_id_and_token", &why),
    };
    let dir = tempfile::tempdir().unwrap();
    certs.write(dir.path());
    let ca = dir.path().join("ca.crt");
    let idp = IdentityEndpoint::start(HEADER, &[(resource::REDIS, &rd.token)], &[]).await;
    let mi = "authentication = \"managed_identity\"";

    // No `user`: the token's `oid` claim names the ACL user, as Azure's Entra auth does.
    let r = probe("rediss", rd.tls.port, &ca, mi, &idp.env()).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let d = detail(t);
    assert_eq!(d["user"], crate::redis::OBJECT_ID, "{d}");
    assert_eq!(d["credential"], "token", "{d}");
    assert_eq!(d["authenticated"], true, "{d}");
    assert_eq!(identity_ev(t)["resource"], resource::REDIS);
    eprintln!(
        "timing: redis managed-identity AUTH {} ms (token {} ms)",
        t.layers.last().unwrap().duration_ms,
        identity_ev(t)["token_ms"]
    );
    clean(&r, &[&rd.token]);

    // A token Redis does not know for that user: redis.token_rejected.
    let wrong = IdentityEndpoint::start(HEADER, &[(resource::REDIS, PLANTED_TOKEN)], &[]).await;
    let r = probe(
        "rediss",
        rd.tls.port,
        &ca,
        &format!("{mi}\nuser = \"{}\"", crate::redis::OBJECT_ID),
        &wrong.env(),
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::RedisTokenRejected), "{t:#?}");
    assert!(hint(t).contains("object id"), "{}", hint(t));
    clean(&r, &[]);

    // The plain port: PING proves Redis, the token is never sent without TLS.
    let r = probe("redis", rd.plain_port, &ca, mi, &idp.env()).await;
    let t = failed(&r, FailureClass::RedisTokenNeedsTls, Layer::Redis);
    assert!(hint(t).contains("rediss://"), "{}", hint(t));
    clean(&r, &[&rd.token]);
}

/// What the relay saw the client send, and whether it was inside TLS.
type Wire = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;

async fn raw_packet<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await?;
    let mut p = vec![0u8; u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize];
    s.read_exact(&mut p).await?;
    let mut out = h.to_vec();
    out.extend(p);
    Ok(out)
}

/// Copies `from` to `to`, recording what passes when `rec` is given.
async fn copy<R, W>(mut from: R, mut to: W, rec: Option<(Wire, bool)>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        if let Some((w, tls)) = &rec {
            w.lock().unwrap().push((*tls, buf[..n].to_vec()));
        }
    }
    let _ = to.shutdown().await;
}

async fn splice<A, B>(client: A, server: B, wire: Wire, tls: bool)
where
    A: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (cr, cw) = tokio::io::split(client);
    let (sr, sw) = tokio::io::split(server);
    let up = tokio::spawn(copy(cr, sw, Some((wire, tls))));
    copy(sr, cw, None).await;
    let _ = up.await;
}

/// A MySQL-aware relay in front of `upstream`: it passes the greeting, and when the client
/// asks for TLS it ends the client's TLS with the test certificate and opens its own TLS
/// to the server, so it can record the client's packets in the clear.
async fn relay(upstream: SocketAddr, certs: &Certs) -> (SocketAddr, Wire) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let wire: Wire = Arc::default();
    let (acceptor, up) = (certs.acceptor(), certs.upgrade());
    let w = wire.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let (acceptor, up, w) = (acceptor.clone(), up.clone(), w.clone());
            tokio::spawn(async move {
                let Ok(mut s) = TcpStream::connect(upstream).await else {
                    return;
                };
                let Ok(greeting) = raw_packet(&mut s).await else {
                    return;
                };
                if c.write_all(&greeting).await.is_err() {
                    return;
                }
                let Ok(first) = raw_packet(&mut c).await else {
                    return;
                };
                w.lock().unwrap().push((false, first.clone()));
                if s.write_all(&first).await.is_err() {
                    return;
                }
                let caps = u32::from_le_bytes(first[4..8].try_into().unwrap());
                let ssl_request = first.len() == 4 + 32 && caps & 0x800 != 0;
                if !ssl_request {
                    return splice(c, s, w, false).await;
                }
                let connector = tokio_rustls::TlsConnector::from(up.config.clone());
                let Ok(s) = connector.connect(up.server_name.clone(), s).await else {
                    return;
                };
                let Ok(c) = acceptor.accept(c).await else {
                    return;
                };
                splice(c, s, w, true).await;
            });
        }
    });
    (addr, wire)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn mysql_token_goes_with_the_clear_text_plugin_and_only_inside_tls() {
    let certs = Certs::new();
    let db = match crate::mysql::start(&certs, true) {
        Ok(p) => p,
        Err(why) => return peers::skip("mysql_token_goes_with_the_clear_text_plugin", &why),
    };
    let dir = tempfile::tempdir().unwrap();
    certs.write(dir.path());
    let ca = dir.path().join("ca.crt");
    let (addr, wire) = relay(db.addr(), &certs).await;
    // The token is tokenuser's password: MariaDB, which has no Entra plugin, switches the
    // client to mysql_native_password, and the probe answers that switch with the token.
    let token = peers::fake_token("mytoken");
    let idp = IdentityEndpoint::start(HEADER, &[(resource::OSSRDBMS, &token)], &[]).await;
    let mi = "user = \"tokenuser\"\nauthentication = \"managed_identity\"";

    let r = probe("mysql", addr.port(), &ca, mi, &idp.env()).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let d = detail(t);
    assert_eq!(d["auth_plugins"][0], "mysql_clear_password", "{d}");
    assert_eq!(d["credential"], "token", "{d}");
    {
        let w = wire.lock().unwrap();
        let in_tls: Vec<u8> = w
            .iter()
            .filter(|(tls, _)| *tls)
            .flat_map(|(_, b)| b.clone())
            .collect();
        let plain: Vec<u8> = w
            .iter()
            .filter(|(tls, _)| !*tls)
            .flat_map(|(_, b)| b.clone())
            .collect();
        // The handshake response, inside TLS: user, the token NUL-terminated, the plugin.
        let mut tok = token.clone().into_bytes();
        tok.push(0);
        assert!(contains(&in_tls, &tok), "the token inside TLS");
        assert!(contains(&in_tls, b"tokenuser\0"));
        assert!(contains(&in_tls, b"mysql_clear_password\0"));
        // Before TLS only the 32-byte SSLRequest went out: no token, no plugin name.
        assert_eq!(plain.len(), 4 + 32, "{plain:?}");
        assert!(!contains(&plain, token.as_bytes()));
    }
    clean(&r, &[&token]);

    // A token MariaDB does not take: mysql.token_rejected, the server's witness kept.
    let wrong = IdentityEndpoint::start(HEADER, &[(resource::OSSRDBMS, PLANTED_TOKEN)], &[]).await;
    let r = probe("mysql", addr.port(), &ca, mi, &wrong.env()).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::MysqlTokenRejected), "{t:#?}");
    assert!(hint(t).contains("CREATE AADUSER"), "{}", hint(t));
    clean(&r, &[]);

    // Without TLS the probe refuses to send the token at all.
    wire.lock().unwrap().clear();
    let r = probe(
        "mysql",
        addr.port(),
        &ca,
        &format!("{mi}\ntls = \"disable\""),
        &idp.env(),
    )
    .await;
    failed(&r, FailureClass::MysqlCleartextNeedsTls, Layer::Mysql);
    let w = wire.lock().unwrap();
    assert!(w.iter().all(|(tls, _)| !tls));
    let sent: Vec<u8> = w.iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(
        !contains(&sent, token.as_bytes()),
        "the token reached the wire"
    );
    drop(w);
    clean(&r, &[&token]);
}
