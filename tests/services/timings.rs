//! Every service check of a realistic app in one engine, run five times on loopback: the
//! storage services of a keyed `AzureWebJobsStorage` through discovery against Azurite
//! (anonymous + Shared Key read), Key Vault with the identity read (the emulated identity
//! endpoint), Cosmos DB, App Configuration and Container Registry contract stubs, and the
//! content share's SMB NEGOTIATE against smbd. Each run must pass; the medians of the
//! layers' `duration_ms` (and of the identity's `token_ms`) are printed as `timing:` lines
//! (the closing note's numbers: `cargo test --test services timings -- --nocapture`).
//! Printed, never asserted: no timed assertions.

use std::collections::BTreeMap;
use std::sync::Arc;

use routeproof::config;
use routeproof::discover;
use routeproof::probe::Engine;
use routeproof::report::Layer;

use crate::certs::Ca;
use crate::dns_support::{DnsServer, Zone};
use crate::engine_support::class;
use crate::identity_support::{IdentityEndpoint, jwt};
use crate::{ca_file, env_from, peers, stubs};

/// Azurite's documented development account key (Azurite README, "Default storage account").
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const VAULT: &str = "kv1.vault.azure.net";
const COSMOS: &str = "db1.documents.azure.com";
const APPCONFIG: &str = "cfg1.azconfig.io";
const ACR: &str = "reg1.azurecr.io";
const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::test]
async fn service_checks_on_loopback_five_runs() {
    crate::certs::install_crypto_provider();
    let az = match peers::azurite(None) {
        Ok(a) => a,
        Err(e) => return peers::skip("service timings (azurite)", &e),
    };
    let samba = match peers::samba() {
        Ok(s) => s,
        Err(e) => return peers::skip("service timings (smbd)", &e),
    };
    let ca = Ca::new("routeproof timings CA");
    let kv = stubs::serve(
        &ca,
        &[VAULT],
        stubs::keyvault_401("10.0.1.5"),
        stubs::keyvault_list(),
    )
    .await;
    let cosmos = stubs::serve(&ca, &[COSMOS], stubs::cosmos_401(), stubs::cosmos_401()).await;
    let appconfig = stubs::serve(
        &ca,
        &[APPCONFIG],
        stubs::appconfig_401(),
        stubs::appconfig_401(),
    )
    .await;
    let acr = stubs::serve(&ca, &[ACR], stubs::acr_401(ACR), stubs::acr_401(ACR)).await;
    let token = jwt(
        "https://vault.azure.net",
        "00000000-0000-0000-0000-0000000000ee",
    );
    let idp =
        IdentityEndpoint::start("idh-timings", &[("https://vault.azure.net", &token)], &[]).await;
    let f = ca_file(&ca);
    let zone = [VAULT, COSMOS, APPCONFIG, ACR]
        .iter()
        .fold(Zone::new(), |z, n| z.a(n, "127.0.0.1", 0));
    let dns = DnsServer::start(zone).await;

    let ep = |port: u16| format!("http://127.0.0.1:{port}/devstoreaccount1");
    let mut settings: Vec<(String, String)> = vec![
        ("WEBSITE_SITE_NAME".into(), "orders-func".into()),
        ("WEBSITE_PRIVATE_IP".into(), "10.0.1.5".into()),
        (
            "AzureWebJobsStorage".into(),
            format!(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint={};QueueEndpoint={};TableEndpoint={}",
                ep(az.blob),
                ep(az.queue),
                ep(az.table)
            ),
        ),
    ];
    settings.extend(idp.env().map(|(k, v)| (k.to_string(), v)));
    let env = env_from(&settings);
    let https = |name: &str, host: &str, port: u16, extra: &str| {
        format!("[[targets]]\nname = \"{name}\"\ntarget = \"https://{host}:{port}/\"\n{extra}\n")
    };
    let text = format!(
        "[engine]\ndns_servers = [\"{}\"]\nazure_dns = \"127.0.0.1:9\"\ntcp_settle = \"0s\"\nca_file = \"{}\"\n{}{}{}{}[[targets]]\nname = \"smb\"\ntarget = \"smb://127.0.0.1:{}\"\n",
        dns.addr,
        f.path().display(),
        https(
            "keyvault",
            VAULT,
            kv.addr.port(),
            "authentication = \"managed_identity\""
        ),
        https("cosmos", COSMOS, cosmos.addr.port(), ""),
        https("appconfig", APPCONFIG, appconfig.addr.port(), ""),
        https("acr", ACR, acr.addr.port(), ""),
        samba.port
    );
    let mut cfg = config::parse(&text, &env).unwrap();
    let summary = discover::apply(&mut cfg, &settings);
    assert_eq!(summary.added, 3, "{:#?}", cfg.targets);
    let engine = Engine::with_app_settings(
        cfg.engine.clone(),
        "config",
        &env,
        Arc::new(env_from(&settings)),
    )
    .unwrap();

    let mut seen: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..RUNS {
        let report = engine.run(&cfg.targets, None).await;
        for t in &report.targets {
            assert_eq!(class(t), None, "{t:#?}");
            let (layer, what) = if t.name == "smb" {
                (Layer::Smb, "smb negotiate")
            } else {
                (Layer::Service, "service layer")
            };
            let l = t.layers.iter().find(|l| l.layer == layer).unwrap();
            let v = serde_json::to_value(l).unwrap();
            if v["verdict"].is_string() {
                assert!(
                    matches!(
                        v["verdict"].as_str(),
                        Some("reached_service" | "authorized_read_ok")
                    ),
                    "{}: {v}",
                    t.name
                );
            }
            seen.entry(format!("{} {what}", t.name))
                .or_default()
                .push(l.duration_ms);
            if let Some(ms) = v["identity"]["token_ms"].as_f64() {
                seen.entry(format!("{} identity token", t.name))
                    .or_default()
                    .push(ms);
            }
        }
    }
    assert!(
        seen.keys().any(|k| k.ends_with("identity token")),
        "{seen:?}"
    );
    for (what, v) in seen {
        assert_eq!(v.len(), RUNS, "{what}");
        eprintln!(
            "timing: {what}: median {:.2} ms of {RUNS} ({v:?})",
            median(v.clone())
        );
    }
}
