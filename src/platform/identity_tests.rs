use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

fn ep() -> Endpoint {
    Endpoint {
        url: url::Url::parse("http://127.0.0.1:9/msi/token").unwrap(),
        header: Secret::new("hdr-PLANTED"),
    }
}

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

#[test]
fn a_200_answer_is_a_token_with_its_expiry() {
    // The answer as App Service documents it: expires_on a string of unix seconds.
    let body = br#"{"access_token":"eyJ.tok.sig","expires_on":"1586984735","resource":"https://vault.azure.net","token_type":"Bearer","client_id":"5E29"}"#;
    let t = parse_answer(200, body, None, at(1_586_980_000), &ep()).unwrap();
    assert_eq!(t.secret().expose(), "eyJ.tok.sig");
    assert_eq!(t.expires_at(), Some(at(1_586_984_735)));
    assert!(!format!("{t:?}").contains("eyJ"), "{t:?}");
    // A number is read too; no expires_on at all is an unknown expiry.
    let t = parse_answer(
        200,
        br#"{"access_token":"a.b.c","expires_on":2000000000}"#,
        None,
        at(0),
        &ep(),
    )
    .unwrap();
    assert_eq!(t.expires_at(), Some(at(2_000_000_000)));
    let t = parse_answer(200, br#"{"access_token":"a.b.c"}"#, None, at(0), &ep()).unwrap();
    assert_eq!(t.expires_at(), None);
}

#[test]
fn bad_answers_are_classified() {
    let now = at(1_700_000_000);
    let cases: &[(u16, &[u8], FailureClass)] = &[
        (200, b"<html>hello</html>", FailureClass::IdentityMalformed),
        (200, br#"{"token_type":"Bearer"}"#, FailureClass::IdentityMalformed),
        (200, br#"{"access_token":""}"#, FailureClass::IdentityMalformed),
        (200, br#"{"access_token":"a b"}"#, FailureClass::IdentityMalformed),
        (200, br#"{"access_token":"a.b.c","expires_on":"09/14/2017 00:00:00 PM +00:00"}"#, FailureClass::IdentityMalformed),
        (200, br#"{"access_token":"a.b.c","expires_on":"1600000000"}"#, FailureClass::IdentityMalformed),
        (400, br#"{"statusCode":400,"message":"Unable to load the proper Managed Identity.","correlationId":"c1"}"#, FailureClass::IdentityRefused),
        (500, b"upstream failure", FailureClass::IdentityRefused),
    ];
    for (status, body, class) in cases {
        let e = parse_answer(*status, body, Some("cid-1"), now, &ep()).unwrap_err();
        assert_eq!(
            e.class(),
            *class,
            "{status} {:?}: {e}",
            String::from_utf8_lossy(body)
        );
    }
    let e = parse_answer(400, cases[6].1, Some("cid-1"), now, &ep()).unwrap_err();
    assert_eq!(
        e,
        IdentityError::Refused {
            status: 400,
            message: "Unable to load the proper Managed Identity.".into(),
            client_id: Some("cid-1".into())
        }
    );
    // An echoed IDENTITY_HEADER never reaches the message.
    let e = parse_answer(401, b"bad header hdr-PLANTED", None, now, &ep()).unwrap_err();
    assert!(!e.to_string().contains("PLANTED"), "{e}");
    let e = parse_answer(
        200,
        br#"{"access_token":"a.b.c","expires_on":"1600000000"}"#,
        None,
        now,
        &ep(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
}

#[test]
fn setup_from_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert!(matches!(
        Setup::from_env(&env(&[])),
        Setup::Missing("IDENTITY_ENDPOINT")
    ));
    assert!(matches!(
        Setup::from_env(&env(&[(
            "IDENTITY_ENDPOINT",
            "http://localhost:8081/msi/token"
        )])),
        Setup::Missing("IDENTITY_HEADER")
    ));
    assert!(matches!(
        Setup::from_env(&env(&[
            ("IDENTITY_ENDPOINT", "https://x/msi"),
            ("IDENTITY_HEADER", "h")
        ])),
        Setup::Invalid(_)
    ));
    assert!(
        Setup::from_env(&env(&[
            ("IDENTITY_ENDPOINT", "http://localhost:8081/msi/token"),
            ("IDENTITY_HEADER", "h")
        ]))
        .ready()
    );
}

#[test]
fn object_id_comes_from_the_oid_claim() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let tok = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"RS256"}"#),
        b64(r#"{"oid":"0000-aa","aud":"https://redis.azure.com"}"#)
    );
    let t = Token {
        secret: Secret::new(tok),
        expires_at: None,
    };
    assert_eq!(t.object_id().as_deref(), Some("0000-aa"));
    let t = Token {
        secret: Secret::new("not-a-jwt"),
        expires_at: None,
    };
    assert_eq!(t.object_id(), None);
}

/// A loopback endpoint answering `body` to every request, counting them.
async fn endpoint(body: &'static str) -> (Arc<Setup>, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/msi/token", l.local_addr().unwrap());
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    let setup = Setup::Ready(Endpoint {
        url: url::Url::parse(&url).unwrap(),
        header: Secret::new("h"),
    });
    (Arc::new(setup), n)
}

fn budget(secs: u64) -> Budget {
    Budget::until(Instant::now() + Duration::from_secs(secs))
}

#[tokio::test]
async fn one_request_per_resource_and_identity_in_a_run() {
    let (setup, n) = endpoint(r#"{"access_token":"a.b.c","expires_on":"4000000000"}"#).await;
    let tokens = Tokens::new(setup);
    let b = budget(10);
    let t = Duration::from_secs(5);
    let (r, ev) = tokens.get(resource::REDIS, None, &b, t).await;
    assert!(r.is_ok() && ev.ok && !ev.cached, "{r:?} {ev:?}");
    assert_eq!(ev.identity, "system-assigned");
    assert!(ev.expires_in_s.unwrap() > 3600);
    let (_, ev) = tokens.get(resource::REDIS, None, &b, t).await;
    assert!(ev.cached, "{ev:?}");
    assert_eq!(n.load(Ordering::SeqCst), 1);
    let (_, ev) = tokens.get(resource::REDIS, Some("cid"), &b, t).await;
    assert!(!ev.cached && ev.identity.contains("cid"), "{ev:?}");
    let (_, ev) = tokens.get(resource::OSSRDBMS, None, &b, t).await;
    assert!(!ev.cached);
    assert_eq!(n.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_token_that_ends_before_the_run_is_fetched_again() {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let body: &'static str =
        Box::leak(format!(r#"{{"access_token":"a.b.c","expires_on":"{exp}"}}"#).into_boxed_str());
    let (setup, n) = endpoint(body).await;
    let tokens = Tokens::new(setup);
    let t = Duration::from_secs(5);
    let (r, _) = tokens.get(resource::SQL, None, &budget(10), t).await;
    assert!(r.is_ok());
    // A run that lasts past the token's expiry does not reuse it.
    let (_, ev) = tokens.get(resource::SQL, None, &budget(120), t).await;
    assert!(!ev.cached, "{ev:?}");
    assert_eq!(n.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn endpoint_down_is_unavailable_once_per_run() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let setup = Setup::Ready(Endpoint {
        url: url::Url::parse(&format!("http://127.0.0.1:{port}/msi/token")).unwrap(),
        header: Secret::new("h"),
    });
    let tokens = Tokens::new(Arc::new(setup));
    let (r, ev) = tokens
        .get(resource::SQL, None, &budget(10), Duration::from_secs(2))
        .await;
    let e = r.unwrap_err();
    assert_eq!(e.class(), FailureClass::IdentityUnavailable, "{e}");
    assert!(!ev.ok);
    let (r, ev) = tokens
        .get(resource::SQL, None, &budget(10), Duration::from_secs(2))
        .await;
    assert!(ev.cached && r.is_err());
    // Not configured at all.
    let tokens = Tokens::new(Arc::new(Setup::Missing("IDENTITY_ENDPOINT")));
    let (r, _) = tokens
        .get(resource::SQL, None, &budget(10), Duration::from_secs(2))
        .await;
    assert_eq!(r.unwrap_err().class(), FailureClass::IdentityNotConfigured);
}

#[tokio::test]
async fn a_silent_endpoint_is_cut_by_its_timeout_or_the_deadline() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/msi/token", l.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let mut keep = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            keep.push(s);
        }
    });
    let setup = Arc::new(Setup::Ready(Endpoint {
        url: url::Url::parse(&url).unwrap(),
        header: Secret::new("h"),
    }));
    let tokens = Tokens::new(setup.clone());
    let (r, _) = tokens
        .get(resource::SQL, None, &budget(10), Duration::from_millis(200))
        .await;
    assert_eq!(r.unwrap_err().class(), FailureClass::IdentityUnavailable);
    let tokens = Tokens::new(setup);
    let b = Budget::until(Instant::now() + Duration::from_millis(200));
    let (r, _) = tokens
        .get(resource::SQL, None, &b, Duration::from_secs(5))
        .await;
    assert_eq!(r.unwrap_err(), IdentityError::Deadline);
}
