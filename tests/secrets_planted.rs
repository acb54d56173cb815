//! Secrets cannot print, and this proves it: a distinctive secret is planted in every
//! place one can come from (connection-string passwords, `AccountKey`, SAS signatures,
//! URL user-info, `sig=`/`code=`/`sv=` values, header values from app settings,
//! `IDENTITY_HEADER`, a managed-identity token a server echoes back, the App Insights key,
//! a server's redirect), a whole run goes
//! through the engine and the handler, and none of them may appear in a report (JSON,
//! text, HTML), a log line or span (everything down to TRACE, `log` records included),
//! an error message, a discovery note or a `{:?}` of the config.
//!
//! One test per binary: it installs the process-wide log subscriber.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;

use routeproof::config;
use routeproof::discover;
use routeproof::handler::{Settings, State};
use support::certs::{self, Ca, LeafSpec, PemFiles};
use support::dns::{DnsServer, Zone};
use support::host::{Caller, Host, TimerStatus};
use support::web;

/// Every planted secret, each unique so a failure names the one that leaked.
const SECRETS: &[&str] = &[
    "PLANT01pw",
    "PLANT02pwd",
    "PLANT03userinfo",
    "PLANT04sig",
    "PLANT05code",
    "PLANT06sv",
    "PLANT07header",
    "PLANT08location",
    "PLANT09accountkey+/x==",
    "PLANT10sas",
    "PLANT11pkgsig",
    "PLANT12ikey",
    "PLANT13sqlazure",
    "PLANT14sbkey",
    "PLANT15custom",
    "PLANT16customcode",
    "PLANT17identity",
    "PLANT18broken",
    "PLANT19path",
    "PLANT20literalcode",
    "PLANT21literaluser",
    "PLANT22literalsig",
    "PLANT23relative",
    "PLANT24adhoc",
    PLANTED_TOKEN,
    "PLANT25amqpconn",
    "PLANT26saskey",
    "PLANT27kafkapw",
    "PLANT28pg",
    "PLANT29my",
    "PLANT30redis",
    "PLANT31sharekey",
    "PLANT32acr",
    "PLANT33pgurl",
];

/// The managed-identity token the emulated identity endpoint hands out; the service layer
/// sends it as a Bearer, and the server quotes it back in its error message.
const PLANTED_TOKEN: &str = "PLANT34token-eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJzdG9yYWdlIn0.c2ln";

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Everything, at TRACE, as text with span events and as JSON with the span list (the
/// format `serve` writes), into one buffer; `log` records (rustls) are bridged in.
fn capture_logs() -> Buf {
    let buf = Buf::default();
    let text = tracing_subscriber::fmt::layer()
        .with_writer(buf.clone())
        .with_ansi(false)
        .with_span_events(FmtSpan::FULL);
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(buf.clone());
    tracing_subscriber::registry()
        .with(text)
        .with(json)
        .with(tracing_subscriber::filter::LevelFilter::TRACE)
        .try_init()
        .expect("the only subscriber in this binary");
    buf
}

/// A responder that redirects to `location` whatever it is asked.
async fn redirecting(location: &'static str) -> web::Server {
    web::raw(move |mut s| async move {
        let _ = s
            .write_all(
                format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
                    .as_bytes(),
            )
            .await;
    })
    .await
}

#[tokio::test]
async fn planted_secrets_appear_in_no_report_log_or_error() {
    let logs = capture_logs();
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof test CA");
    let leaf = ca.issue(&LeafSpec::new(["api.internal.contoso.com"]));
    let pem = PemFiles::write(&ca, &leaf);
    let api = web::https(leaf.server_config(&[], &[])).await;
    let absolute =
        redirecting("https://x.blob.core.windows.net/c/b?sv=2022-11-02&sig=PLANT08location").await;
    let relative = redirecting("/next?code=PLANT23relative").await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dns = DnsServer::start(Zone::new().a("api.internal.contoso.com", "127.0.0.1", 0)).await;
    let idp = support::identity::IdentityEndpoint::start(
        "PLANT17identity",
        &[("https://storage.azure.com", PLANTED_TOKEN)],
        &[],
    )
    .await;
    let azure = DnsServer::start(Zone::new()).await;

    let settings: Vec<(String, String)> = [
        ("WEBSITE_SITE_NAME", "orders-func".to_string()),
        ("WEBSITE_PRIVATE_IP", "10.0.1.5".to_string()),
        (
            "SqlConn",
            format!("Server=tcp:127.0.0.1,{closed};Initial Catalog=db;User ID=app;Password=PLANT01pw;Encrypt=True"),
        ),
        ("SqlPwd", format!("Data Source=127.0.0.1,{closed};Pwd='PLANT02pwd'")),
        (
            "ApiUrl",
            format!(
                "https://user:PLANT03userinfo@api.internal.contoso.com:{}/echo-headers?sig=PLANT04sig&code=PLANT05code&sv=PLANT06sv&keep=1",
                api.addr.port()
            ),
        ),
        ("ApiKey", "PLANT07header".to_string()),
        (
            "AzureWebJobsStorage",
            "DefaultEndpointsProtocol=https;AccountName=fnstore;AccountKey=PLANT09accountkey+/x==;EndpointSuffix=core.windows.net".to_string(),
        ),
        (
            "ReportsStorage",
            "BlobEndpoint=https://reports.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=PLANT10sas".to_string(),
        ),
        (
            "WEBSITE_RUN_FROM_PACKAGE",
            "https://pkg.blob.core.windows.net/p/app.zip?sv=2022-11-02&sig=PLANT11pkgsig".to_string(),
        ),
        (
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "InstrumentationKey=PLANT12ikey;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/".to_string(),
        ),
        (
            "SQLAZURECONNSTR_orders",
            "Server=tcp:orders.database.windows.net,1433;User ID=app;Password=PLANT13sqlazure".to_string(),
        ),
        (
            "EventHubConn",
            "Endpoint=sb://events.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=PLANT14sbkey=".to_string(),
        ),
        (
            "CUSTOMCONNSTR_api",
            "https://u:PLANT15custom@api2.internal.contoso.com/?code=PLANT16customcode".to_string(),
        ),
        ("IDENTITY_ENDPOINT", idp.url.clone()),
        ("IDENTITY_HEADER", "PLANT17identity".to_string()),
        ("SQLCONNSTR_broken", "Server=tcp:h,abc;Password=PLANT18broken".to_string()),
        ("BadUrl", "tcp://h:1/PLANT19path".to_string()),
        // Discovered protocol and service checks: the password and keys stay in the setting.
        (
            "POSTGRESQLCONNSTR_pg",
            format!("Host=127.0.0.1;Port={closed};Database=db;Username=u;Password=PLANT28pg;SSL Mode=Require"),
        ),
        (
            "CUSTOMCONNSTR_pgurl",
            format!("postgres://u:PLANT33pgurl@127.0.0.1:{closed}/db?sslmode=require"),
        ),
        (
            "MYSQLCONNSTR_my",
            format!("Server=127.0.0.1;Port={closed};Database=db;Uid=u;Pwd=PLANT29my"),
        ),
        (
            "REDISCACHECONNSTR_cache",
            format!("127.0.0.1:{closed},password=PLANT30redis,ssl=False,abortConnect=False"),
        ),
        (
            "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
            "DefaultEndpointsProtocol=https;AccountName=fnshare;AccountKey=PLANT31sharekey+/x==".to_string(),
        ),
        ("WEBSITE_CONTENTSHARE", "orders-share".to_string()),
        ("DOCKER_REGISTRY_SERVER_URL", "https://ordersacr.azurecr.io".to_string()),
        ("DOCKER_REGISTRY_SERVER_PASSWORD", "PLANT32acr".to_string()),
        (
            "SbTarget",
            format!("Endpoint=sb://127.0.0.1:{closed}/;SharedAccessKeyName=send;SharedAccessKey=PLANT25amqpconn="),
        ),
        ("SasKey", "PLANT26saskey".to_string()),
        ("KafkaPw", "PLANT27kafkapw".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let map: HashMap<String, String> = settings.iter().cloned().collect();
    let env = move |k: &str| map.get(k).cloned();

    let text = format!(
        r#"
[engine]
dns_servers = ["{dns}"]
azure_dns = "{azure}"
ca_file = "{ca}"
tcp_settle = "0s"
[engine.timeouts]
dns = "2s"
tcp = "2s"
tls = "2s"
http = "2s"

[[targets]]
name = "sql"
target = "env:SqlConn"

[[targets]]
name = "sql-pwd"
target = "env:SqlPwd"

[[targets]]
name = "api"
target = "env:ApiUrl"
headers = {{ "x-api-key" = "env:ApiKey" }}
body_regex = "key=.+"

[[targets]]
name = "redirect-absolute"
target = "http://127.0.0.1:{absolute}/start?code=PLANT20literalcode"

[[targets]]
name = "redirect-relative"
target = "http://127.0.0.1:{relative}/"

[[targets]]
name = "blob-identity"
target = "https://api.internal.contoso.com:{api_port}/"
service = "blob"
emulator = true
authentication = "managed_identity"

[[targets]]
name = "literal"
target = "https://bob:PLANT21literaluser@127.0.0.1:{closed}/?sig=PLANT22literalsig"

[[targets]]
name = "amqp-connection-string"
target = "env:SbTarget"

[[targets]]
name = "amqp-sas"
target = "amqps://127.0.0.1:{closed}"
sas_key_name = "send"
sas_key = "env:SasKey"

[[targets]]
name = "kafka-password"
target = "kafka://127.0.0.1:{closed}"
user = "app"
password = "env:KafkaPw"
"#,
        dns = dns.addr,
        azure = azure.addr,
        ca = pem.ca.display(),
        absolute = absolute.addr.port(),
        relative = relative.addr.port(),
        api_port = api.addr.port(),
    );
    let mut cfg = config::parse(&text, &env).unwrap();
    let summary = discover::apply(&mut cfg, &settings);
    assert!(summary.added >= 8, "{summary:?}");

    // ---- the engine's report, three ways
    // A probe reads referenced keys from the same settings at run time.
    let map2: HashMap<String, String> = settings.iter().cloned().collect();
    let engine = routeproof::probe::Engine::with_app_settings(
        cfg.engine.clone(),
        "config",
        &env,
        Arc::new(move |k: &str| map2.get(k).cloned()),
    )
    .unwrap();
    let report = engine.run(&cfg.targets, None).await;
    let api_t = report.targets.iter().find(|t| t.name == "api").unwrap();
    assert!(api_t.ok, "the header and URL were really used: {api_t:#?}");
    // The token was fetched with the planted IDENTITY_HEADER, sent, and quoted back.
    let blob_t = report
        .targets
        .iter()
        .find(|t| t.name == "blob-identity")
        .unwrap();
    assert_eq!(
        blob_t.failure.as_ref().map(|f| f.class),
        Some(routeproof::report::FailureClass::ServiceRbac),
        "{blob_t:#?}"
    );
    assert!(idp.seen().iter().any(|s| s.header_ok), "{:?}", idp.seen());
    let json = serde_json::to_string_pretty(&report).unwrap();
    let table = routeproof::render::text::render(&report);
    let html = routeproof::handler::page::render(&report, &serde_json::Map::new());
    assert!(json.contains("<redacted>"), "nothing was redacted? {json}");
    assert!(json.contains("AzureWebJobsStorage"), "discovery ran");

    // ---- the handler: configured run in every format, the timer, an ad-hoc attempt
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = State::new(cfg.clone(), Settings::default(), &env).unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(routeproof::handler::run(listener, state, async move {
        let _ = stopped.await;
    }));
    let host = Host::new(addr);
    let mut replies = String::new();
    for path in [
        "/api/probe?code=KEY",
        "/api/probe?code=KEY&format=text",
        "/api/probe?code=KEY&format=html",
    ] {
        let r = host.forward(&Caller::get(path), "iid-1", None).await;
        assert_eq!(r.status, 503);
        replies.push_str(&r.text());
    }
    let adhoc = Caller::post(
        "/api/probe?code=KEY",
        "application/json",
        br#"{"targets":["https://u:PLANT24adhoc@10.1.2.3/?sig=PLANT24adhoc"]}"#,
    );
    let (raw, _) = host.payload_http("probe", &adhoc, "iid-2", None).await;
    replies.push_str(&raw.text());
    let (raw, _) = host
        .timer("scheduled", "timer", TimerStatus::Steady, "iid-3")
        .await;
    replies.push_str(&raw.text());
    let (raw, _) = host
        .payload_http("probe", &Caller::get("/api/probe?last"), "iid-4", None)
        .await;
    replies.push_str(&raw.text());

    // ---- error messages and notes
    let mut errors = Vec::new();
    for bad in ["env:SQLCONNSTR_broken", "env:BadUrl"] {
        let e = config::parse(&format!("[[targets]]\ntarget = \"{bad}\"\n"), &env).unwrap_err();
        errors.push(e.to_string());
        errors.push(routeproof::target::parse(bad, &env).unwrap_err().0);
    }
    assert!(errors[0].contains("not a number"), "{errors:?}");
    assert!(errors[2].contains("unexpected path"), "{errors:?}");
    errors.extend(summary.notes.iter().cloned());
    let errors = errors.join("\n");
    let debug = format!("{cfg:?}");

    let logs = logs.text();
    assert!(
        logs.contains("request answered") && logs.contains("invocation"),
        "the log capture saw the handler: {logs}"
    );
    let outputs = [
        ("report JSON", &json),
        ("report text", &table),
        ("report HTML", &html),
        (
            "handler replies (JSON, text, HTML, payload Logs, timer)",
            &replies,
        ),
        ("log lines and spans", &logs),
        ("error messages and notes", &errors),
        ("Debug of the config", &debug),
    ];
    let mut leaks = Vec::new();
    for (what, out) in outputs {
        for s in SECRETS {
            // Percent-encoded forms too: a URL may carry a secret encoded.
            let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
            if out.contains(s) || out.contains(&encoded) {
                leaks.push(format!("{s} in {what}"));
            }
        }
        assert!(
            !out.contains("PLANT"),
            "{what}: a planted fragment leaked:\n{out}"
        );
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}
