//! Discovery through the engine for the data services: `POSTGRESQLCONNSTR_*` (Npgsql
//! form), `MYSQLCONNSTR_*` (Connector/NET form) and a StackExchange.Redis string in a
//! `REDISCACHECONNSTR_*` setting, each pointing at the real server the protocol modules
//! start on loopback (`localhost`, answered by a loopback DNS server). The discovered
//! checks are the protocols' own, credential-free (the app's password stays in its
//! setting), with the TLS mode the string asks for; the planted passwords appear nowhere
//! in the report (JSON or text).

use routeproof::config;
use routeproof::discover;
use routeproof::report::{Evidence, FailureClass, Layer, TargetReport};

use crate::peers::{self, Certs, PLANTED_PASSWORD};
use crate::support::dns::{DnsServer, Zone};
use crate::support::engine::{class, engine_of, no_env};

fn target<'a>(r: &'a routeproof::report::Report, name: &str) -> &'a TargetReport {
    r.targets
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}: {r:#?}"))
}

fn witness(t: &TargetReport) -> Option<std::net::IpAddr> {
    t.layers.iter().find_map(|l| match &l.evidence {
        Evidence::Protocol(p) => p.witness,
        _ => None,
    })
}

#[tokio::test]
async fn database_connection_strings_become_protocol_checks_through_the_engine() {
    let certs = Certs::new();
    let pg = match crate::postgres::start(&certs, true) {
        Ok(p) => p,
        Err(why) => return peers::skip("discovered postgres", &why),
    };
    let my = match crate::mysql::start(&certs, true) {
        Ok(p) => p,
        Err(why) => return peers::skip("discovered mysql", &why),
    };
    let rd = match crate::redis::start(&certs) {
        Ok(r) => r,
        Err(why) => return peers::skip("discovered redis", &why),
    };
    let dir = tempfile::tempdir().unwrap();
    certs.write(dir.path());
    let dns = DnsServer::start(Zone::new().a("localhost", "127.0.0.1", 0)).await;
    let settings: Vec<(String, String)> = [
        (
            "POSTGRESQLCONNSTR_orders",
            format!(
                "Host=localhost;Port={};Database=postgres;Username=app;Password={PLANTED_PASSWORD};SSL Mode=Require",
                pg.proc.port
            ),
        ),
        (
            "MYSQLCONNSTR_shop",
            format!(
                "Server=localhost;Port={};Database=mysql;Uid=app;Pwd={PLANTED_PASSWORD};SslMode=Required",
                my.port
            ),
        ),
        (
            "REDISCACHECONNSTR_cache",
            format!(
                "localhost:{},password={PLANTED_PASSWORD},ssl=True,abortConnect=False",
                rd.tls.port
            ),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let text = format!(
        "[engine]\ndiscover = true\ndns_servers = [\"{}\"]\nazure_dns = \"127.0.0.1:9\"\ntcp_settle = \"0s\"\nca_file = \"{}\"\n",
        dns.addr,
        dir.path().join("ca.crt").display()
    );
    let mut cfg = config::parse(&text, &no_env).unwrap();
    let summary = discover::apply(&mut cfg, &settings);
    assert_eq!(summary.added, 3, "{summary:?}");
    let engine = engine_of(&cfg, &no_env);
    let report = peers::bounded(60, engine.run(&cfg.targets, None)).await;

    // PostgreSQL: SSLRequest, TLS (encrypted as `SSL Mode=Require` asks), the startup for
    // the probe user, and the server's refusal naming our address.
    let t = target(&report, "POSTGRESQLCONNSTR_orders");
    assert_eq!(
        t.target,
        format!("postgres://localhost:{}/postgres", pg.proc.port)
    );
    assert_eq!(class(t), Some(FailureClass::PostgresNoHbaEntry), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Postgres));
    assert_eq!(witness(t), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(t.source.as_deref(), Some("POSTGRESQLCONNSTR_orders"));
    // MySQL: greeting, TLS, the credential-free attempt answered 1045 with our address.
    let t = target(&report, "MYSQLCONNSTR_shop");
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Mysql));
    assert_eq!(witness(t), Some("127.0.0.1".parse().unwrap()));
    // Redis: TLS (ssl=True), then PING answered -NOAUTH: Redis itself.
    let t = target(&report, "REDISCACHECONNSTR_cache");
    assert_eq!(t.target, format!("rediss://localhost:{}", rd.tls.port));
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Redis));

    let json = serde_json::to_string(&report).unwrap();
    let table = routeproof::render::text::render(&report);
    peers::assert_no_secret("the JSON report", &json);
    peers::assert_no_secret("the text report", &table);
    peers::assert_no_secret("the config", &format!("{cfg:?} {summary:?}"));
}

/// A Service Bus emulator connection string (`UseDevelopmentEmulator=true`) pointing at
/// RabbitMQ's AMQP 1.0 listener: discovered as `amqp://localhost:PORT`, probed without the
/// key (the SASL header echo and the mechanism list prove the broker answered).
#[tokio::test]
async fn a_service_bus_emulator_string_becomes_the_amqp_check() {
    let Some(r) = crate::msg_peers::rabbit("discovered amqp") else {
        return;
    };
    let dns = DnsServer::start(Zone::new().a("localhost", "127.0.0.1", 0)).await;
    let settings = vec![(
        "ServiceBusConnection".to_string(),
        format!(
            "Endpoint=sb://localhost:{};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={PLANTED_PASSWORD};UseDevelopmentEmulator=true;",
            r.plain
        ),
    )];
    let text = format!(
        "[engine]\ndiscover = true\ndns_servers = [\"{}\"]\nazure_dns = \"127.0.0.1:9\"\ntcp_settle = \"0s\"\n",
        dns.addr
    );
    let mut cfg = config::parse(&text, &no_env).unwrap();
    let summary = discover::apply(&mut cfg, &settings);
    assert_eq!(summary.added, 1, "{summary:?}");
    let engine = engine_of(&cfg, &no_env);
    let report = peers::bounded(30, engine.run(&cfg.targets, None)).await;
    let t = target(&report, "ServiceBusConnection/amqp");
    assert_eq!(t.target, format!("amqp://localhost:{}", r.plain));
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Amqp));
    let json = serde_json::to_string(&report).unwrap();
    peers::assert_no_secret("the JSON report", &json);
    peers::assert_no_secret(
        "the text report",
        &routeproof::render::text::render(&report),
    );
}
