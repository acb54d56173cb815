//! Targets discovered from the app's own settings: the storage account the Functions
//! host needs, the content share, the run-from-package URL, Application Insights, SQL
//! connection strings, Service Bus / Event Hubs namespaces, identity-based service URIs
//! and Key Vault references. The portal's Functions diagnostics find the same list but
//! only TCP-ping it, once; here every entry is a normal target, DNS + TCP + TLS, on the
//! timer too.
//!
//! Only endpoints are taken from a setting: a discovered target is built from the host
//! (and port) alone, so no key, signature or password can reach the report, and every
//! target records the setting it came from (`source`). SQL targets are probed without
//! the setting's credentials (PRELOGIN and TLS prove the route); to test the login, add
//! an explicit `env:SQLCONNSTR_x` target.
//!
//! HTTPS endpoints become `tls://host:443`, not `https://` GETs: storage answers an
//! anonymous `GET /` with 400, Key Vault with 401, the run-from-package URL would
//! download the package, and none of that says more about the route than a verified
//! TLS handshake does.

use std::collections::BTreeMap;

use crate::config::{Config, TargetConfig};
use crate::spec::target::{self, TargetSpec};

/// One target and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub name: String,
    pub spec: TargetSpec,
    /// The app setting(s) it came from.
    pub source: String,
}

pub use crate::spec::DiscoverySummary as Summary;

/// `engine.discover`, defaulting to on inside Azure (where the settings are the app's
/// real dependencies) and off elsewhere (where the environment is a developer's shell).
pub fn enabled(setting: Option<bool>, on_azure: bool) -> (bool, String) {
    match setting {
        Some(true) => (true, "engine.discover = true".into()),
        Some(false) => (false, "engine.discover = false".into()),
        None if on_azure => (
            true,
            "on by default inside Azure (engine.discover not set)".into(),
        ),
        None => (
            false,
            "off by default outside Azure (set engine.discover = true to use this environment's settings)"
                .into(),
        ),
    }
}

/// Adds the discovered targets to `cfg` (after the configured ones, skipping any a
/// configured target already covers) and records the summary in `cfg.engine.discovery`.
/// `settings` is the process environment as pairs, injected so tests control it.
pub fn apply(cfg: &mut Config, settings: &[(String, String)]) -> Summary {
    let on_azure = settings
        .iter()
        .any(|(k, v)| k == "WEBSITE_SITE_NAME" && !v.trim().is_empty());
    let (on, why) = enabled(cfg.engine.discover, on_azure);
    let mut summary = Summary {
        enabled: on,
        why,
        ..Default::default()
    };
    if on {
        let (found, notes) = find(settings);
        summary.notes = notes;
        for f in found {
            let shown = f.spec.to_string();
            if let Some(t) = cfg.targets.iter().find(|t| t.spec.to_string() == shown) {
                summary.notes.push(format!(
                    "{shown} (from {}) is already configured as `{}`",
                    f.source, t.name
                ));
                continue;
            }
            if cfg.targets.iter().any(|t| t.name == f.name) {
                summary.notes.push(format!(
                    "discovered target `{}` (from {}) not added: a configured target has that name",
                    f.name, f.source
                ));
                continue;
            }
            let mut t = TargetConfig::adhoc(f.spec);
            t.name = f.name;
            t.source = Some(f.source);
            cfg.targets.push(t);
            summary.added += 1;
        }
    }
    cfg.engine.discovery = Some(summary.clone());
    summary
}

/// Every target the settings name, deduplicated by target (sources joined), in setting
/// name order so runs are comparable; plus notes on settings that could not be used.
pub fn find(settings: &[(String, String)]) -> (Vec<Found>, Vec<String>) {
    let sorted: BTreeMap<&str, &str> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.trim()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let mut out: Vec<Found> = Vec::new();
    let mut notes = Vec::new();
    for (&key, &value) in &sorted {
        let mut add = |name: String, spec: TargetSpec| push(&mut out, name, spec, key);
        if let Err(why) = one(key, value, &sorted, &mut add) {
            notes.push(format!("{key}: {why}"));
        }
    }
    (out, notes)
}

fn push(out: &mut Vec<Found>, name: String, spec: TargetSpec, source: &str) {
    let shown = spec.to_string();
    if let Some(f) = out.iter_mut().find(|f| f.spec.to_string() == shown) {
        if !f.source.split(", ").any(|s| s == source) {
            f.source = format!("{}, {source}", f.source);
        }
        return;
    }
    out.push(Found {
        name,
        spec,
        source: source.to_string(),
    });
}

type Add<'a> = dyn FnMut(String, TargetSpec) + 'a;

/// The targets one setting names. `Err` is a note for the summary (the setting may still
/// have produced targets); it says what is wrong without quoting the value.
fn one(
    key: &str,
    value: &str,
    all: &BTreeMap<&str, &str>,
    add: &mut Add<'_>,
) -> Result<(), String> {
    let upper = key.to_ascii_uppercase();
    if value.starts_with("@Microsoft.KeyVault(") {
        let vault = key_vault_host(value)?;
        let name = format!("keyvault/{}", vault.split('.').next().unwrap_or(&vault));
        add(name, tls(&vault, 443)?);
        // Seeing the reference at all means the platform did not replace it with the
        // secret: worth a note even though the vault is now a target.
        return Err(
            "an unresolved Key Vault reference: the platform could not read the secret (check the app's identity, the vault's access policy or RBAC, and its network rules); the vault is probed"
                .into(),
        );
    }
    match upper.as_str() {
        "AZUREWEBJOBSSTORAGE" => storage(key, value, &["blob", "queue", "table"], add),
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING" => storage(key, value, &["file"], add),
        "WEBSITE_RUN_FROM_PACKAGE" | "WEBSITE_USE_ZIP" => {
            if matches!(value, "0" | "1") {
                return Ok(());
            }
            let (host, port, secure) = endpoint(value).ok_or("not a URL (nor 0 or 1)")?;
            add(key.to_string(), by_scheme(&host, port, secure)?);
            Ok(())
        }
        "APPLICATIONINSIGHTS_CONNECTION_STRING" => {
            let pairs = pairs(value);
            let host = match (
                get(&pairs, "ingestionendpoint"),
                get(&pairs, "endpointsuffix"),
            ) {
                (Some(u), _) => endpoint(u).ok_or("IngestionEndpoint is not a URL")?.0,
                (None, Some(suffix)) => format!("dc.{}", suffix.trim_matches('.')),
                (None, None) => "dc.services.visualstudio.com".to_string(),
            };
            add(key.to_string(), tls(&host, 443)?);
            Ok(())
        }
        "APPINSIGHTS_INSTRUMENTATIONKEY" => {
            if all.contains_key("APPLICATIONINSIGHTS_CONNECTION_STRING") {
                return Ok(());
            }
            add(key.to_string(), tls("dc.services.visualstudio.com", 443)?);
            Ok(())
        }
        _ if upper.starts_with("SQLCONNSTR_") || upper.starts_with("SQLAZURECONNSTR_") => {
            add(key.to_string(), sql(value)?);
            Ok(())
        }
        _ if upper.starts_with("MYSQLCONNSTR_") => db_host(key, value, 3306, add),
        _ if upper.starts_with("POSTGRESQLCONNSTR_") => db_host(key, value, 5432, add),
        _ if upper.starts_with("CUSTOMCONNSTR_") => custom(key, value, add),
        _ => identity_based(key, value, add).unwrap_or_else(|| sniff(key, value, add)),
    }
}

/// `Conn__blobServiceUri`, `Conn__accountName`, `Conn__fullyQualifiedNamespace`, ...
/// (identity-based connections). `None` when the key is not one of these.
fn identity_based(key: &str, value: &str, add: &mut Add<'_>) -> Option<Result<(), String>> {
    let (prefix, suffix) = key.rsplit_once("__")?;
    let suffix = suffix.to_ascii_lowercase();
    let uri = |label: &str, add: &mut Add<'_>| -> Result<(), String> {
        let (host, port, secure) = endpoint(value).ok_or("not a URL")?;
        add(format!("{prefix}/{label}"), by_scheme(&host, port, secure)?);
        Ok(())
    };
    Some(match suffix.as_str() {
        "blobserviceuri" | "serviceuri" => uri("blob", add),
        "queueserviceuri" => uri("queue", add),
        "tableserviceuri" => uri("table", add),
        "accountendpoint" => uri("account", add),
        "accountname" => {
            let acct = value.to_ascii_lowercase();
            if acct.is_empty() || !acct.chars().all(|c| c.is_ascii_alphanumeric()) {
                Err("not a storage account name".into())
            } else {
                ["blob", "queue", "table"].iter().try_for_each(|svc| {
                    add(
                        format!("{prefix}/{svc}"),
                        tls(&format!("{acct}.{svc}.core.windows.net"), 443)?,
                    );
                    Ok(())
                })
            }
        }
        "fullyqualifiednamespace" => {
            let host = value.trim_end_matches('/').to_ascii_lowercase();
            let host = host.strip_prefix("sb://").unwrap_or(&host).to_string();
            namespace(prefix, &host, add)
        }
        _ => return None,
    })
}

/// Service Bus / Event Hubs: AMQP over TLS on 5671 (the SDKs' default) and 443 (AMQP
/// over WebSockets, the fallback when 5671 is blocked).
fn namespace(prefix: &str, host: &str, add: &mut Add<'_>) -> Result<(), String> {
    add(format!("{prefix}/amqp"), tls(host, 5671)?);
    add(format!("{prefix}/https"), tls(host, 443)?);
    Ok(())
}

/// Values in other settings that are unmistakably connection strings.
fn sniff(key: &str, value: &str, add: &mut Add<'_>) -> Result<(), String> {
    let pairs = pairs(value);
    if let Some(ep) =
        get(&pairs, "endpoint").filter(|e| e.to_ascii_lowercase().starts_with("sb://"))
    {
        let (host, _, _) = endpoint(ep).ok_or("Endpoint is not a URL")?;
        return namespace(key, &host, add);
    }
    let storage_like = get(&pairs, "accountname").is_some() && get(&pairs, "accountkey").is_some()
        || ["blobendpoint", "queueendpoint"]
            .iter()
            .any(|k| get(&pairs, k).is_some())
            && get(&pairs, "sharedaccesssignature").is_some();
    if storage_like {
        return storage(key, value, &["blob", "queue"], add);
    }
    Ok(())
}

fn custom(key: &str, value: &str, add: &mut Add<'_>) -> Result<(), String> {
    if value.contains("://") && !value.contains(';') {
        let (host, port, secure) = endpoint(value).ok_or("not a URL")?;
        add(key.to_string(), by_scheme(&host, port, secure)?);
        return Ok(());
    }
    let p = pairs(value);
    if [
        "server",
        "data source",
        "address",
        "addr",
        "network address",
    ]
    .iter()
    .any(|k| get(&p, k).is_some())
        && !value.to_ascii_lowercase().contains("endpoint=sb://")
    {
        add(key.to_string(), sql(value)?);
        return Ok(());
    }
    sniff(key, value, add)
}

/// `Server=host;Port=N` (MySQL) or `Host=host;Port=N` (PostgreSQL): TCP to the server.
fn db_host(key: &str, value: &str, default_port: u16, add: &mut Add<'_>) -> Result<(), String> {
    let p = pairs(value);
    let host = ["server", "host", "data source"]
        .iter()
        .find_map(|k| get(&p, k))
        .ok_or("no Server or Host key")?;
    let port = match get(&p, "port") {
        Some(s) => s.parse::<u16>().map_err(|_| "Port is not a number")?,
        None => default_port,
    };
    let spec =
        target::parse_uri(&format!("tcp://{}:{port}", host_literal(host))).map_err(|e| e.0)?;
    add(key.to_string(), spec);
    Ok(())
}

/// An ADO.NET string as a `sqlserver://` target without its credentials.
fn sql(value: &str) -> Result<TargetSpec, String> {
    let mut spec = target::parse_ado(value).map_err(|e| crate::secret::scrub(&e.0))?;
    if let TargetSpec::Sql { auth, .. } = &mut spec {
        auth.user = None;
        auth.password = None;
        auth.authentication = None;
    }
    Ok(spec)
}

/// A storage connection string's endpoints for `services`. Explicit `*Endpoint=` keys
/// win; otherwise `AccountName` + `EndpointSuffix` (default `core.windows.net`);
/// `UseDevelopmentStorage=true` is Azurite on 127.0.0.1:10000-10002.
fn storage(key: &str, value: &str, services: &[&str], add: &mut Add<'_>) -> Result<(), String> {
    let p = pairs(value);
    if get(&p, "usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        for (svc, port) in [("blob", 10000), ("queue", 10001), ("table", 10002)] {
            if services.contains(&svc) {
                add(format!("{key}/{svc}"), tcp("127.0.0.1", port)?);
            }
        }
        return Ok(());
    }
    let account = get(&p, "accountname").map(str::to_ascii_lowercase);
    let suffix = get(&p, "endpointsuffix")
        .unwrap_or("core.windows.net")
        .trim_matches('.')
        .to_ascii_lowercase();
    let secure =
        get(&p, "defaultendpointsprotocol").is_none_or(|s| !s.eq_ignore_ascii_case("http"));
    let mut any = false;
    for svc in services {
        let explicit = get(&p, &format!("{svc}endpoint"));
        let spec = match (explicit, &account) {
            (Some(url), _) => {
                let (host, port, sec) =
                    endpoint(url).ok_or(format!("{svc}Endpoint is not a URL"))?;
                by_scheme(&host, port, sec)?
            }
            (None, Some(acct)) => {
                let host = format!("{acct}.{svc}.{suffix}");
                by_scheme(&host, None, secure)?
            }
            (None, None) => continue,
        };
        add(format!("{key}/{svc}"), spec);
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err("a storage connection string without AccountName or service endpoints".into())
    }
}

/// `@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s/)` or
/// `@Microsoft.KeyVault(VaultName=v;SecretName=s)` (public cloud's vault.azure.net).
fn key_vault_host(value: &str) -> Result<String, String> {
    let inner = value
        .strip_prefix("@Microsoft.KeyVault(")
        .and_then(|v| v.strip_suffix(')'))
        .ok_or("a malformed Key Vault reference")?;
    let p = pairs(inner);
    if let Some(uri) = get(&p, "secreturi") {
        return Ok(endpoint(uri).ok_or("SecretUri is not a URL")?.0);
    }
    let vault =
        get(&p, "vaultname").ok_or("a Key Vault reference without SecretUri or VaultName")?;
    Ok(format!("{}.vault.azure.net", vault.to_ascii_lowercase()))
}

// ---- small parsers; none of them ever returns a value in an error ----

/// `key=value;` pairs, keys lower-cased with spaces removed. Storage, Service Bus and
/// App Insights strings do not quote, and a value may itself hold `=` (SAS tokens).
fn pairs(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            let k: String = k
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            Some((k, v.trim().to_string()))
        })
        .collect()
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    let key: String = key.chars().filter(|c| !c.is_whitespace()).collect();
    pairs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Host, explicit port and whether the scheme is secure, from a URL. Only those three
/// leave this function: user-info, path and query (where SAS signatures live) do not.
fn endpoint(s: &str) -> Option<(String, Option<u16>, bool)> {
    let u = url::Url::parse(s.trim()).ok()?;
    let host = u.host_str()?.to_ascii_lowercase();
    let secure = !matches!(u.scheme(), "http" | "ws");
    Some((host, u.port(), secure))
}

fn host_literal(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn by_scheme(host: &str, port: Option<u16>, secure: bool) -> Result<TargetSpec, String> {
    if secure {
        tls(host, port.unwrap_or(443))
    } else {
        tcp(host, port.unwrap_or(80))
    }
}

fn tls(host: &str, port: u16) -> Result<TargetSpec, String> {
    target::parse_uri(&format!("tls://{}:{port}", host_literal(host))).map_err(|e| e.0)
}

fn tcp(host: &str, port: u16) -> Result<TargetSpec, String> {
    target::parse_uri(&format!("tcp://{}:{port}", host_literal(host))).map_err(|e| e.0)
}
