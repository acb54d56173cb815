//! Identity-based storage end to end: the settings a Function App has for
//! `AzureWebJobsStorage` with a managed identity (`__blobServiceUri`, `__queueServiceUri`,
//! `__tableServiceUri`, `__credential = managedidentity`) go through `discover::apply` and
//! the engine against a real Azurite with `--oauth basic` over HTTPS; the emulated App
//! Service identity endpoint (`support/identity.rs`) hands out a token of the shape
//! Azurite's basic OAuth accepts (it checks audience, issuer and lifetime, not the
//! signature: Azurite README, "OAuth authentication"). Each service's authorised read
//! passes with the token, and the token appears nowhere: not in the report (JSON, text),
//! the discovery notes, the config, nor any log line or span down to TRACE.

use std::sync::Arc;

use routeproof::config;
use routeproof::discover;
use routeproof::probe::Engine;
use tracing_subscriber::prelude::*;

use crate::engine_support::class;
use crate::identity::{OauthStorage, oauth_storage};
use crate::{assert_clean, env_from, service_layer};

const HEADER: &str = "idh-PLANTED-discovered";

#[tokio::test]
async fn identity_based_storage_discovered_reads_azurite_with_the_token() {
    let Some(OauthStorage {
        az,
        ca: f,
        token,
        idp,
    }) = oauth_storage(
        "discovered identity-based storage",
        HEADER,
        "00000000-0000-0000-0000-0000000000dd",
    )
    .await
    else {
        return;
    };
    let uri = |port: u16| format!("https://127.0.0.1:{port}/devstoreaccount1");
    let mut settings: Vec<(String, String)> = vec![
        ("WEBSITE_SITE_NAME".into(), "orders-func".into()),
        ("WEBSITE_PRIVATE_IP".into(), "10.0.1.5".into()),
        ("AzureWebJobsStorage__blobServiceUri".into(), uri(az.blob)),
        ("AzureWebJobsStorage__queueServiceUri".into(), uri(az.queue)),
        ("AzureWebJobsStorage__tableServiceUri".into(), uri(az.table)),
        (
            "AzureWebJobsStorage__credential".into(),
            "managedidentity".into(),
        ),
    ];
    settings.extend(idp.env().map(|(k, v)| (k.to_string(), v)));
    let env = env_from(&settings);
    let text = format!(
        "[engine]\ndns_servers = [\"127.0.0.1:9\"]\nazure_dns = \"127.0.0.1:9\"\ntcp_settle = \"0s\"\nca_file = \"{}\"\n",
        f.path().display()
    );
    let mut cfg = config::parse(&text, &env).unwrap();
    let summary = discover::apply(&mut cfg, &settings);
    assert!(summary.enabled, "{}", summary.why);
    assert_eq!(summary.added, 3, "{:#?}", cfg.targets);

    // Everything logged, at TRACE, into a file (`&File` writes, so `Arc<File>` is a
    // MakeWriter as it is). The process-wide subscriber, the only one in this binary: a
    // thread-scoped one (`set_default`) missed this run's events when the other tests ran
    // beside it (callsite interest cached without it). The other tests' lines land here
    // too, which only makes the leak check below stricter.
    let log_file = tempfile::NamedTempFile::new().unwrap();
    let logs = Arc::new(log_file.reopen().unwrap());
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(logs.clone())
                .with_ansi(false)
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL),
        )
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only process-wide subscriber in this binary");
    let engine = Engine::with_app_settings(
        cfg.engine.clone(),
        "config",
        &env,
        Arc::new(env_from(&settings)),
    )
    .unwrap();
    let report = engine.run(&cfg.targets, None).await;

    for svc in ["blob", "queue", "table"] {
        let name = format!("AzureWebJobsStorage/{svc}");
        let t = report
            .targets
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no {name}: {report:#?}"));
        assert_eq!(class(t), None, "{t:#?}");
        let v = service_layer(t);
        assert_eq!(v["service"], svc, "{v}");
        // Azurite's anonymous answer is its quirk (noted); the token's read is authorised.
        assert!(v["answer"]["emulator_note"].is_string(), "{v}");
        assert_eq!(v["verdict"], "authorized_read_ok", "{v}");
        assert_eq!(v["authorized"]["status"], 200, "{v}");
        assert_eq!(
            v["identity"]["resource"], "https://storage.azure.com",
            "{v}"
        );
        eprintln!(
            "timing: discovered identity-based {svc} (anonymous + token + read) {} ms",
            v["duration_ms"]
        );
    }
    // One token for the three services (cached per resource for the run).
    let seen = idp.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].header_ok);

    let logs = std::fs::read_to_string(log_file.path()).unwrap();
    assert!(!logs.is_empty(), "the log capture saw the run");
    let json = serde_json::to_string(&report).unwrap();
    let table = routeproof::render::text::render(&report);
    let shown = format!("{json}\n{table}\n{:?}\n{cfg:?}\n{logs}", summary.notes);
    let parts: Vec<&str> = token.split('.').collect();
    assert_clean(
        "discovered identity-based storage",
        &shown,
        &[&token, parts[1], parts[2], HEADER],
    );
}
