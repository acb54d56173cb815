//! The protocol layers wired into the engine: config text -> `Engine::run` -> report,
//! against the same real servers the protocol modules' own tests start (`postgres::start`).

use routeproof::report::{Evidence, FailureClass, Layer, TargetReport};

use crate::peers::{self, Certs, PLANTED_PASSWORD};
use crate::support::engine::{class, engine_toml, env_of, hint, layers, no_env, run};

fn head() -> String {
    // IP targets: no DNS query is sent; both servers point at loopback anyway.
    let dns = "127.0.0.1:9".parse().unwrap();
    engine_toml(&[dns], "azure_dns = \"127.0.0.1:9\"", &[])
}

fn witness(t: &TargetReport) -> Option<std::net::IpAddr> {
    t.layers.iter().find_map(|l| match &l.evidence {
        Evidence::Protocol(p) => p.witness,
        _ => None,
    })
}

#[tokio::test]
async fn engine_postgres_reaches_the_protocol_with_witness_and_hides_the_password() {
    let certs = Certs::new();
    let pg = match crate::postgres::start(&certs, true) {
        Ok(pg) => pg,
        Err(why) => return peers::skip("engine_postgres_reaches_the_protocol", &why),
    };
    let dir = tempfile::tempdir().unwrap();
    certs.write(dir.path());
    let ca = dir.path().join("ca.crt");
    let port = pg.proc.port;
    let target = |extra: &str| {
        format!(
            "[[targets]]\ntarget = \"postgres://127.0.0.1:{port}/postgres\"\nsni = \"localhost\"\nca_file = \"{}\"\n{extra}\n",
            ca.display()
        )
    };
    // Credential-free: the probe user has no pg_hba entry; the server names our address.
    let text = format!("{}{}", head(), target(""));
    let r = peers::bounded(30, run(&text, &no_env, None)).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::PostgresNoHbaEntry), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Postgres));
    assert_eq!(layers(t), vec![Layer::Tcp, Layer::Tls, Layer::Postgres]);
    assert_eq!(witness(t), Some("127.0.0.1".parse().unwrap()));
    assert!(
        hint(t).contains("127.0.0.1, a private address"),
        "{}",
        hint(t)
    );
    let tls = &t.layers[1];
    assert!(tls.ok, "{tls:#?}");
    let Evidence::Tls(tls_ev) = &tls.evidence else {
        panic!("no TLS evidence: {tls:#?}")
    };
    assert!(
        !tls_ev.chain.is_empty(),
        "the certificate evidence is the TLS layer's"
    );
    // TLS runs inside the PostgreSQL layer (after SSLRequest): it begins after it and
    // ends within it, though it is listed first.
    let pg_layer = &t.layers[2];
    assert!(
        tls.start_ms > pg_layer.start_ms
            && tls.start_ms + tls.duration_ms <= pg_layer.start_ms + pg_layer.duration_ms + 0.002,
        "TLS nested in the PostgreSQL layer: {:?}",
        t.layers
            .iter()
            .map(|l| (l.layer, l.start_ms, l.duration_ms))
            .collect::<Vec<_>>()
    );

    // A login with the right password: ok, SELECT 1 ran.
    let text = format!(
        "{}{}",
        head(),
        target("user = \"scramuser\"\npassword = \"env:PG_PW\"")
    );
    let r = run(&text, &env_of(&[("PG_PW", "scrampass")]), None).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Postgres));

    // A planted wrong password: auth_failed, and the password is nowhere in the report.
    let r = run(&text, &env_of(&[("PG_PW", PLANTED_PASSWORD)]), None).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::PostgresAuthFailed), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Postgres));
    assert!(hint(t).contains("password is wrong"), "{}", hint(t));
    peers::assert_no_secret("the JSON report", &serde_json::to_string(&r).unwrap());
    peers::assert_no_secret("the report's Debug", &format!("{r:?}"));
}

#[tokio::test]
async fn engine_postgres_on_an_http_listener_is_not_postgres() {
    let addr = peers::http_server().await;
    let text = format!(
        "{}[[targets]]\ntarget = \"postgres://127.0.0.1:{}\"\n",
        head(),
        addr.port()
    );
    let r = peers::bounded(30, run(&text, &no_env, None)).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::PostgresNotPostgres), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Tcp));
    assert!(
        hint(t).contains("did not answer PostgreSQL's SSLRequest"),
        "{}",
        hint(t)
    );
}

#[tokio::test]
async fn engine_mysql_reaches_the_protocol_with_witness_and_hides_the_password() {
    let certs = Certs::new();
    let db = match crate::mysql::start(&certs, true) {
        Ok(p) => p,
        Err(why) => return peers::skip("engine_mysql_reaches_the_protocol", &why),
    };
    let dir = tempfile::tempdir().unwrap();
    certs.write(dir.path());
    let target = |extra: &str| {
        format!(
            "{}[[targets]]\ntarget = \"mysql://127.0.0.1:{}\"\nsni = \"localhost\"\nca_file = \"{}\"\n{extra}\n",
            head(),
            db.port,
            dir.path().join("ca.crt").display()
        )
    };
    // Credential-free: greeting, TLS (the TLS layer's), 1045 naming our address: passed.
    let r = peers::bounded(30, run(&target(""), &no_env, None)).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Mysql));
    assert_eq!(layers(t), vec![Layer::Tcp, Layer::Tls, Layer::Mysql]);
    assert_eq!(witness(t), Some("127.0.0.1".parse().unwrap()));

    // A planted wrong password: mysql.auth_failed with the witness; no password in the report.
    let text = target("user = \"nativeuser\"\npassword = \"env:MY_PW\"");
    let r = run(&text, &env_of(&[("MY_PW", PLANTED_PASSWORD)]), None).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::MysqlAuthFailed), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Mysql));
    assert!(
        hint(t).contains("127.0.0.1, a private address"),
        "{}",
        hint(t)
    );
    peers::assert_no_secret("the JSON report", &serde_json::to_string(&r).unwrap());

    // The right password: logged in.
    let r = run(&text, &env_of(&[("MY_PW", "nativepass")]), None).await;
    assert!(r.targets[0].ok, "{:#?}", r.targets[0]);
}

#[tokio::test]
async fn engine_mysql_on_an_http_listener_is_not_mysql() {
    // An HTTP server waits for the client to speak; MySQL always speaks first.
    let addr = peers::http_server().await;
    let dns = "127.0.0.1:9".parse().unwrap();
    let timeouts = [("tls", "1s"), ("login", "1s"), ("query", "1s")];
    let head = engine_toml(&[dns], "azure_dns = \"127.0.0.1:9\"", &timeouts);
    let text = format!(
        "{head}[[targets]]\ntarget = \"mysql://127.0.0.1:{}\"\n",
        addr.port()
    );
    let r = peers::bounded(30, run(&text, &no_env, None)).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::MysqlNoGreeting), "{t:#?}");
    assert!(hint(t).contains("MySQL always speaks first"), "{}", hint(t));
}

#[tokio::test]
async fn engine_redis_reaches_the_protocol_and_hides_the_password() {
    let certs = Certs::new();
    let rd = match crate::redis::start(&certs) {
        Ok(r) => r,
        Err(why) => return peers::skip("engine_redis_reaches_the_protocol", &why),
    };
    let dir = tempfile::tempdir().unwrap();
    certs.write(dir.path());
    let target = |extra: &str| {
        format!(
            "{}[[targets]]\ntarget = \"rediss://127.0.0.1:{}\"\nsni = \"localhost\"\nca_file = \"{}\"\n{extra}\n",
            head(),
            rd.tls.port,
            dir.path().join("ca.crt").display()
        )
    };
    // Credential-free: TLS (the TLS layer's), PING answered (-NOAUTH proves Redis): passed.
    let r = peers::bounded(30, run(&target(""), &no_env, None)).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Redis));
    assert_eq!(layers(t), vec![Layer::Tcp, Layer::Tls, Layer::Redis]);

    // A planted wrong password for an ACL user: redis.auth_failed; not in the report.
    let text = target("user = \"alice\"\npassword = \"env:RD_PW\"");
    let r = run(&text, &env_of(&[("RD_PW", PLANTED_PASSWORD)]), None).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::RedisAuthFailed), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Redis));
    assert!(
        hint(t).contains("password or access key is wrong"),
        "{}",
        hint(t)
    );
    peers::assert_no_secret("the JSON report", &serde_json::to_string(&r).unwrap());

    let r = run(&text, &env_of(&[("RD_PW", "alicepass")]), None).await;
    assert!(r.targets[0].ok, "{:#?}", r.targets[0]);
}

#[tokio::test]
async fn engine_redis_on_an_http_listener_is_not_redis() {
    let addr = peers::http_server().await;
    let dns = "127.0.0.1:9".parse().unwrap();
    let timeouts = [("login", "2s"), ("query", "1s")];
    let head = engine_toml(&[dns], "azure_dns = \"127.0.0.1:9\"", &timeouts);
    let text = format!(
        "{head}[[targets]]\ntarget = \"redis://127.0.0.1:{}\"\n",
        addr.port()
    );
    let r = peers::bounded(30, run(&text, &no_env, None)).await;
    let t = &r.targets[0];
    assert_eq!(t.reached, Some(Layer::Tcp), "{t:#?}");
    assert!(
        matches!(
            class(t),
            Some(FailureClass::RedisNotRedis | FailureClass::RedisProtocol)
        ),
        "{t:#?}"
    );
    assert!(
        hint(t).contains("not as Redis") || hint(t).contains("not valid Redis protocol"),
        "{}",
        hint(t)
    );
}
