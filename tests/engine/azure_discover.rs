//! Target discovery from a controlled settings map (never the process's own
//! environment): which targets each setting yields, the setting each one records, and
//! that no secret part of a setting reaches a target, a name, a source or a note.

use routeproof::config::{self, Config};
use routeproof::discover::{self, Found};

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn shown(found: &[Found]) -> Vec<(String, String, String)> {
    found
        .iter()
        .map(|f| (f.name.clone(), f.spec.to_string(), f.source.clone()))
        .collect()
}

const STORAGE: &str = "DefaultEndpointsProtocol=https;AccountName=fnstore;AccountKey=PLANTED-accountkey==;EndpointSuffix=core.windows.net";

/// A Function App's settings as the platform sets them, with a distinctive secret in
/// every place one can be.
fn app_settings() -> Vec<(String, String)> {
    settings(&[
        ("WEBSITE_SITE_NAME", "orders-func"),
        ("AzureWebJobsStorage", STORAGE),
        ("WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", STORAGE),
        ("WEBSITE_CONTENTSHARE", "orders-func-share"),
        (
            "WEBSITE_RUN_FROM_PACKAGE",
            "https://pkgstore.blob.core.windows.net/pkgs/app.zip?sv=2022-11-02&se=2030-01-01&sig=PLANTED-sig",
        ),
        (
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "InstrumentationKey=PLANTED-ikey;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/",
        ),
        ("APPINSIGHTS_INSTRUMENTATIONKEY", "PLANTED-ikey"),
        (
            "SQLAZURECONNSTR_orders",
            "Server=tcp:orders.database.windows.net,1433;Initial Catalog=orders;User ID=app;Password=PLANTED-pw;Encrypt=True",
        ),
        (
            "SQLCONNSTR_legacy",
            "Data Source=10.1.2.4,14330;Pwd=PLANTED-pwd",
        ),
        (
            "CUSTOMCONNSTR_api",
            "https://user:PLANTED-userinfo@api.internal.contoso.com:8443/health?code=PLANTED-code",
        ),
        (
            "POSTGRESQLCONNSTR_pg",
            "Host=pg.postgres.database.azure.com;Port=5432;Username=u;Password=PLANTED-pg",
        ),
        (
            "ServiceBusConnection__fullyQualifiedNamespace",
            "orders-ns.servicebus.windows.net",
        ),
        ("ServiceBusConnection__credential", "managedidentity"),
        (
            "EventHubConn",
            "Endpoint=sb://events-ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=PLANTED-sbkey=",
        ),
        ("Durable__accountName", "durablestore"),
        (
            "Reports__serviceUri",
            "https://reports.blob.core.windows.net/",
        ),
        (
            "Cosmos__accountEndpoint",
            "https://orders-cosmos.documents.azure.com:443/",
        ),
        (
            "DbPassword",
            "@Microsoft.KeyVault(SecretUri=https://orders-kv.vault.azure.net/secrets/db/)",
        ),
        (
            "ApiKey",
            "@Microsoft.KeyVault(VaultName=Orders-KV;SecretName=api)",
        ),
        (
            "SQLCONNSTR_broken",
            "Server=tcp:h,abc;Password=PLANTED-broken",
        ),
        ("IDENTITY_ENDPOINT", "http://localhost:8081/msi/token"),
        ("IDENTITY_HEADER", "PLANTED-identity-header"),
        ("ROUTEPROOF_SCHEDULE", "0 */5 * * * *"),
    ])
}

#[test]
fn every_setting_kind_yields_its_targets_with_its_source() {
    let (found, notes) = discover::find(&app_settings());
    let got = shown(&found);
    assert!(
        !got.iter()
            .any(|(n, _, _)| n == "APPINSIGHTS_INSTRUMENTATIONKEY"),
        "the legacy key is ignored when the connection string is set: {got:#?}"
    );
    let expect: &[(&str, &str, &str)] = &[
        (
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "tls://westeurope-5.in.applicationinsights.azure.com:443",
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
        ),
        (
            "AzureWebJobsStorage/blob",
            "tls://fnstore.blob.core.windows.net:443",
            "AzureWebJobsStorage",
        ),
        (
            "AzureWebJobsStorage/queue",
            "tls://fnstore.queue.core.windows.net:443",
            "AzureWebJobsStorage",
        ),
        (
            "AzureWebJobsStorage/table",
            "tls://fnstore.table.core.windows.net:443",
            "AzureWebJobsStorage",
        ),
        (
            "CUSTOMCONNSTR_api",
            "tls://api.internal.contoso.com:8443",
            "CUSTOMCONNSTR_api",
        ),
        (
            "Cosmos/account",
            "tls://orders-cosmos.documents.azure.com:443",
            "Cosmos__accountEndpoint",
        ),
        (
            "keyvault/orders-kv",
            "tls://orders-kv.vault.azure.net:443",
            "ApiKey, DbPassword",
        ),
        (
            "Durable/blob",
            "tls://durablestore.blob.core.windows.net:443",
            "Durable__accountName",
        ),
        (
            "Durable/queue",
            "tls://durablestore.queue.core.windows.net:443",
            "Durable__accountName",
        ),
        (
            "Durable/table",
            "tls://durablestore.table.core.windows.net:443",
            "Durable__accountName",
        ),
        (
            "EventHubConn/amqp",
            "tls://events-ns.servicebus.windows.net:5671",
            "EventHubConn",
        ),
        (
            "EventHubConn/https",
            "tls://events-ns.servicebus.windows.net:443",
            "EventHubConn",
        ),
        (
            "POSTGRESQLCONNSTR_pg",
            "tcp://pg.postgres.database.azure.com:5432",
            "POSTGRESQLCONNSTR_pg",
        ),
        (
            "Reports/blob",
            "tls://reports.blob.core.windows.net:443",
            "Reports__serviceUri",
        ),
        (
            "SQLAZURECONNSTR_orders",
            "sqlserver://orders.database.windows.net:1433/orders",
            "SQLAZURECONNSTR_orders",
        ),
        (
            "SQLCONNSTR_legacy",
            "sqlserver://10.1.2.4:14330",
            "SQLCONNSTR_legacy",
        ),
        (
            "ServiceBusConnection/amqp",
            "tls://orders-ns.servicebus.windows.net:5671",
            "ServiceBusConnection__fullyQualifiedNamespace",
        ),
        (
            "ServiceBusConnection/https",
            "tls://orders-ns.servicebus.windows.net:443",
            "ServiceBusConnection__fullyQualifiedNamespace",
        ),
        (
            "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING/file",
            "tls://fnstore.file.core.windows.net:443",
            "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        ),
        (
            "WEBSITE_RUN_FROM_PACKAGE",
            "tls://pkgstore.blob.core.windows.net:443",
            "WEBSITE_RUN_FROM_PACKAGE",
        ),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted: Vec<(String, String, String)> = expect
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted);

    // Discovered SQL targets carry no credentials: PRELOGIN and TLS prove the route.
    for f in &found {
        if let routeproof::target::TargetSpec::Sql { auth, .. } = &f.spec {
            assert!(auth.password.is_none() && auth.user.is_none(), "{}", f.name);
        }
    }

    // The unusable setting and the unresolved Key Vault references are named, not quoted.
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("SQLCONNSTR_broken:") && n.contains("not a number")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("DbPassword:") && n.contains("unresolved Key Vault reference")),
        "{notes:?}"
    );
    let everything = format!("{got:?} {notes:?} {found:?}");
    assert!(!everything.contains("PLANTED"), "{everything}");
}

#[test]
fn storage_connection_string_forms() {
    let one = |value: &str| -> Vec<String> {
        let (found, notes) = discover::find(&settings(&[("AzureWebJobsStorage", value)]));
        assert!(!format!("{notes:?}").contains("PLANTED"), "{notes:?}");
        found.iter().map(|f| f.spec.to_string()).collect()
    };
    assert_eq!(
        one("UseDevelopmentStorage=true"),
        [
            "tcp://127.0.0.1:10000",
            "tcp://127.0.0.1:10001",
            "tcp://127.0.0.1:10002"
        ]
    );
    assert_eq!(
        one(
            "DefaultEndpointsProtocol=https;AccountName=cnstore;AccountKey=PLANTED;EndpointSuffix=core.chinacloudapi.cn"
        ),
        [
            "tls://cnstore.blob.core.chinacloudapi.cn:443",
            "tls://cnstore.queue.core.chinacloudapi.cn:443",
            "tls://cnstore.table.core.chinacloudapi.cn:443"
        ]
    );
    // A SAS connection string names only the endpoints it has.
    assert_eq!(
        one(
            "BlobEndpoint=https://sas.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=PLANTED"
        ),
        ["tls://sas.blob.core.windows.net:443"]
    );
    // Explicit endpoints win over the account name, ports and plain HTTP included.
    assert_eq!(
        one(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=PLANTED;BlobEndpoint=http://azurite:10000/devstoreaccount1;QueueEndpoint=http://azurite:10001/devstoreaccount1;TableEndpoint=http://azurite:10002/devstoreaccount1"
        ),
        [
            "tcp://azurite:10000",
            "tcp://azurite:10001",
            "tcp://azurite:10002"
        ]
    );
    assert!(one("WEBSITE_RUN_FROM_PACKAGE").is_empty());
    let (found, _) = discover::find(&settings(&[("WEBSITE_RUN_FROM_PACKAGE", "1")]));
    assert!(found.is_empty(), "`1` is the local package, not a URL");
    let (found, _) = discover::find(&settings(&[(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "InstrumentationKey=PLANTED;EndpointSuffix=applicationinsights.us",
    )]));
    assert_eq!(
        found[0].spec.to_string(),
        "tls://dc.applicationinsights.us:443"
    );
}

#[test]
fn discovery_is_on_inside_azure_and_off_elsewhere_unless_configured() {
    let toml = |extra: &str| -> Config {
        config::parse(
            &format!(
                "[engine]\n{extra}\n[[targets]]\nname = \"blob\"\ntarget = \"tls://fnstore.blob.core.windows.net:443\"\n"
            ),
            &|_| None,
        )
        .unwrap()
    };
    // On Azure by default; a configured target wins over its discovered twin.
    let mut cfg = toml("");
    let s = discover::apply(&mut cfg, &app_settings());
    assert!(s.enabled, "{}", s.why);
    assert!(s.why.contains("inside Azure"), "{}", s.why);
    assert_eq!(
        cfg.targets
            .iter()
            .filter(|t| t.spec.to_string() == "tls://fnstore.blob.core.windows.net:443")
            .count(),
        1
    );
    assert_eq!(cfg.targets[0].source, None);
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("already configured as `blob`")),
        "{:?}",
        s.notes
    );
    assert_eq!(s.added, cfg.targets.len() - 1);
    assert!(
        cfg.targets[1..].iter().all(|t| t.source.is_some()),
        "every discovered target says where it came from"
    );
    assert_eq!(cfg.engine.discovery.as_ref(), Some(&s));

    // Off outside Azure by default, on when configured; off when configured off.
    let local: Vec<(String, String)> = app_settings()
        .into_iter()
        .filter(|(k, _)| k != "WEBSITE_SITE_NAME")
        .collect();
    let mut cfg = toml("");
    let s = discover::apply(&mut cfg, &local);
    assert!(
        !s.enabled && s.added == 0 && cfg.targets.len() == 1,
        "{}",
        s.why
    );
    let mut cfg = toml("discover = true");
    assert!(discover::apply(&mut cfg, &local).added > 10);
    let mut cfg = toml("discover = false");
    let s = discover::apply(&mut cfg, &app_settings());
    assert!(!s.enabled && cfg.targets.len() == 1);
}
