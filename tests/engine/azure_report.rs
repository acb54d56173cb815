//! A report from a simulated Function App: a controlled settings map (site facts, DNS
//! settings, AzureWebJobsStorage) and two loopback DNS servers (the app's custom DNS and
//! "Azure DNS"). It must show the environment block, per-address route reasoning,
//! discovered targets with their source settings and a divergent-DNS diagnosis. Every
//! connection goes to 127.0.0.1; other answers stay DNS-only.

use crate::support;

use std::collections::HashMap;

use serde_json::Value;

use routeproof::discover;
use support::certs::{self, Ca, LeafSpec, PemFiles};
use support::dns::{DnsServer, Zone};
use support::engine::{engine_of, parse};
use support::web;

struct Fixture {
    custom: DnsServer,
    azure: DnsServer,
    tls: web::Server,
    pem: PemFiles,
    dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof test CA");
    let leaf = ca.issue(&LeafSpec::new(["fnstore.blob.core.windows.net"]));
    let pem = PemFiles::write(&ca, &leaf);
    // The blob endpoint answers as Azure Storage does an anonymous request that passes the
    // network rules: 401 NoAuthenticationInformation with its request id (Storage REST,
    // "Authorize with Microsoft Entra ID", section "Bearer challenge").
    let storage = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            [
                ("x-ms-request-id", "s-401"),
                ("x-ms-error-code", "NoAuthenticationInformation"),
                (
                    "www-authenticate",
                    "Bearer authorization_uri=https://login.microsoftonline.com/t/oauth2/authorize resource_id=https://storage.azure.com",
                ),
            ],
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>NoAuthenticationInformation</Code><Message>Server failed to authenticate the request.</Message></Error>",
        )
    });
    let tls = web::https_with(leaf.server_config(&[], &[b"http/1.1"]), storage).await;
    let custom = DnsServer::start(
        Zone::new()
            // blob: the private endpoint resolves (to loopback, so the probe may connect)
            .cname(
                "fnstore.blob.core.windows.net",
                "fnstore.privatelink.blob.core.windows.net",
                60,
            )
            .a("fnstore.privatelink.blob.core.windows.net", "127.0.0.1", 60)
            // queue: the custom server has no privatelink.queue zone
            .cname(
                "fnstore.queue.core.windows.net",
                "fnstore.privatelink.queue.core.windows.net",
                60,
            )
            // table: missing everywhere (fnstore.table.core.windows.net is unknown)
            .a("api.internal.contoso.com", "10.2.0.4", 60)
            .a("www.contoso.com", "20.0.0.7", 60)
            .cname(
                "pubsql.database.windows.net",
                "pubsql.privatelink.database.windows.net",
                60,
            )
            .cname(
                "pubsql.privatelink.database.windows.net",
                "cr1.westeurope1-a.control.database.windows.net",
                60,
            )
            .a(
                "cr1.westeurope1-a.control.database.windows.net",
                "20.0.0.5",
                60,
            ),
    )
    .await;
    let azure = DnsServer::start(
        Zone::new()
            .cname(
                "fnstore.queue.core.windows.net",
                "fnstore.privatelink.queue.core.windows.net",
                60,
            )
            .a("fnstore.privatelink.queue.core.windows.net", "10.0.2.5", 60),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("resolv.conf"),
        "nameserver 127.0.0.11\noptions ndots:0\n",
    )
    .unwrap();
    Fixture {
        custom,
        azure,
        tls,
        pem,
        dir,
    }
}

impl Fixture {
    /// The Function App's settings, with `route_all` as WEBSITE_VNET_ROUTE_ALL.
    fn settings(&self, route_all: Option<&str>) -> Vec<(String, String)> {
        let mut v = vec![
            ("WEBSITE_SITE_NAME", "orders-func".to_string()),
            (
                "WEBSITE_INSTANCE_ID",
                "8f5c0a1b2c3d4e5f60718293a4b5c6d7e8f9011223344556677889900aabbccd".to_string(),
            ),
            ("WEBSITE_PRIVATE_IP", "10.0.1.5".to_string()),
            ("REGION_NAME", "West Europe".to_string()),
            ("WEBSITE_SKU", "ElasticPremium".to_string()),
            ("FUNCTIONS_WORKER_RUNTIME", "custom".to_string()),
            ("FUNCTIONS_EXTENSION_VERSION", "~4".to_string()),
            ("WEBSITE_CONTENTOVERVNET", "1".to_string()),
            ("WEBSITE_DNS_SERVER", self.custom.addr.to_string()),
            (
                "AzureWebJobsStorage",
                format!(
                    "DefaultEndpointsProtocol=https;AccountName=fnstore;AccountKey=PLANTED-key==;BlobEndpoint=https://fnstore.blob.core.windows.net:{}/",
                    self.tls.addr.port()
                ),
            ),
            ("IDENTITY_HEADER", "PLANTED-identity".to_string()),
        ];
        if let Some(r) = route_all {
            v.push(("WEBSITE_VNET_ROUTE_ALL", r.to_string()));
        }
        v.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    async fn report(&self, route_all: Option<&str>) -> routeproof::report::Report {
        self.report_declared(route_all, None).await
    }

    /// `report`, with the operator's `engine.route_all` declaration when `declared` is set.
    async fn report_declared(
        &self,
        route_all: Option<&str>,
        declared: Option<bool>,
    ) -> routeproof::report::Report {
        let settings = self.settings(route_all);
        let declared = declared.map_or(String::new(), |d| format!("route_all = {d}\n"));
        let map: HashMap<String, String> = settings.iter().cloned().collect();
        let env = move |k: &str| map.get(k).cloned();
        let mut cfg = parse(
            &format!(
                r#"
[engine]
{declared}azure_dns = "{}"
resolv_conf = "{}"
ca_file = "{}"
tcp_settle = "0s"
[engine.timeouts]
dns = "2s"
tcp = "2s"

[[targets]]
name = "internal-api"
target = "dns://api.internal.contoso.com"

[[targets]]
name = "public-site"
target = "dns://www.contoso.com"

[[targets]]
name = "sql-public-answer"
target = "dns://pubsql.database.windows.net"
"#,
                self.azure.addr,
                self.dir.path().join("resolv.conf").display(),
                self.pem.ca.display()
            ),
            &env,
        );
        let summary = discover::apply(&mut cfg, &settings);
        assert_eq!(summary.added, 3, "{summary:?}");
        let engine = engine_of(&cfg, &env);
        engine.run(&cfg.targets, None).await
    }
}

fn target<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no target {name} in {report:#}"))
}

#[tokio::test]
async fn simulated_function_app_report() {
    let f = fixture().await;
    let report = f.report(Some("1")).await;
    let json = serde_json::to_value(&report).unwrap();
    let text = routeproof::render::text::render(&report);

    // The environment block: what the platform says about this instance.
    let env = &json["environment"];
    assert_eq!(env["on_azure"], true);
    assert!(env.get("note").is_none());
    let site = &env["site"];
    assert_eq!(site["name"], "orders-func");
    assert_eq!(
        site["instance_id"],
        "8f5c0a1b2c3d4e5f60718293a4b5c6d7e8f9011223344556677889900aabbccd"
    );
    assert_eq!(site["private_ip"], "10.0.1.5");
    assert_eq!(site["region"], "West Europe");
    assert_eq!(site["sku"], "ElasticPremium");
    assert_eq!(site["runtime"], "custom");
    assert_eq!(site["functions_version"], "~4");
    assert_eq!(site["vnet_integration"], "on");
    assert_eq!(site["route_all"], "on");
    assert_eq!(site["route_all_basis"], "app_setting");
    let why = site["route_all_source"].as_str().unwrap();
    assert!(
        why.starts_with("WEBSITE_VNET_ROUTE_ALL=1") && why.contains("weak signal"),
        "{why}"
    );
    assert_eq!(site["content_over_vnet"], "on");
    let dns = &env["dns"];
    assert_eq!(dns["website_dns_server"], f.custom.addr.to_string());
    assert_eq!(dns["resolv_conf"], serde_json::json!(["127.0.0.11"]));
    assert_eq!(dns["custom"], true);
    assert_eq!(dns["azure_dns"], f.azure.addr.to_string());
    // The app's own resolver path first, the app setting's server asked alongside.
    assert_eq!(env["resolvers"][0]["source"], "resolv.conf");
    assert_eq!(env["resolvers"][0]["server"], "127.0.0.11:53");
    assert_eq!(env["resolvers"][1]["source"], "WEBSITE_DNS_SERVER");
    assert_eq!(env["discovery"]["enabled"], true);
    assert_eq!(env["discovery"]["added"], 3);

    // Discovered targets, each with its setting; the blob endpoint passes end to end: the
    // storage service answered. Its key is referenced by setting name and read when the
    // probe runs: this engine reads the process environment, where it is not set, so the
    // Shared Key read is skipped with a warning (the route is still proven).
    let blob = target(&json, "AzureWebJobsStorage/blob");
    assert_eq!(blob["source"], "AzureWebJobsStorage");
    assert_eq!(
        blob["target"],
        format!(
            "https://fnstore.blob.core.windows.net:{}/",
            f.tls.addr.port()
        )
    );
    assert_eq!(blob["ok"], true, "{blob:#}");
    assert_eq!(blob["reached"], "service");
    assert!(
        blob["warnings"]
            .to_string()
            .contains("Shared Key read was not run"),
        "{blob:#}"
    );
    assert_eq!(blob["route"][0]["path"], "local");

    // The queue endpoint: custom DNS cannot resolve privatelink.queue, Azure DNS can.
    let queue = target(&json, "AzureWebJobsStorage/queue");
    assert_eq!(queue["source"], "AzureWebJobsStorage");
    assert_eq!(queue["failure"]["class"], "dns.divergent", "{queue:#}");
    assert!(
        queue["failure"]["hint"].as_str().unwrap().contains(
            "conditional forwarder for privatelink.queue.core.windows.net to 168.63.129.16"
        )
    );
    assert_eq!(
        queue["layers"][0]["azure_dns"]["addresses"],
        serde_json::json!(["10.0.2.5"])
    );
    // The table endpoint is missing for Azure DNS too: an ordinary NXDOMAIN.
    let table = target(&json, "AzureWebJobsStorage/table");
    assert_eq!(table["failure"]["class"], "dns.nxdomain");

    // Route reasoning per address.
    let api = target(&json, "internal-api");
    assert_eq!(api["route"][0]["ip"], "10.2.0.4");
    assert_eq!(api["route"][0]["class"], "private");
    assert_eq!(api["route"][0]["path"], "vnet");
    assert!(
        api["route"][0]["why"]
            .as_str()
            .unwrap()
            .contains("integration subnet (this instance is 10.0.1.5 there)")
    );
    let public = target(&json, "public-site");
    assert_eq!(public["route"][0]["path"], "vnet", "route-all is on");

    // A public answer behind a privatelink hop passes DNS (nothing asked for private)
    // but is flagged, after Azure DNS was asked and agreed there is no private record.
    let sql = target(&json, "sql-public-answer");
    assert_eq!(sql["ok"], true);
    let warnings = sql["warnings"].to_string();
    assert!(
        warnings.contains(
            "goes through privatelink.database.windows.net but resolved to public 20.0.0.5"
        ),
        "{warnings}"
    );
    assert!(warnings.contains("compared with Azure DNS"), "{warnings}");

    // The text table says the same things.
    for want in [
        "site orders-func  instance 8f5c0a1b2c3d  region West Europe  sku ElasticPremium  runtime custom ~4",
        "vnet private ip 10.0.1.5  route-all on (WEBSITE_VNET_ROUTE_ALL=1: ",
        &format!(
            "dns custom; failures compared with Azure DNS {}",
            f.azure.addr
        ),
        "discovery 3 target(s) from app settings",
        "from app setting AzureWebJobsStorage",
        "route 10.2.0.4 -> vnet: private: through the integration subnet",
        "=> dns.divergent:",
    ] {
        assert!(text.contains(want), "missing `{want}` in\n{text}");
    }
    if std::env::var_os("ROUTEPROOF_SHOW").is_some() {
        println!("{text}");
    }
    let all = format!("{json} {text}");
    assert!(!all.contains("PLANTED"), "a secret reached the report");
}

#[tokio::test]
async fn route_all_decides_the_path_of_public_addresses() {
    let f = fixture().await;
    // WEBSITE_VNET_ROUTE_ALL=0 proves nothing (the invisible site property may be on):
    // only the operator's declaration says the path is the internet.
    for (setting, declared, path) in [
        (Some("0"), None, "route_all_unknown"),
        (None, None, "route_all_unknown"),
        (Some("1"), None, "vnet"),
        (Some("0"), Some(false), "internet"),
    ] {
        let json = serde_json::to_value(f.report_declared(setting, declared).await).unwrap();
        let public = target(&json, "public-site");
        assert_eq!(public["route"][0]["path"], path, "{setting:?} {declared:?}");
        let private = target(&json, "internal-api");
        assert_eq!(private["route"][0]["path"], "vnet", "{setting:?}");
        if declared.is_none() && setting != Some("1") {
            let why = json["environment"]["site"]["route_all_source"]
                .as_str()
                .unwrap();
            assert!(why.contains("vnetRouteAllEnabled"), "{why}");
            assert!(why.contains("az functionapp config show"), "{why}");
            assert_eq!(json["environment"]["site"]["route_all"], "unknown");
        }
        if declared == Some(false) {
            assert_eq!(json["environment"]["site"]["route_all_basis"], "declared");
            let why = public["route"][0]["why"].as_str().unwrap();
            assert!(
                why.contains("bypassing the VNet, its NSGs and route tables"),
                "{why}"
            );
        }
    }
}
