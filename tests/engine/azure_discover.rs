//! Target discovery from a controlled settings map (never the process's own
//! environment): which checks a realistic Function App's settings yield (kind, host,
//! port, service, how the service is asked, source), and that no secret part of a
//! setting reaches a target, a name, a source or a note.

use routeproof::config::{self, Config};
use routeproof::discover::Auth;
use routeproof::discover::{self, Found};
use routeproof::spec::DbTls;
use routeproof::target::TargetSpec;

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `(name, target, service, auth, source)`: the kind, host and port are the target's
/// scheme, host and port; `service` and `auth` how the service layer asks.
fn shown(found: &[Found]) -> Vec<(String, String, String, String, String)> {
    found
        .iter()
        .map(|f| {
            let (svc, auth) = match &f.service {
                Some(s) => (
                    s.kind.to_string(),
                    match &s.auth {
                        Auth::None => "none".to_string(),
                        Auth::SharedKey { setting } => format!("key from {setting}"),
                        Auth::ManagedIdentity { client_id } => format!(
                            "identity {}",
                            client_id.as_deref().unwrap_or("system-assigned")
                        ),
                    },
                ),
                None => ("-".into(), "-".into()),
            };
            (
                f.name.clone(),
                f.spec.to_string(),
                svc,
                auth,
                f.source.clone(),
            )
        })
        .collect()
}

const STORAGE: &str = "DefaultEndpointsProtocol=https;AccountName=fnstore;AccountKey=PLANTED-accountkey==;EndpointSuffix=core.windows.net";

/// A Function App's settings as the platform and a typical locked-down deployment set
/// them, with a distinctive secret in every place one can be.
fn app_settings() -> Vec<(String, String)> {
    settings(&[
        ("WEBSITE_SITE_NAME", "orders-func"),
        ("REGION_NAME", "West Europe"),
        ("AzureWebJobsStorage", STORAGE),
        ("WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", STORAGE),
        ("WEBSITE_CONTENTSHARE", "orders-func-share"),
        ("WEBSITE_CONTENTOVERVNET", "1"),
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
            "POSTGRESQLCONNSTR_pg",
            "Host=pg.postgres.database.azure.com;Port=5432;Database=orders;Username=u;Password=PLANTED-pg;SSL Mode=Require",
        ),
        (
            "MYSQLCONNSTR_legacy",
            "Server=legacy.mysql.database.azure.com;Database=shop;Uid=app;Pwd=PLANTED-my;SslMode=Required",
        ),
        (
            "REDISCACHECONNSTR_cache",
            "orders.redis.cache.windows.net:6380,password=PLANTED-redis=,ssl=True,abortConnect=False",
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
        ("Durable__credential", "managedidentity"),
        ("Durable__clientId", "0f0e0d0c-1111-2222-3333-444455556666"),
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
        ("DOCKER_REGISTRY_SERVER_URL", "https://ordersacr.azurecr.io"),
        ("DOCKER_REGISTRY_SERVER_USERNAME", "ordersacr"),
        ("DOCKER_REGISTRY_SERVER_PASSWORD", "PLANTED-acr"),
        (
            "DOCKER_CUSTOM_IMAGE_NAME",
            "DOCKER|ordersacr.azurecr.io/orders/api:1.4",
        ),
        (
            "CUSTOMCONNSTR_api",
            "https://user:PLANTED-userinfo@api.internal.contoso.com:8443/health?code=PLANTED-code",
        ),
        (
            "SQLCONNSTR_broken",
            "Server=tcp:h,abc;Password=PLANTED-broken",
        ),
        ("MYSQLCONNSTR_broken", "Database=x;Pwd=PLANTED-broken2"),
        ("IDENTITY_ENDPOINT", "http://localhost:8081/msi/token"),
        ("IDENTITY_HEADER", "PLANTED-identity-header"),
        ("ROUTEPROOF_SCHEDULE", "0 */5 * * * *"),
    ])
}

#[test]
fn a_function_apps_settings_yield_exactly_these_checks() {
    let (found, notes) = discover::find(&app_settings());
    let key = "key from AzureWebJobsStorage";
    let share_key = "key from WEBSITE_CONTENTAZUREFILECONNECTIONSTRING";
    let share =
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING, WEBSITE_CONTENTSHARE, WEBSITE_CONTENTOVERVNET";
    let durable = "identity 0f0e0d0c-1111-2222-3333-444455556666";
    let expect: &[(&str, &str, &str, &str, &str)] = &[
        (
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "tls://westeurope-5.in.applicationinsights.azure.com:443",
            "-",
            "-",
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
        ),
        (
            "AzureWebJobsStorage/blob",
            "https://fnstore.blob.core.windows.net/",
            "blob",
            key,
            "AzureWebJobsStorage",
        ),
        (
            "AzureWebJobsStorage/queue",
            "https://fnstore.queue.core.windows.net/",
            "queue",
            key,
            "AzureWebJobsStorage",
        ),
        (
            "AzureWebJobsStorage/table",
            "https://fnstore.table.core.windows.net/",
            "table",
            key,
            "AzureWebJobsStorage",
        ),
        (
            "CUSTOMCONNSTR_api",
            "tls://api.internal.contoso.com:8443",
            "-",
            "-",
            "CUSTOMCONNSTR_api",
        ),
        (
            "Cosmos/account",
            "https://orders-cosmos.documents.azure.com/",
            "cosmosdb",
            "identity system-assigned",
            "Cosmos__accountEndpoint",
        ),
        (
            "acr/ordersacr",
            "https://ordersacr.azurecr.io/",
            "acr",
            "none",
            "DOCKER_CUSTOM_IMAGE_NAME, DOCKER_REGISTRY_SERVER_URL",
        ),
        (
            "acr/ordersacr/data",
            "https://ordersacr.westeurope.data.azurecr.io/",
            "acr",
            "none",
            "DOCKER_CUSTOM_IMAGE_NAME, REGION_NAME, DOCKER_REGISTRY_SERVER_URL",
        ),
        (
            "keyvault/orders-kv",
            "https://orders-kv.vault.azure.net/",
            "keyvault",
            "none",
            "ApiKey, DbPassword",
        ),
        (
            "Durable/blob",
            "https://durablestore.blob.core.windows.net/",
            "blob",
            durable,
            "Durable__accountName",
        ),
        (
            "Durable/queue",
            "https://durablestore.queue.core.windows.net/",
            "queue",
            durable,
            "Durable__accountName",
        ),
        (
            "Durable/table",
            "https://durablestore.table.core.windows.net/",
            "table",
            durable,
            "Durable__accountName",
        ),
        (
            "EventHubConn/amqp",
            "amqps://events-ns.servicebus.windows.net:5671",
            "-",
            "-",
            "EventHubConn",
        ),
        (
            "EventHubConn/websocket",
            "amqpwss://events-ns.servicebus.windows.net:443/$servicebus/websocket",
            "-",
            "-",
            "EventHubConn",
        ),
        (
            "MYSQLCONNSTR_legacy",
            "mysql://legacy.mysql.database.azure.com:3306/shop",
            "-",
            "-",
            "MYSQLCONNSTR_legacy",
        ),
        (
            "POSTGRESQLCONNSTR_pg",
            "postgres://pg.postgres.database.azure.com:5432/orders",
            "-",
            "-",
            "POSTGRESQLCONNSTR_pg",
        ),
        (
            "REDISCACHECONNSTR_cache",
            "rediss://orders.redis.cache.windows.net:6380",
            "-",
            "-",
            "REDISCACHECONNSTR_cache",
        ),
        (
            "Reports/blob",
            "https://reports.blob.core.windows.net/",
            "blob",
            "identity system-assigned",
            "Reports__serviceUri",
        ),
        (
            "SQLAZURECONNSTR_orders",
            "sqlserver://orders.database.windows.net:1433/orders",
            "-",
            "-",
            "SQLAZURECONNSTR_orders",
        ),
        (
            "ServiceBusConnection/amqp",
            "amqps://orders-ns.servicebus.windows.net:5671",
            "-",
            "-",
            "ServiceBusConnection__fullyQualifiedNamespace",
        ),
        (
            "ServiceBusConnection/websocket",
            "amqpwss://orders-ns.servicebus.windows.net:443/$servicebus/websocket",
            "-",
            "-",
            "ServiceBusConnection__fullyQualifiedNamespace",
        ),
        (
            "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING/file",
            "https://fnstore.file.core.windows.net/",
            "file",
            share_key,
            share,
        ),
        (
            "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING/smb",
            "smb://fnstore.file.core.windows.net:445",
            "-",
            "-",
            share,
        ),
        (
            "WEBSITE_RUN_FROM_PACKAGE",
            "tls://pkgstore.blob.core.windows.net:443",
            "-",
            "-",
            "WEBSITE_RUN_FROM_PACKAGE",
        ),
    ];
    let mut got = shown(&found);
    got.sort();
    let mut want: Vec<(String, String, String, String, String)> = expect
        .iter()
        .map(|(a, b, c, d, e)| {
            (
                a.to_string(),
                b.to_string(),
                c.to_string(),
                d.to_string(),
                e.to_string(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);

    // Discovered database and messaging targets carry no credentials: the protocol's
    // handshake proves the route; the TLS mode the string asks for is kept.
    for f in &found {
        match &f.spec {
            TargetSpec::Sql { auth, .. } => {
                assert!(auth.password.is_none() && auth.user.is_none(), "{}", f.name)
            }
            TargetSpec::Amqp {
                connection_string, ..
            }
            | TargetSpec::Kafka {
                connection_string, ..
            } => {
                assert!(connection_string.is_none(), "{}", f.name)
            }
            _ => {}
        }
    }
    let pg = found
        .iter()
        .find(|f| f.name == "POSTGRESQLCONNSTR_pg")
        .unwrap();
    assert_eq!(pg.db_tls, Some(DbTls::Require));

    // The unusable settings and the remarks are named, not quoted.
    for (setting, says) in [
        ("SQLCONNSTR_broken", "not a number"),
        ("MYSQLCONNSTR_broken", "no Host or Server"),
        ("DbPassword", "unresolved Key Vault reference"),
        (
            "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
            "over the VNet (WEBSITE_CONTENTOVERVNET=1)",
        ),
        ("DOCKER_REGISTRY_SERVER_URL", "geo-replica"),
    ] {
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with(&format!("{setting}:")) && n.contains(says)),
            "{setting}: {notes:#?}"
        );
    }
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
            "http://127.0.0.1:10000/devstoreaccount1",
            "http://127.0.0.1:10001/devstoreaccount1",
            "http://127.0.0.1:10002/devstoreaccount1"
        ]
    );
    assert_eq!(
        one(
            "DefaultEndpointsProtocol=https;AccountName=cnstore;AccountKey=PLANTED;EndpointSuffix=core.chinacloudapi.cn"
        ),
        [
            "https://cnstore.blob.core.chinacloudapi.cn/",
            "https://cnstore.queue.core.chinacloudapi.cn/",
            "https://cnstore.table.core.chinacloudapi.cn/"
        ]
    );
    // A SAS connection string names only the endpoints it has.
    assert_eq!(
        one(
            "BlobEndpoint=https://sas.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=PLANTED"
        ),
        ["https://sas.blob.core.windows.net/"]
    );
    // Explicit endpoints win over the account name, ports and plain HTTP included.
    assert_eq!(
        one(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=PLANTED;BlobEndpoint=http://azurite:10000/devstoreaccount1;QueueEndpoint=http://azurite:10001/devstoreaccount1;TableEndpoint=http://azurite:10002/devstoreaccount1"
        ),
        [
            "http://azurite:10000/devstoreaccount1",
            "http://azurite:10001/devstoreaccount1",
            "http://azurite:10002/devstoreaccount1"
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
                "[engine]\n{extra}\n[[targets]]\nname = \"blob\"\ntarget = \"https://fnstore.blob.core.windows.net/\"\n"
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
            .filter(|t| t.spec.to_string() == "https://fnstore.blob.core.windows.net/")
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
