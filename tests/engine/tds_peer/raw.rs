//! Raw bytes the clients cannot show directly: the PRELOGIN answer's packet type, the
//! encryption table, FEDAUTHREQUIRED, garbage, TDS 8 strict mode, a raw login batch
//! with attention, password obfuscation and FreeTDS's statement-by-statement batch.

use super::*;

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
