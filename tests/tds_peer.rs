//! The TDS test server (tests/support/tds) judged by clients nobody here wrote:
//! python-tds, FreeTDS `tsql`, pymssql (FreeTDS 1.5) and tedious. If they log in
//! and read `SELECT 1` in every encryption mode, the server is real enough for the
//! probe's TDS layer tests; a missing client skips visibly (fails in CI).
//!
//! A few raw-byte tests pin what the clients cannot show directly (the PRELOGIN
//! answer's packet type, the encryption table, ALPN under TDS 8).
mod support;

use support::certs::{self, Ca, LeafSpec, Material, PemFiles};
use support::tds::clients::{self, ClientTls, Connect, Outcome};
use support::tds::login::{deobfuscate, obfuscate};
use support::tds::packet::{self, Prelogin, enc, opt, ty};
use support::tds::{Encryption, Fault, LoginTransport, TdsConfig, TdsServer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const USER: &str = "probe";
/// Non-ASCII on purpose: the password travels as obfuscated UTF-16.
const PASSWORD: &str = "Rp-Pässw0rd!";
const TOKEN: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJhdWQiOiJodHRwczovL2RhdGFiYXNlLndpbmRvd3MubmV0LyJ9.";

struct Tls {
    ca: Ca,
    leaf: Material,
    pem: PemFiles,
}

/// A CA and a leaf for the name python-tds and tedious check (`sql.routeproof.test`)
/// and the address FreeTDS checks (127.0.0.1).
fn tls() -> Tls {
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof TDS test CA");
    let leaf = ca.issue(&LeafSpec::new(["sql.routeproof.test", "127.0.0.1"]));
    let pem = PemFiles::write(&ca, &leaf);
    Tls { ca, leaf, pem }
}

fn config() -> TdsConfig {
    TdsConfig::default().user(USER, PASSWORD)
}

async fn server(encryption: Encryption, tls: &Tls) -> TdsServer {
    TdsServer::start(config().encrypted(encryption, tls.leaf.clone())).await
}

/// The client's outcome, or `None` after a visible skip when it is not installed.
fn present(test: &str, r: Result<Outcome, String>) -> Option<Outcome> {
    r.map_err(|why| support::skip(test, &why)).ok()
}

#[track_caller]
fn assert_select_1(o: &Outcome) {
    assert!(!o.hung, "client hung:\n{}", o.output);
    assert!(o.ok, "client failed: {}\n{}", o.message, o.output);
    let first = o.rows.first().and_then(|r| r.first());
    let one = first.is_some_and(|v| v.as_i64() == Some(1) || v.as_str() == Some("1"));
    assert!(
        one,
        "expected one row with 1, got {:?}\n{}",
        o.rows, o.output
    );
}

#[track_caller]
fn assert_refused(o: &Outcome, number: u64) {
    assert!(!o.hung, "client hung:\n{}", o.output);
    assert!(!o.ok, "login unexpectedly succeeded:\n{}", o.output);
    assert_eq!(o.number, Some(number), "{}\n{}", o.message, o.output);
}

// ------------------------------------------------------------------ raw bytes

fn client_prelogin(encryption: u8, fedauth: bool) -> Vec<u8> {
    let mut p = Prelogin {
        options: vec![
            (opt::VERSION, vec![1, 0, 0, 0, 0, 0]),
            (opt::ENCRYPTION, vec![encryption]),
            (opt::INSTOPT, b"MSSQLServer\0".to_vec()),
            (opt::THREADID, vec![0, 0, 0, 1]),
            (opt::MARS, vec![0]),
        ],
    };
    if fedauth {
        p.options.push((opt::FEDAUTHREQUIRED, vec![1]));
    }
    p.encode()
}

async fn prelogin_answer(server: &TdsServer, encryption: u8, fedauth: bool) -> Prelogin {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let hello = client_prelogin(encryption, fedauth);
    tcp.write_all(&packet::frame(ty::PRELOGIN, &hello, 4096, 0))
        .await
        .unwrap();
    let reply = packet::read_message(&mut tcp).await.unwrap().unwrap();
    assert_eq!(
        reply.ty,
        ty::TABULAR_RESULT,
        "PRELOGIN answered with the wrong packet type"
    );
    Prelogin::parse(&reply.payload).unwrap()
}

#[tokio::test]
async fn prelogin_answer_is_a_tabular_result_that_parses() {
    let server = TdsServer::start(config()).await;
    let p = prelogin_answer(&server, enc::NOT_SUP, false).await;
    assert_eq!(p.encryption(), Some(enc::NOT_SUP));
    assert_eq!(p.version(), Some((16, 0, 1000)));
    assert_eq!(p.get(opt::MARS), Some(&[0u8][..]));
    assert_eq!(server.stats().last_client_encryption, Some(enc::NOT_SUP));
}

#[tokio::test]
async fn encryption_answers_follow_the_ms_tds_table() {
    let tls = tls();
    let cases = [
        (Encryption::Off, enc::NOT_SUP, enc::NOT_SUP),
        (Encryption::Off, enc::OFF, enc::OFF),
        (Encryption::Off, enc::ON, enc::ON),
        (Encryption::On, enc::OFF, enc::ON),
        (Encryption::Required, enc::NOT_SUP, enc::REQ),
        (Encryption::Required, enc::ON, enc::REQ),
        (Encryption::NotSupported, enc::ON, enc::NOT_SUP),
    ];
    for (setting, client, expected) in cases {
        let server = server(setting, &tls).await;
        let p = prelogin_answer(&server, client, false).await;
        assert_eq!(
            p.encryption(),
            Some(expected),
            "{setting:?} answering client {client}"
        );
    }
}

#[tokio::test]
async fn fedauth_required_is_echoed_only_when_asked_and_configured() {
    let with_token = TdsServer::start(TdsConfig {
        fedauth_token: Some(TOKEN.into()),
        ..config()
    })
    .await;
    let asked = prelogin_answer(&with_token, enc::NOT_SUP, true).await;
    assert_eq!(asked.fedauth_required(), Some(true));
    let not_asked = prelogin_answer(&with_token, enc::NOT_SUP, false).await;
    assert_eq!(not_asked.fedauth_required(), None);
    let without = TdsServer::start(config()).await;
    assert_eq!(
        prelogin_answer(&without, enc::NOT_SUP, true)
            .await
            .fedauth_required(),
        None
    );
}

#[tokio::test]
async fn garbage_reply_is_not_a_tds_answer() {
    let server = TdsServer::start(TdsConfig {
        fault: Some(Fault::GarbageReply),
        ..config()
    })
    .await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let hello = client_prelogin(enc::NOT_SUP, false);
    tcp.write_all(&packet::frame(ty::PRELOGIN, &hello, 4096, 0))
        .await
        .unwrap();
    // "HTTP/1.1 400…": 'H' is no TDS packet type, so the reader refuses it at once.
    let err = packet::read_message(&mut tcp).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
}

#[tokio::test]
async fn strict_mode_is_tls_first_with_alpn_tds_8() {
    let tls = tls();
    let server = TdsServer::start(TdsConfig {
        strict: true,
        ..config().encrypted(Encryption::Off, tls.leaf.clone())
    })
    .await;
    let client = tls.ca.client_config(&[b"tds/8.0"]);
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("sql.routeproof.test").unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"tds/8.0"[..]));
    let hello = client_prelogin(enc::NOT_SUP, false);
    stream
        .write_all(&packet::frame(ty::PRELOGIN, &hello, 4096, 0))
        .await
        .unwrap();
    stream.flush().await.unwrap();
    let reply = packet::read_message(&mut stream).await.unwrap().unwrap();
    assert_eq!(reply.ty, ty::TABULAR_RESULT);
    let tls_seen = server.stats().last_tls.unwrap();
    assert_eq!(tls_seen.alpn.as_deref(), Some("tds/8.0"));
    assert_eq!(tls_seen.sni.as_deref(), Some("sql.routeproof.test"));
}

/// Login, a batch and an ATTENTION in raw bytes: what no driver lets a test
/// trigger on purpose.
#[tokio::test]
async fn raw_login_batch_and_attention() {
    use support::tds::login::encode_sql_login;
    use support::tds::tokens::{done, token};
    let server = TdsServer::start(config()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let send = |ty: u8, payload: Vec<u8>| packet::frame(ty, &payload, 4096, 0);
    tcp.write_all(&send(ty::PRELOGIN, client_prelogin(enc::NOT_SUP, false)))
        .await
        .unwrap();
    packet::read_message(&mut tcp).await.unwrap().unwrap();

    tcp.write_all(&send(ty::LOGIN7, encode_sql_login(USER, PASSWORD, "appdb")))
        .await
        .unwrap();
    let reply = packet::read_message(&mut tcp).await.unwrap().unwrap();
    assert!(
        reply.payload.contains(&token::LOGINACK),
        "{:02x?}",
        reply.payload
    );
    assert_eq!(server.stats().last_database.as_deref(), Some("appdb"));

    // TDS 7.4 batch: ALL_HEADERS with one transaction-descriptor header, then UCS-2.
    let mut batch = vec![22, 0, 0, 0, 18, 0, 0, 0, 2, 0];
    batch.extend_from_slice(&[0; 8]);
    batch.extend_from_slice(&1u32.to_le_bytes());
    batch.extend(support::tds::login::string_to_ucs2("SELECT 7"));
    tcp.write_all(&send(ty::SQL_BATCH, batch)).await.unwrap();
    let reply = packet::read_message(&mut tcp).await.unwrap().unwrap();
    let p = &reply.payload;
    assert_eq!(p[0], token::COLMETADATA);
    let row = p.iter().position(|b| *b == token::ROW).unwrap();
    assert_eq!(p[row + 1..row + 5], 7i32.to_le_bytes());

    tcp.write_all(&send(ty::ATTENTION, Vec::new()))
        .await
        .unwrap();
    let reply = packet::read_message(&mut tcp).await.unwrap().unwrap();
    assert_eq!(reply.payload[0], token::DONE);
    let status = u16::from_le_bytes([reply.payload[1], reply.payload[2]]);
    assert_eq!(status & done::ATTN, done::ATTN);
}

#[test]
fn password_obfuscation_round_trips() {
    assert_eq!(deobfuscate(&obfuscate(PASSWORD)), PASSWORD);
    // MS-TDS: each byte has its nibbles swapped, then is XORed with 0xA5.
    assert_eq!(obfuscate("a"), vec![0x16 ^ 0xA5, 0xA5]);
}

#[test]
fn freetds_login_batch_is_answered_statement_by_statement() {
    use support::tds::batch::{Answer, Context, answer};
    let ctx = Context {
        spid: 51,
        server_name: "srv",
        version: (16, 0, 1000),
        database: "db",
        user: "u",
    };
    let a = answer("set textsize 64512 select @@spid use [master]", &ctx);
    assert_eq!(a.len(), 3);
    assert_eq!(a[0], Answer::Done);
    assert!(matches!(a[1], Answer::Int { value: 51, .. }));
    assert_eq!(a[2], Answer::UseDatabase("master".into()));
}

// ------------------------------------------------------------------ python-tds

#[tokio::test]
async fn pytds_reads_select_1_without_encryption() {
    let server = TdsServer::start(config()).await;
    let Some(o) = present(
        "pytds_plain",
        clients::pytds(&Connect::new(server.port(), USER, PASSWORD)).await,
    ) else {
        return;
    };
    assert_select_1(&o);
    let s = server.stats();
    assert_eq!(s.last_login_transport, Some(LoginTransport::Plain));
    assert_eq!(
        (s.last_user.as_deref(), s.logins_succeeded),
        (Some(USER), 1)
    );
}

#[tokio::test]
async fn pytds_reads_select_1_over_tls_in_prelogin_packets() {
    let tls = tls();
    for setting in [Encryption::Required, Encryption::On, Encryption::Off] {
        let server = server(setting, &tls).await;
        let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
        let Some(o) = present("pytds_tls", clients::pytds(&c).await) else {
            return;
        };
        assert_select_1(&o);
        let s = server.stats();
        assert_eq!(
            s.last_login_transport,
            Some(LoginTransport::Tls),
            "{setting:?}"
        );
        let seen = s.last_tls.unwrap();
        assert_eq!(
            (seen.version.as_str(), seen.sni.as_deref()),
            ("TLSv1_2", Some("sql.routeproof.test"))
        );
    }
}

#[tokio::test]
async fn pytds_encrypts_only_the_login_when_both_sides_say_off() {
    let tls = tls();
    let server = server(Encryption::Off, &tls).await;
    let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::LoginOnly, &tls.pem.ca);
    let Some(o) = present("pytds_login_only", clients::pytds(&c).await) else {
        return;
    };
    assert_select_1(&o);
    let s = server.stats();
    assert_eq!(s.last_client_encryption, Some(enc::OFF));
    assert_eq!(s.last_login_transport, Some(LoginTransport::LoginOnlyTls));
}

#[tokio::test]
async fn pytds_sees_18456_for_a_wrong_password() {
    let server = TdsServer::start(config()).await;
    let Some(o) = present(
        "pytds_18456",
        clients::pytds(&Connect::new(server.port(), USER, "wrong")).await,
    ) else {
        return;
    };
    assert_refused(&o, 18456);
    assert_eq!(
        (
            server.stats().logins_attempted,
            server.stats().logins_succeeded
        ),
        (1, 0)
    );
}

#[tokio::test]
async fn pytds_follows_a_routing_envchange() {
    let target = TdsServer::start(config()).await;
    let gateway = TdsServer::start(TdsConfig {
        route_to: Some(("127.0.0.1".into(), target.port())),
        ..config()
    })
    .await;
    let Some(o) = present(
        "pytds_routing",
        clients::pytds(&Connect::new(gateway.port(), USER, PASSWORD)).await,
    ) else {
        return;
    };
    assert_select_1(&o);
    assert_eq!(gateway.stats().routed, 1);
    assert_eq!(target.stats().logins_succeeded, 1);
}

#[tokio::test]
async fn pytds_logs_in_with_a_fedauth_access_token() {
    let tls = tls();
    let server = TdsServer::start(TdsConfig {
        fedauth_token: Some(TOKEN.into()),
        ..config().encrypted(Encryption::Required, tls.leaf.clone())
    })
    .await;
    let mut c = Connect::new(server.port(), "", "").tls(ClientTls::Required, &tls.pem.ca);
    c.token = Some(TOKEN.into());
    let Some(o) = present("pytds_fedauth", clients::pytds(&c).await) else {
        return;
    };
    assert_select_1(&o);
    assert_eq!(server.stats().fedauth_logins, 1);
    c.token = Some("not-the-token".into());
    assert_refused(&clients::pytds(&c).await.unwrap(), 18456);
}

#[tokio::test]
async fn pytds_gets_the_configured_query_error() {
    let server = TdsServer::start(TdsConfig {
        query_error: Some((208, "Invalid object name 'nope'.".into())),
        ..config()
    })
    .await;
    let Some(o) = present(
        "pytds_query_error",
        clients::pytds(&Connect::new(server.port(), USER, PASSWORD)).await,
    ) else {
        return;
    };
    assert_refused(&o, 208);
    assert_eq!(server.stats().logins_succeeded, 1);
}

// ------------------------------------------------------------------ FreeTDS tsql

#[tokio::test]
async fn tsql_reads_select_1_without_encryption() {
    let server = TdsServer::start(config()).await;
    let Some(o) = present(
        "tsql_plain",
        clients::tsql_login(&Connect::new(server.port(), USER, PASSWORD)).await,
    ) else {
        return;
    };
    assert_select_1(&o);
    let s = server.stats();
    assert_eq!(s.last_login_transport, Some(LoginTransport::Plain));
    assert_eq!(s.last_client_encryption, Some(enc::NOT_SUP));
}

#[tokio::test]
async fn tsql_reads_select_1_over_tls_in_prelogin_packets() {
    let tls = tls();
    for setting in [Encryption::Required, Encryption::On, Encryption::Off] {
        let server = server(setting, &tls).await;
        let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
        let Some(o) = present("tsql_tls", clients::tsql_login(&c).await) else {
            return;
        };
        assert_select_1(&o);
        assert_eq!(
            server.stats().last_login_transport,
            Some(LoginTransport::Tls),
            "{setting:?}"
        );
    }
}

#[tokio::test]
async fn tsql_encrypts_only_the_login_when_both_sides_say_off() {
    let tls = tls();
    let server = server(Encryption::Off, &tls).await;
    let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::LoginOnly, &tls.pem.ca);
    let Some(o) = present("tsql_login_only", clients::tsql_login(&c).await) else {
        return;
    };
    assert_select_1(&o);
    let s = server.stats();
    assert_eq!(s.last_client_encryption, Some(enc::OFF));
    assert_eq!(s.last_login_transport, Some(LoginTransport::LoginOnlyTls));
}

#[tokio::test]
async fn tsql_sees_18456_for_a_wrong_password() {
    let tls = tls();
    let server = server(Encryption::Required, &tls).await;
    let c = Connect::new(server.port(), USER, "wrong").tls(ClientTls::Required, &tls.pem.ca);
    let Some(o) = present("tsql_18456", clients::tsql_login(&c).await) else {
        return;
    };
    assert_refused(&o, 18456);

    // python-tds retries any other login error until its login timeout and then
    // reports a TimeoutError, so Azure's gateway errors are checked with FreeTDS.
    let firewall = TdsServer::start(TdsConfig {
        login_error: Some((40615, 1, "Cannot open server 'x' requested by the login. Client with IP address '10.1.2.3' is not allowed to access the server.".into())),
        ..config()
    })
    .await;
    let o = clients::tsql_login(&Connect::new(firewall.port(), USER, PASSWORD))
        .await
        .unwrap();
    assert_refused(&o, 40615);
}

#[tokio::test]
async fn tsql_refuses_a_certificate_it_cannot_trust() {
    let tls = tls();
    let rogue = certs::self_signed(&LeafSpec::new(["sql.routeproof.test", "127.0.0.1"]));
    let server = TdsServer::start(config().encrypted(Encryption::Required, rogue)).await;
    let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
    let Some(o) = present("tsql_untrusted", clients::tsql_login(&c).await) else {
        return;
    };
    assert!(!o.ok, "{}", o.output);
    assert_eq!(
        server.stats().logins_attempted,
        0,
        "no LOGIN7 may follow a failed handshake"
    );
}

/// Plain TDS: FreeTDS 1.3 reuses the gateway's TLS session on the rerouted socket
/// (fixed in FreeTDS 1.5, see the pymssql test), so routing over TLS cannot pass.
#[tokio::test]
async fn tsql_follows_a_routing_envchange() {
    let target = TdsServer::start(config()).await;
    let gateway = TdsServer::start(TdsConfig {
        route_to: Some(("127.0.0.1".into(), target.port())),
        ..config()
    })
    .await;
    let c = Connect::new(gateway.port(), USER, PASSWORD);
    let Some(o) = present("tsql_routing", clients::tsql_login(&c).await) else {
        return;
    };
    assert_select_1(&o);
    assert_eq!(gateway.stats().routed, 1);
    assert_eq!(target.stats().logins_succeeded, 1);
}

// ------------------------------------------------------------------ faults

const FAULTS: [Fault; 7] = [
    Fault::StallDuringPrelogin,
    Fault::CloseDuringPrelogin,
    Fault::GarbageReply,
    Fault::CloseDuringTlsHandshake,
    Fault::StallDuringLogin,
    Fault::CloseAfterLogin,
    Fault::StallDuringQuery,
];

/// Each fault makes the client fail (by its own timeout for the stalls), never
/// hang; the server's counters show where the conversation stopped.
async fn faults_fail_the_client(test: &str, run: fn(Connect) -> clients::Pending) {
    let tls = tls();
    let mut runs = tokio::task::JoinSet::new();
    for fault in FAULTS {
        let cfg = TdsConfig {
            fault: Some(fault),
            ..config().encrypted(Encryption::Required, tls.leaf.clone())
        };
        let server = TdsServer::start(cfg).await;
        let mut c =
            Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
        c.timeout_secs = 2;
        runs.spawn(async move { (fault, run(c).await, server.stats()) });
    }
    while let Some(done) = runs.join_next().await {
        let (fault, outcome, stats) = done.unwrap();
        let Some(o) = present(test, outcome) else {
            return;
        };
        assert!(!o.hung, "{fault:?}: client hung\n{}", o.output);
        assert!(!o.ok, "{fault:?}: client succeeded\n{}", o.output);
        let reached_login = stats.logins_attempted == 1;
        let logged_in = stats.logins_succeeded == 1;
        match fault {
            Fault::StallDuringLogin => assert!(reached_login && !logged_in, "{fault:?} {stats:?}"),
            Fault::CloseAfterLogin | Fault::StallDuringQuery => {
                assert!(logged_in, "{fault:?} {stats:?}")
            }
            _ => assert!(!reached_login, "{fault:?} {stats:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytds_fails_cleanly_on_every_fault() {
    faults_fail_the_client("pytds_faults", |c| {
        Box::pin(async move { clients::pytds(&c).await })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsql_fails_cleanly_on_every_fault() {
    faults_fail_the_client("tsql_faults", |c| {
        Box::pin(async move { clients::tsql_login(&c).await })
    })
    .await;
}

// ------------------------------------------------------------------ pymssql, tedious

#[tokio::test]
async fn pymssql_reads_select_1_over_tls_and_tds_8_strict() {
    let tls = tls();
    let server = server(Encryption::Required, &tls).await;
    let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
    let Some(o) = present("pymssql_tls", clients::pymssql(&c).await) else {
        return;
    };
    assert_select_1(&o);
    let wrong = Connect {
        password: "wrong".into(),
        ..c.clone()
    };
    assert_refused(&clients::pymssql(&wrong).await.unwrap(), 18456);

    let strict = TdsServer::start(TdsConfig {
        strict: true,
        ..config().encrypted(Encryption::Off, tls.leaf.clone())
    })
    .await;
    let c = Connect::new(strict.port(), USER, PASSWORD).tls(ClientTls::Strict, &tls.pem.ca);
    assert_select_1(&clients::pymssql(&c).await.unwrap());
    let s = strict.stats();
    assert_eq!(s.last_login_transport, Some(LoginTransport::Strict));
    let seen = s.last_tls.unwrap();
    assert_eq!(
        (seen.version.as_str(), seen.alpn.as_deref()),
        ("TLSv1_3", Some("tds/8.0"))
    );
}

#[tokio::test]
async fn pymssql_follows_a_routing_envchange_over_tls() {
    let tls = tls();
    let target = server(Encryption::Required, &tls).await;
    let gateway = TdsServer::start(TdsConfig {
        route_to: Some(("127.0.0.1".into(), target.port())),
        ..config().encrypted(Encryption::Required, tls.leaf.clone())
    })
    .await;
    let c = Connect::new(gateway.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
    let Some(o) = present("pymssql_routing", clients::pymssql(&c).await) else {
        return;
    };
    assert_select_1(&o);
    assert_eq!(gateway.stats().routed, 1);
    assert_eq!(
        target.stats().last_login_transport,
        Some(LoginTransport::Tls)
    );
}

#[tokio::test]
async fn tedious_reads_select_1_in_every_mode_it_has() {
    let tls = tls();
    let plain = TdsServer::start(config()).await;
    let Some(o) = present(
        "tedious",
        clients::tedious_login(&Connect::new(plain.port(), USER, PASSWORD)).await,
    ) else {
        return;
    };
    assert_select_1(&o);
    // tedious sends SQL as sp_executesql, so this also covers RPC requests.
    assert_eq!(plain.stats().last_sql.as_deref(), Some("SELECT 1"));

    let tls_server = server(Encryption::Required, &tls).await;
    let c = Connect::new(tls_server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
    assert_select_1(&clients::tedious_login(&c).await.unwrap());
    assert_eq!(
        tls_server.stats().last_login_transport,
        Some(LoginTransport::Tls)
    );

    let strict = TdsServer::start(TdsConfig {
        strict: true,
        ..config().encrypted(Encryption::Off, tls.leaf.clone())
    })
    .await;
    let c = Connect::new(strict.port(), USER, PASSWORD).tls(ClientTls::Strict, &tls.pem.ca);
    assert_select_1(&clients::tedious_login(&c).await.unwrap());
    assert_eq!(
        strict.stats().last_tls.unwrap().sni.as_deref(),
        Some("sql.routeproof.test")
    );

    let wrong = clients::tedious_login(&Connect::new(plain.port(), USER, "wrong"))
        .await
        .unwrap();
    assert!(
        !wrong.ok && wrong.message.contains("Login failed"),
        "{}",
        wrong.output
    );
}

#[tokio::test]
async fn tedious_logs_in_with_a_fedauth_access_token() {
    let tls = tls();
    let server = TdsServer::start(TdsConfig {
        fedauth_token: Some(TOKEN.into()),
        ..config().encrypted(Encryption::Required, tls.leaf.clone())
    })
    .await;
    let mut c = Connect::new(server.port(), "", "").tls(ClientTls::Required, &tls.pem.ca);
    c.token = Some(TOKEN.into());
    let Some(o) = present("tedious_fedauth", clients::tedious_login(&c).await) else {
        return;
    };
    assert_select_1(&o);
    assert_eq!(server.stats().fedauth_logins, 1);
}
