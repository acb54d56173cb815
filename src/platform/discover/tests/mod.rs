//! Each parser of discovery on its own: the checks a value yields (kind, host, port,
//! service, auth, TLS mode, source), and malformed values classified as notes that name
//! the setting and never quote it.

use super::*;

mod data;
mod services;
mod storage;

pub(super) fn run(pairs: &[(&str, &str)]) -> (Vec<Found>, Vec<String>) {
    let settings: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (found, notes) = find(&settings);
    let all = format!("{found:?} {notes:?}");
    assert!(
        !all.contains("PLANTED"),
        "a secret reached a target or note: {all}"
    );
    (found, notes)
}

/// `(name, target, service kind, auth, source)` of each check.
pub(super) fn shown(found: &[Found]) -> Vec<(String, String, String, String, String)> {
    found
        .iter()
        .map(|f| {
            let (kind, auth) = match &f.service {
                Some(s) => (
                    format!("{}{}", s.kind, if s.emulator { " (emulator)" } else { "" }),
                    match &s.auth {
                        Auth::SharedKey { setting } => format!("shared_key:{setting}"),
                        Auth::ManagedIdentity { client_id } => {
                            format!(
                                "managed_identity:{}",
                                client_id.as_deref().unwrap_or("system")
                            )
                        }
                        Auth::None => "none".into(),
                    },
                ),
                None => ("-".into(), "-".into()),
            };
            (
                f.name.clone(),
                f.spec.to_string(),
                kind,
                auth,
                f.source.clone(),
            )
        })
        .collect()
}

pub(super) fn targets(pairs: &[(&str, &str)]) -> Vec<String> {
    run(pairs).0.iter().map(|f| f.spec.to_string()).collect()
}

pub(super) fn note_for<'a>(notes: &'a [String], key: &str) -> &'a str {
    notes
        .iter()
        .find(|n| n.starts_with(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no note for {key}: {notes:?}"))
}

#[test]
fn apply_carries_the_service_options_into_the_target() {
    let mut cfg = Config::default();
    cfg.engine.discover = Some(true);
    let settings: Vec<(String, String)> = [
        ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
        (
            "POSTGRESQLCONNSTR_pg",
            "Host=pg;Username=u;Password=PLANTED;SslMode=Disable",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let s = apply(&mut cfg, &settings);
    assert_eq!(s.added, 4);
    let blob = &cfg.targets[0];
    assert_eq!(blob.http.service.as_deref(), Some("blob"));
    assert!(blob.http.emulator);
    assert_eq!(
        blob.http.account_key.as_deref(),
        Some("AzureWebJobsStorage")
    );
    assert_eq!(blob.http.identity, None);
    assert_eq!(cfg.targets[3].db.tls, DbTls::Disable);
    assert!(!format!("{cfg:?}").contains("PLANTED"));

    let mut cfg = Config::default();
    cfg.engine.discover = Some(true);
    let settings = vec![
        ("Jobs__accountName".to_string(), "fnstore".to_string()),
        ("Jobs__clientId".to_string(), "c-1".to_string()),
    ];
    apply(&mut cfg, &settings);
    let t = &cfg.targets[0];
    assert_eq!(
        t.http.identity,
        Some(ManagedIdentity {
            client_id: Some("c-1".into())
        })
    );
    assert_eq!(t.http.account_key, None);
}

#[test]
fn nothing_panics_on_hostile_values() {
    let hostile = [
        "",
        "=",
        ";",
        ",",
        "://",
        "a://",
        "@Microsoft.KeyVault(",
        "@Microsoft.KeyVault()",
        "DOCKER|",
        "DOCKER|/",
        "host=",
        "Host=;Port=",
        "[",
        "[::1",
        "[::1]:",
        "x:0",
        ":6380,ssl=true",
        "\u{0}\u{1}",
        "é:ü,ssl=é",
        "postgres://",
        "mysql://:@:0/",
        "rediss://",
        "sb://",
        "Endpoint=sb://;",
        "BlobEndpoint=;AccountName=",
        "DefaultEndpointsProtocol=;UseDevelopmentStorage=true",
    ];
    let keys = [
        "AzureWebJobsStorage",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_RUN_FROM_PACKAGE",
        "POSTGRESQLCONNSTR_x",
        "MYSQLCONNSTR_x",
        "CUSTOMCONNSTR_x",
        "SQLCONNSTR_x",
        "REDIS_X",
        "DOCKER_REGISTRY_SERVER_URL",
        "DOCKER_CUSTOM_IMAGE_NAME",
        "A__fullyQualifiedNamespace",
        "A__accountName",
        "A__blobServiceUri",
        "A__accountEndpoint",
        "Anything",
    ];
    for k in keys {
        for v in hostile {
            let _ = run(&[(k, v), ("REGION_NAME", v)]);
        }
    }
}
