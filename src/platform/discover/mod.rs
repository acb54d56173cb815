//! Targets discovered from the app's own settings: the storage account the Functions
//! host needs, the content share, the run-from-package URL, Application Insights, SQL,
//! PostgreSQL, MySQL and Redis connection strings, Service Bus / Event Hubs namespaces,
//! identity-based service URIs, Key Vault references and the container registry. The
//! portal's Functions diagnostics find the same list but only TCP-ping it, once; here
//! every entry is a normal target on the timer too, and each is the check its service
//! answers: a *service* check (`https://` through the service layer) for Storage, Azure
//! Files, Key Vault, Cosmos DB and Container Registry, `smb://` for the content share, the
//! protocol check (`postgres://`, `mysql://`, `redis(s)://`, `sqlserver://`) for a
//! database, `tls://` where no service layer applies (Application Insights, the package).
//!
//! No secret leaves a setting: a discovered target is built from the host, port and
//! database name alone, so no key, signature or password reaches the config or the
//! report, and every target records the setting it came from (`source`). Database logins
//! are not attempted: the protocol's own handshake proves the route (an explicit target
//! with `user` and `password = "env:NAME"` adds the login). A storage account key is
//! *referenced*: the check names the setting (`account_key = "env:NAME"`), and the engine
//! reads the key from it when the probe runs, for the one Shared Key read
//! ([`storage_key`]). An identity-based connection marks its checks for the identity read
//! (`authentication = "managed_identity"`, `client_id`).
//!
//! Files: `storage` (AzureWebJobsStorage, identity-based storage, the content share, the
//! key reference), `data` (SQL, PostgreSQL, MySQL, Redis, `CUSTOMCONNSTR_`), `services`
//! (Key Vault, Container Registry, Cosmos DB, Application Insights, the package),
//! `messaging` (Service Bus, Event Hubs).

mod data;
mod messaging;
mod services;
mod storage;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::config::{Config, TargetConfig};
use crate::spec::target::{self, TargetSpec};
use crate::spec::{DbTls, ManagedIdentity};

pub use self::storage::{StorageKey, storage_key};

/// One target and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub name: String,
    pub spec: TargetSpec,
    /// The app setting(s) it came from.
    pub source: String,
    /// An http(s) target for the service layer: which service and how it is asked.
    pub service: Option<ServiceCheck>,
    /// A database target's TLS mode, from its connection string (`SSL Mode`, `SslMode`).
    pub db_tls: Option<DbTls>,
}

/// How a discovered service check asks its service (`http.service`, `http.emulator`,
/// `http.account_key` / `http.identity` of the target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCheck {
    /// The config spelling (`blob`, `queue`, `table`, `file`, `keyvault`, `cosmosdb`, `acr`).
    pub kind: &'static str,
    /// Azurite: path-style URLs, its 403 a quirk.
    pub emulator: bool,
    pub auth: Auth,
}

/// The authorised read a discovered service check asks for after the credential-free
/// exchange. No variant holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// Credential-free only (a SAS connection string, a Key Vault reference, a registry).
    #[default]
    None,
    /// Shared Key with the account key of the connection string in app setting `setting`,
    /// read when the probe runs (the target's `account_key = "env:SETTING"`).
    SharedKey { setting: String },
    /// The app's managed identity (an identity-based connection; `client_id` from
    /// `PREFIX__clientId`).
    ManagedIdentity { client_id: Option<String> },
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
            cfg.targets.push(target_config(f));
            summary.added += 1;
        }
    }
    cfg.engine.discovery = Some(summary.clone());
    summary
}

/// The target a discovered check runs as.
fn target_config(f: Found) -> TargetConfig {
    let mut t = TargetConfig::adhoc(f.spec);
    t.name = f.name;
    t.source = Some(f.source);
    if let Some(s) = f.service {
        t.http.service = Some(s.kind.to_string());
        t.http.emulator = s.emulator;
        match s.auth {
            Auth::None => {}
            Auth::SharedKey { setting } => t.http.account_key = Some(setting),
            Auth::ManagedIdentity { client_id } => {
                t.http.identity = Some(ManagedIdentity { client_id })
            }
        }
    }
    if let Some(tls) = f.db_tls {
        t.db.tls = tls;
    }
    t
}

/// Every target the settings name, deduplicated by target (sources joined), in setting
/// name order so runs are comparable; plus notes on settings that could not be used and
/// remarks on the ones that were (never a value).
pub fn find(settings: &[(String, String)]) -> (Vec<Found>, Vec<String>) {
    let sorted: BTreeMap<&str, &str> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.trim()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let mut out: Vec<Found> = Vec::new();
    let mut notes = Vec::new();
    for (&key, &value) in &sorted {
        let mut ctx = Ctx {
            key,
            all: &sorted,
            out: &mut out,
            notes: &mut notes,
        };
        if let Err(why) = one(&mut ctx, value) {
            notes.push(format!("{key}: {why}"));
        }
    }
    (out, notes)
}

/// What a parser works with: the setting's name, every setting (for its siblings, e.g.
/// `__clientId`), and where targets and notes go.
pub(super) struct Ctx<'a> {
    pub key: &'a str,
    all: &'a BTreeMap<&'a str, &'a str>,
    out: &'a mut Vec<Found>,
    notes: &'a mut Vec<String>,
}

impl Ctx<'_> {
    /// A target from this setting (the source is the setting's name).
    pub fn add(&mut self, name: String, spec: TargetSpec) {
        let source = self.key.to_string();
        self.push(name, spec, source, None, None);
    }

    /// A target and where it came from, when more than this one setting says so.
    pub fn push(
        &mut self,
        name: String,
        spec: TargetSpec,
        source: String,
        service: Option<ServiceCheck>,
        db_tls: Option<DbTls>,
    ) {
        let shown = spec.to_string();
        if let Some(f) = self.out.iter_mut().find(|f| f.spec.to_string() == shown) {
            for s in source.split(", ") {
                if !f.source.split(", ").any(|x| x == s) {
                    f.source = format!("{}, {s}", f.source);
                }
            }
            return;
        }
        self.out.push(Found {
            name,
            spec,
            source,
            service,
            db_tls,
        });
    }

    /// A remark about this setting for the summary (never its value).
    pub fn note(&mut self, msg: impl AsRef<str>) {
        self.notes.push(format!("{}: {}", self.key, msg.as_ref()));
    }

    /// Another setting's value, by name, case-insensitively (the Functions host reads
    /// settings case-insensitively).
    pub fn setting(&self, name: &str) -> Option<(&str, &str)> {
        self.all
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(k, v)| (*k, *v))
    }
}

/// The targets one setting names. `Err` is a note for the summary (the setting may still
/// have produced targets); it says what is wrong without quoting the value.
fn one(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    let key = ctx.key;
    let upper = key.to_ascii_uppercase();
    if value.starts_with("@Microsoft.KeyVault(") {
        return services::key_vault_reference(ctx, value);
    }
    match upper.as_str() {
        "AZUREWEBJOBSSTORAGE" => storage::host_storage(ctx, value),
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING" => storage::content_share(ctx, value),
        // Read with the connection string above and the registry below.
        "WEBSITE_CONTENTSHARE" | "WEBSITE_CONTENTOVERVNET" | "REGION_NAME" => Ok(()),
        "WEBSITE_RUN_FROM_PACKAGE" | "WEBSITE_USE_ZIP" => services::package(ctx, value),
        "APPLICATIONINSIGHTS_CONNECTION_STRING" => services::app_insights(ctx, value),
        "APPINSIGHTS_INSTRUMENTATIONKEY" => {
            if ctx
                .setting("APPLICATIONINSIGHTS_CONNECTION_STRING")
                .is_some()
            {
                return Ok(());
            }
            ctx.add(key.to_string(), tls("dc.services.visualstudio.com", 443)?);
            Ok(())
        }
        "DOCKER_REGISTRY_SERVER_URL" => services::registry(ctx, value),
        "DOCKER_CUSTOM_IMAGE_NAME" => services::image(ctx, value),
        _ if upper.starts_with("SQLCONNSTR_") || upper.starts_with("SQLAZURECONNSTR_") => {
            ctx.add(key.to_string(), data::sql(value)?);
            Ok(())
        }
        _ if upper.starts_with("MYSQLCONNSTR_") => data::mysql(ctx, value),
        _ if upper.starts_with("POSTGRESQLCONNSTR_") => data::postgres(ctx, value),
        _ if upper.starts_with("CUSTOMCONNSTR_") => data::custom(ctx, value),
        _ if value
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("DOCKER|")) =>
        {
            services::image(ctx, value)
        }
        _ => match identity_based(ctx, value) {
            Some(r) => r,
            None if data::redis_named(key) => data::redis_setting(ctx, value),
            None if messaging::kafka_named(key) => messaging::brokers(ctx, value),
            None => sniff(ctx, value),
        },
    }
}

/// `Conn__blobServiceUri`, `Conn__accountName`, `Conn__fullyQualifiedNamespace`, ...
/// (identity-based connections). `None` when the key is not one of these.
fn identity_based(ctx: &mut Ctx<'_>, value: &str) -> Option<Result<(), String>> {
    let (prefix, suffix) = ctx.key.rsplit_once("__")?;
    let suffix = suffix.to_ascii_lowercase();
    Some(match suffix.as_str() {
        "blobserviceuri" | "serviceuri" => storage::identity_uri(ctx, prefix, "blob", value),
        "queueserviceuri" => storage::identity_uri(ctx, prefix, "queue", value),
        "tableserviceuri" => storage::identity_uri(ctx, prefix, "table", value),
        "accountname" => storage::identity_account(ctx, prefix, value),
        "accountendpoint" => {
            let auth = identity_auth(ctx, prefix);
            services::cosmos(ctx, prefix, value, auth)
        }
        "fullyqualifiednamespace" => messaging::namespace_setting(ctx, prefix, value),
        _ => return None,
    })
}

/// The identity an identity-based connection `prefix` uses: `prefix__credential` =
/// `managedidentity` (or unset: on Azure the system-assigned identity), with
/// `prefix__clientId` for a user-assigned one. Another credential leaves the check
/// credential-free, with a note.
pub(super) fn identity_auth(ctx: &mut Ctx<'_>, prefix: &str) -> Auth {
    let credential = ctx
        .setting(&format!("{prefix}__credential"))
        .map(|(_, v)| v.to_string());
    let client_id = ctx
        .setting(&format!("{prefix}__clientId"))
        .map(|(_, v)| v.to_string());
    match credential {
        Some(c) if !c.eq_ignore_ascii_case("managedidentity") => {
            ctx.note(format!(
                "`{prefix}__credential` is not `managedidentity`: the check runs without the identity read"
            ));
            Auth::None
        }
        _ => Auth::ManagedIdentity { client_id },
    }
}

/// Values in other settings that are unmistakably connection strings.
fn sniff(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    let pairs = pairs(value);
    if let Some(ep) = get(&pairs, "endpoint")
        .filter(|e| e.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("sb://")))
    {
        return messaging::connection_string(ctx, ep, &pairs);
    }
    let storage_like = get(&pairs, "accountname").is_some() && get(&pairs, "accountkey").is_some()
        || ["blobendpoint", "queueendpoint"]
            .iter()
            .any(|k| get(&pairs, k).is_some())
            && get(&pairs, "sharedaccesssignature").is_some();
    if storage_like {
        let source = ctx.key.to_string();
        return storage::connection_string(ctx, value, &["blob", "queue"], source);
    }
    if data::azure_redis(value) {
        return data::redis_setting(ctx, value);
    }
    Ok(())
}

// ---- small parsers; none of them ever returns a value in an error ----

/// `key=value;` pairs, keys lower-cased with spaces removed. Storage, Service Bus and
/// App Insights strings do not quote, and a value may itself hold `=` (SAS tokens).
pub(super) fn pairs(s: &str) -> Vec<(String, String)> {
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

pub(super) fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    let key: String = key.chars().filter(|c| !c.is_whitespace()).collect();
    pairs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The first of `keys` present.
pub(super) fn get_any<'a>(pairs: &'a [(String, String)], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| get(pairs, k))
}

/// Host, explicit port and whether the scheme is secure, from a URL. Only those three
/// leave this function: user-info, path and query (where SAS signatures live) do not.
pub(super) fn endpoint(s: &str) -> Option<(String, Option<u16>, bool)> {
    let u = url::Url::parse(s.trim()).ok()?;
    let host = u.host_str()?.to_ascii_lowercase();
    let secure = !matches!(u.scheme(), "http" | "ws");
    Some((host, u.port(), secure))
}

pub(super) fn host_literal(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

pub(super) fn by_scheme(host: &str, port: Option<u16>, secure: bool) -> Result<TargetSpec, String> {
    if secure {
        tls(host, port.unwrap_or(443))
    } else {
        tcp(host, port.unwrap_or(80))
    }
}

pub(super) fn tls(host: &str, port: u16) -> Result<TargetSpec, String> {
    parse(&format!("tls://{}:{port}", host_literal(host)))
}

pub(super) fn tcp(host: &str, port: u16) -> Result<TargetSpec, String> {
    parse(&format!("tcp://{}:{port}", host_literal(host)))
}

/// `http(s)://HOST[:PORT]/PATH` for the service layer: the endpoint alone (`path` is an
/// emulator's `/ACCOUNT`, else empty).
pub(super) fn web(
    secure: bool,
    host: &str,
    port: Option<u16>,
    path: &str,
) -> Result<TargetSpec, String> {
    let scheme = if secure { "https" } else { "http" };
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    parse(&format!("{scheme}://{}{port}/{path}", host_literal(host)))
}

/// A URI this module built from parts; its error names no value of a setting (the
/// parts are host names and ports, checked here).
pub(super) fn parse(uri: &str) -> Result<TargetSpec, String> {
    target::parse_uri(uri).map_err(|e| crate::secret::scrub(&e.0))
}
