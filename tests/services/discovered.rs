//! Discovery through the engine: Azure-shaped app settings whose endpoints are loopback
//! peers (Azurite for blob/queue/table with explicit endpoints, smbd on 445 for the
//! content share's mount, the HTTPS contract stubs of `stubs.rs` for the file service and
//! the Key Vault reference) go through `discover::apply` and the `Engine`, and each
//! service check's verdict is asserted. The storage keys are read from the settings when
//! the probe runs (`account_key`): the Shared Key reads succeed with Azurite's
//! key and fail with a planted wrong one, and neither key appears in the report (JSON or
//! text). `engine.azure_dns` points at a loopback port, as everywhere in the tests.

use std::io::Write;
use std::sync::Arc;

use base64::Engine as _;
use routeproof::config;
use routeproof::discover;
use routeproof::probe::Engine;
use routeproof::report::{FailureClass, Layer, TargetReport};

use crate::certs::Ca;
use crate::dns_support::{DnsServer, Zone};
use crate::engine_support::{class, env_of, hint};
use crate::{assert_clean, env_from, peers, service_layer as service_json, stubs};

/// Azurite's documented development account key (Azurite README, "Default storage account").
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const PLANTED_KEY_RAW: &[u8] = b"PLANTED-WRONG-ACCOUNT-KEY-0123456789";
const FILE_HOST: &str = "fnstore.file.core.windows.net";
const VAULT: &str = "kv1.vault.azure.net";

fn target<'a>(r: &'a routeproof::report::Report, name: &str) -> &'a TargetReport {
    r.targets
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = r.targets.iter().map(|t| t.name.as_str()).collect();
            panic!("no target {name}: {names:?}")
        })
}

#[tokio::test]
async fn azure_shaped_settings_on_loopback_peers_through_discovery_and_the_engine() {
    crate::certs::install_crypto_provider();
    let az = match peers::azurite(None) {
        Ok(a) => a,
        Err(e) => return peers::skip("discovered azurite", &e),
    };
    // The content share's SMB port is fixed at 445: smbd there, on 127.0.0.1.
    let samba = match peers::samba_on(445) {
        Ok(s) => s,
        Err(e) => return peers::skip("discovered smbd on 445", &e),
    };
    assert_eq!(samba.port, 445);
    let ca = Ca::new("routeproof discovery test CA");
    let files = stubs::serve(
        &ca,
        &[FILE_HOST],
        stubs::storage_401(),
        stubs::file_list_shares(),
    )
    .await;
    let vault = stubs::serve(
        &ca,
        &[VAULT],
        stubs::keyvault_401("10.0.1.5"),
        stubs::keyvault_401("10.0.1.5"),
    )
    .await;
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(ca.pem().as_bytes()).unwrap();
    let zone = [FILE_HOST, VAULT, "localhost"]
        .iter()
        .fold(Zone::new(), |z, n| z.a(n, "127.0.0.1", 0));
    let dns = DnsServer::start(zone).await;

    let wrong_key = base64::engine::general_purpose::STANDARD.encode(PLANTED_KEY_RAW);
    let ep = |host: &str, port: u16| format!("http://{host}:{port}/devstoreaccount1");
    let settings: Vec<(String, String)> = [
        ("WEBSITE_SITE_NAME", "orders-func".to_string()),
        ("WEBSITE_PRIVATE_IP", "10.0.1.5".to_string()),
        (
            "AzureWebJobsStorage",
            format!(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint={};QueueEndpoint={};TableEndpoint={}",
                ep("127.0.0.1", az.blob),
                ep("127.0.0.1", az.queue),
                ep("127.0.0.1", az.table)
            ),
        ),
        (
            "ReportsStorage",
            format!(
                "AccountName=devstoreaccount1;AccountKey={wrong_key};BlobEndpoint={};QueueEndpoint={}",
                ep("localhost", az.blob),
                ep("localhost", az.queue)
            ),
        ),
        (
            "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
            format!(
                "DefaultEndpointsProtocol=https;AccountName=fnstore;AccountKey={wrong_key};FileEndpoint=https://{FILE_HOST}:{}/",
                files.addr.port()
            ),
        ),
        ("WEBSITE_CONTENTSHARE", "orders-func-share".to_string()),
        ("WEBSITE_CONTENTOVERVNET", "1".to_string()),
        (
            "DbPassword",
            format!(
                "@Microsoft.KeyVault(SecretUri=https://{VAULT}:{}/secrets/db/)",
                vault.addr.port()
            ),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let env = env_from(&settings);
    // The same table as what a probe reads at run time (production: the process env).
    let app_settings = Arc::new(env_from(&settings));

    let text = format!(
        "[engine]\ndns_servers = [\"{}\"]\nazure_dns = \"127.0.0.1:9\"\ntcp_settle = \"0s\"\nca_file = \"{}\"\n",
        dns.addr,
        ca_file.path().display()
    );
    let mut cfg = config::parse(&text, &env).unwrap();
    let summary = discover::apply(&mut cfg, &settings);
    assert!(summary.enabled, "{}", summary.why);
    assert_eq!(summary.added, 8, "{:#?}", cfg.targets);
    let engine =
        Engine::with_app_settings(cfg.engine.clone(), "config", &env, app_settings).unwrap();
    let report = engine.run(&cfg.targets, None).await;

    // Storage with the app's key: reached the service, the Shared Key read succeeded.
    for svc in ["blob", "queue", "table"] {
        let t = target(&report, &format!("AzureWebJobsStorage/{svc}"));
        assert_eq!(class(t), None, "{t:#?}");
        assert_eq!(t.source.as_deref(), Some("AzureWebJobsStorage"));
        let v = service_json(t);
        assert_eq!(v["service"], svc, "{v}");
        assert_eq!(v["verdict"], "authorized_read_ok", "{v}");
        assert!(
            v["authorized"]["request_id"].is_string(),
            "the read's answer: {v}"
        );
        assert_eq!(
            v["answer"]["status"], 403,
            "Azurite's anonymous answer: {v}"
        );
        assert!(
            v["answer"]["emulator_note"].as_str().is_some(),
            "the emulator quirk is said: {v}"
        );
    }
    // A wrong key: the route works, the key is refused (service.auth_failed).
    for svc in ["blob", "queue"] {
        let t = target(&report, &format!("ReportsStorage/{svc}"));
        assert_eq!(class(t), Some(FailureClass::ServiceAuthFailed), "{t:#?}");
        let h = hint(t);
        assert!(
            h.contains("allowSharedKeyAccess") && h.contains("key must be the current one"),
            "{h}"
        );
        assert_eq!(service_json(t)["verdict"], "credential_rejected");
    }
    // The content share: the file service answered (401 anonymous, then the Shared Key
    // read signed for the connection string's account), and smbd answered NEGOTIATE on 445.
    let share_source =
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING, WEBSITE_CONTENTSHARE, WEBSITE_CONTENTOVERVNET";
    let file = target(&report, "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING/file");
    assert_eq!(class(file), None, "{file:#?}");
    assert_eq!(file.source.as_deref(), Some(share_source));
    let v = service_json(file);
    assert_eq!(v["service"], "file", "{v}");
    assert_eq!(
        v["answer"]["error_code"], "NoAuthenticationInformation",
        "{v}"
    );
    assert_eq!(v["verdict"], "authorized_read_ok", "{v}");
    let seen = files.seen.lock().unwrap().clone();
    assert!(
        seen.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("SharedKey fnstore:")),
        "{:?}",
        seen.authorization
    );
    let smb = target(&report, "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING/smb");
    assert_eq!(class(smb), None, "{smb:#?}");
    let l = smb.layers.iter().find(|l| l.layer == Layer::Smb).unwrap();
    assert_eq!(serde_json::to_value(l).unwrap()["smb"]["dialect"], "3.1.1");
    // The Key Vault reference: the vault's own answer, the private witness.
    let kv = target(&report, "keyvault/kv1");
    assert_eq!(class(kv), None, "{kv:#?}");
    let v = service_json(kv);
    assert_eq!(v["verdict"], "reached_service", "{v}");
    assert_eq!(v["witness"]["conclusion"], "private_path_proven", "{v}");
    assert_eq!(kv.source.as_deref(), Some("DbPassword"));

    // No key, planted or real, in the report, the text table, the notes or the config.
    let json = serde_json::to_string(&report).unwrap();
    let table = routeproof::render::text::render(&report);
    let shown = format!("{json}\n{table}\n{:?}\n{cfg:?}", summary.notes);
    assert!(json.contains("authorized_read_ok"), "the reads ran");
    assert_clean(
        "discovered storage checks",
        &shown,
        &[
            DEV_KEY,
            &DEV_KEY[..24],
            &wrong_key,
            &wrong_key[..24],
            "PLANTED",
        ],
    );
}

/// A key referenced by setting name that is gone when the probe runs: the credential-free
/// check still proves the service answered; the read is skipped with a warning naming the
/// setting (never a failure, never a value).
#[tokio::test]
async fn a_referenced_key_missing_at_probe_time_skips_the_read_with_a_warning() {
    crate::certs::install_crypto_provider();
    let ca = Ca::new("routeproof discovery test CA");
    let files = stubs::serve(
        &ca,
        &[FILE_HOST],
        stubs::storage_401(),
        stubs::file_list_shares(),
    )
    .await;
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(ca.pem().as_bytes()).unwrap();
    let dns = DnsServer::start(Zone::new().a(FILE_HOST, "127.0.0.1", 0)).await;
    let at_load = env_of(&[("ShareKey", "AccountName=fnstore;AccountKey=S2V5")]);
    let text = format!(
        "[engine]\ndns_servers = [\"{}\"]\nazure_dns = \"127.0.0.1:9\"\ntcp_settle = \"0s\"\nca_file = \"{}\"\n[[targets]]\nname = \"share\"\ntarget = \"https://{FILE_HOST}:{}/\"\nservice = \"file\"\naccount_key = \"env:ShareKey\"\n",
        dns.addr,
        ca_file.path().display(),
        files.addr.port()
    );
    let cfg = config::parse(&text, &at_load).unwrap();
    let engine = Engine::with_app_settings(
        cfg.engine.clone(),
        "config",
        &at_load,
        Arc::new(env_of(&[])),
    )
    .unwrap();
    let report = engine.run(&cfg.targets, None).await;
    let t = &report.targets[0];
    assert_eq!(class(t), None, "{t:#?}");
    let v = service_json(t);
    assert_eq!(v["verdict"], "reached_service", "{v}");
    assert!(v.get("authorized").is_none(), "{v}");
    assert!(
        t.warnings
            .iter()
            .any(|w| w.contains("Shared Key read was not run")
                && w.contains("`ShareKey` is not set")),
        "{:?}",
        t.warnings
    );
    assert!(files.seen.lock().unwrap().authorization.is_none());
}
