//! Where the store is and how to get in, parsed once from the app settings.
//!
//! Precedence: `ROUTEPROOF_STORAGE` (a connection string or a blob service URL; `off`
//! turns the store off), then the `AzureWebJobsStorage` connection string, then the
//! identity-based form (`AzureWebJobsStorage__accountName` / `__blobServiceUri`, with
//! `__credential=managedidentity` and `__clientId` for a user-assigned identity). Nothing
//! here is hard-wired to a host: every endpoint comes from a setting, so tests point the
//! store at 127.0.0.1. Credentials are `Secret`s from the moment they are read.

use std::time::Duration;

use url::Url;

use super::error::{StoreClass, StoreError};
use crate::secret::Secret;

/// Azurite's published development account (its README: "Default Storage Account"); it
/// is public, but still held as a `Secret` like any other key.
pub const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const EMULATOR_BLOB: &str = "http://127.0.0.1:10000/devstoreaccount1";

pub const DEFAULT_CONTAINER: &str = "routeproof";
pub const DEFAULT_SCOPE: &str = "configured";
/// The scope of `routeproof probe --record` unless `ROUTEPROOF_STORAGE_SCOPE` names one:
/// a laptop's run sits in history beside the app's runs but never becomes the app's
/// `last` (what `?last`, `/api/metrics` and the page report) or counts in its uptime.
pub const CLI_SCOPE: &str = "cli";
pub const DEFAULT_HISTORY_DAYS: u32 = 7;
/// Enough for 7 days of a 1-minute timer at about 150 bytes per target per run.
pub const DEFAULT_MAX_BYTES_PER_TARGET: u64 = 2 * 1024 * 1024;
pub const DEFAULT_CACHE: Duration = Duration::from_secs(5);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the store authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// SharedKey signing with the account key.
    AccountKey(Secret),
    /// A shared access signature (the query string, without `?`).
    Sas(Secret),
    /// A token from the App Service / Functions identity endpoint
    /// (`IDENTITY_ENDPOINT`, header `X-IDENTITY-HEADER: $IDENTITY_HEADER`).
    ManagedIdentity(ManagedIdentity),
}

impl Auth {
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::AccountKey(_) => "account_key",
            Auth::Sas(_) => "sas",
            Auth::ManagedIdentity(m) if m.client_id.is_some() => "managed_identity_user",
            Auth::ManagedIdentity(_) => "managed_identity",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ManagedIdentity {
    pub endpoint: Url,
    pub header: Secret,
    /// A user-assigned identity's client id (`AzureWebJobsStorage__clientId`).
    pub client_id: Option<String>,
}

/// Which setting the store came from (shown in docs and the page, never its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    RouteproofStorage,
    ConnectionString,
    IdentityBased,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::RouteproofStorage => "ROUTEPROOF_STORAGE",
            Source::ConnectionString => "AzureWebJobsStorage",
            Source::IdentityBased => "AzureWebJobsStorage__accountName/__blobServiceUri",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The blob service endpoint, no trailing slash, no query (e.g.
    /// `https://acct.blob.core.windows.net` or `http://127.0.0.1:10000/devstoreaccount1`).
    pub endpoint: Url,
    pub account: String,
    pub auth: Auth,
    pub source: Source,
    pub container: String,
    /// Whose `last` record this app writes and reads by default.
    pub scope: String,
    pub history_days: u32,
    pub max_bytes_per_target: u64,
    /// This instance's name in history records (`WEBSITE_INSTANCE_ID`, else the hostname).
    pub instance: String,
    pub cache_ttl: Duration,
    pub timeout: Duration,
    /// Extra trust anchor (PEM file) for a private or emulator HTTPS endpoint
    /// (`ROUTEPROOF_STORAGE_CA_FILE`).
    pub ca_file: Option<String>,
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn get(env: Lookup, k: &str) -> Option<String> {
    env(k)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn config(msg: impl Into<String>) -> StoreError {
    StoreError::new(StoreClass::Config, msg)
}

impl StoreSettings {
    /// `None`: no storage configured (memory only, as without this module).
    pub fn from_env(env: Lookup) -> Option<Result<StoreSettings, StoreError>> {
        let (source, parsed) = if let Some(v) = get(env, "ROUTEPROOF_STORAGE") {
            if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") {
                return None;
            }
            (Source::RouteproofStorage, parse_override(&v, env))
        } else if let Some(v) = get(env, "AzureWebJobsStorage") {
            (Source::ConnectionString, parse_connection_string(&v))
        } else if get(env, "AzureWebJobsStorage__accountName").is_some()
            || get(env, "AzureWebJobsStorage__blobServiceUri").is_some()
        {
            (Source::IdentityBased, parse_identity(env))
        } else {
            return None;
        };
        Some(
            parsed
                .and_then(|(endpoint, account, auth)| finish(env, source, endpoint, account, auth)),
        )
    }
}

fn finish(
    env: Lookup,
    source: Source,
    endpoint: Url,
    account: String,
    auth: Auth,
) -> Result<StoreSettings, StoreError> {
    let container =
        get(env, "ROUTEPROOF_STORAGE_CONTAINER").unwrap_or_else(|| DEFAULT_CONTAINER.into());
    if !valid_container(&container) {
        return Err(config(format!(
            "ROUTEPROOF_STORAGE_CONTAINER `{container}` is not a container name (3-63 of a-z, 0-9, `-`, starting with a letter or digit)"
        )));
    }
    let scope = get(env, "ROUTEPROOF_STORAGE_SCOPE").unwrap_or_else(|| DEFAULT_SCOPE.into());
    if !valid_name(&scope) {
        return Err(config(format!(
            "ROUTEPROOF_STORAGE_SCOPE `{scope}` must be 1-64 of A-Z, a-z, 0-9, `-`, `_`, `.`"
        )));
    }
    let history_days = match get(env, "ROUTEPROOF_HISTORY_DAYS") {
        None => DEFAULT_HISTORY_DAYS,
        Some(v) => match v.parse::<u32>() {
            Ok(d) if (1..=90).contains(&d) => d,
            _ => {
                return Err(config(format!(
                    "ROUTEPROOF_HISTORY_DAYS `{v}` must be a whole number of days from 1 to 90"
                )));
            }
        },
    };
    let max_bytes_per_target = match get(env, "ROUTEPROOF_HISTORY_MAX_BYTES_PER_TARGET") {
        None => DEFAULT_MAX_BYTES_PER_TARGET,
        Some(v) => match v.parse::<u64>() {
            Ok(b) if b >= 4096 => b,
            _ => {
                return Err(config(format!(
                    "ROUTEPROOF_HISTORY_MAX_BYTES_PER_TARGET `{v}` must be a byte count of at least 4096"
                )));
            }
        },
    };
    let secs = |k: &str, default: Duration| -> Result<Duration, StoreError> {
        match get(env, k) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| config(format!("{k} `{v}` must be whole seconds"))),
        }
    };
    let cache_ttl = secs("ROUTEPROOF_STORAGE_CACHE_SECS", DEFAULT_CACHE)?;
    let timeout =
        secs("ROUTEPROOF_STORAGE_TIMEOUT_SECS", DEFAULT_TIMEOUT)?.max(Duration::from_secs(1));
    Ok(StoreSettings {
        endpoint,
        account,
        auth,
        source,
        container,
        scope,
        history_days,
        max_bytes_per_target,
        instance: instance_name(env),
        cache_ttl,
        timeout,
        ca_file: get(env, "ROUTEPROOF_STORAGE_CA_FILE"),
    })
}

/// `WEBSITE_INSTANCE_ID` (its first 16 characters: enough to tell instances apart), else
/// the hostname, else `local`; reduced to characters that are safe in a blob name.
pub fn instance_name(env: Lookup) -> String {
    let raw = get(env, "WEBSITE_INSTANCE_ID")
        .map(|v| v.chars().take(16).collect::<String>())
        .or_else(|| get(env, "HOSTNAME"))
        .or_else(|| get(env, "COMPUTERNAME"))
        .unwrap_or_else(|| "local".into());
    let s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() { "local".into() } else { s }
}

pub fn valid_container(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

pub fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !s.starts_with('.')
}

/// `key=value;…` pairs; keys case-insensitive, the value is everything after the first `=`.
fn pairs(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn parse_endpoint(s: &str, what: &str) -> Result<Url, StoreError> {
    let mut u = Url::parse(s.trim_end_matches('/'))
        .map_err(|e| config(format!("{what} is not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(config(format!("{what} must be an http:// or https:// URL")));
    }
    u.set_query(None);
    u.set_fragment(None);
    Ok(u)
}

/// The account a blob endpoint names: the first DNS label (`acct.blob.core.windows.net`)
/// or, for an IP host (path style, as Azurite), the first path segment.
fn account_of(u: &Url) -> Option<String> {
    match u.host() {
        Some(url::Host::Domain(d)) if d != "localhost" => d.split('.').next().map(str::to_string),
        _ => u
            .path_segments()
            .and_then(|mut s| s.next())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    }
}

/// An Azure Storage connection string (`DefaultEndpointsProtocol`, `AccountName`,
/// `AccountKey`, `SharedAccessSignature`, `BlobEndpoint`, `EndpointSuffix`,
/// `UseDevelopmentStorage=true`).
pub fn parse_connection_string(s: &str) -> Result<(Url, String, Auth), StoreError> {
    let kv = pairs(s);
    let find = |k: &str| {
        kv.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    if find("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let endpoint = parse_endpoint(EMULATOR_BLOB, "the emulator endpoint")?;
        return Ok((
            endpoint,
            EMULATOR_ACCOUNT.into(),
            Auth::AccountKey(Secret::new(EMULATOR_KEY)),
        ));
    }
    let account = find("accountname");
    let endpoint = match find("blobendpoint") {
        Some(b) => parse_endpoint(&b, "BlobEndpoint")?,
        None => {
            let Some(a) = &account else {
                return Err(config(
                    "the connection string has neither AccountName nor BlobEndpoint",
                ));
            };
            let proto = find("defaultendpointsprotocol")
                .unwrap_or_else(|| "https".into())
                .to_ascii_lowercase();
            if proto != "https" && proto != "http" {
                return Err(config("DefaultEndpointsProtocol must be https or http"));
            }
            let suffix = find("endpointsuffix").unwrap_or_else(|| "core.windows.net".into());
            parse_endpoint(&format!("{proto}://{a}.blob.{suffix}"), "the blob endpoint")?
        }
    };
    let account = account
        .or_else(|| account_of(&endpoint))
        .ok_or_else(|| config("the connection string names no account (AccountName)"))?;
    let auth = if let Some(k) = find("accountkey") {
        Auth::AccountKey(Secret::new(k))
    } else if let Some(sas) = find("sharedaccesssignature") {
        Auth::Sas(Secret::new(sas.trim_start_matches('?')))
    } else {
        return Err(config(
            "the connection string has no AccountKey or SharedAccessSignature (for a managed identity use AzureWebJobsStorage__accountName)",
        ));
    };
    Ok((endpoint, account, auth))
}

/// `ROUTEPROOF_STORAGE`: a connection string, or a blob service URL (with a SAS query, or
/// without one for the managed identity).
fn parse_override(v: &str, env: Lookup) -> Result<(Url, String, Auth), StoreError> {
    if !(v.starts_with("https://") || v.starts_with("http://")) {
        return parse_connection_string(v);
    }
    let raw =
        Url::parse(v).map_err(|e| config(format!("ROUTEPROOF_STORAGE is not a URL ({e})")))?;
    let sas = raw.query().filter(|q| !q.is_empty()).map(Secret::new);
    let endpoint = parse_endpoint(v.split('?').next().unwrap_or(v), "ROUTEPROOF_STORAGE")?;
    let account =
        account_of(&endpoint).ok_or_else(|| config("ROUTEPROOF_STORAGE names no account"))?;
    let auth = match sas {
        Some(s) => Auth::Sas(s),
        None => Auth::ManagedIdentity(managed_identity(
            env,
            get(env, "AzureWebJobsStorage__clientId"),
        )?),
    };
    Ok((endpoint, account, auth))
}

fn parse_identity(env: Lookup) -> Result<(Url, String, Auth), StoreError> {
    if let Some(c) = get(env, "AzureWebJobsStorage__credential")
        && !c.eq_ignore_ascii_case("managedidentity")
    {
        return Err(config(format!(
            "AzureWebJobsStorage__credential `{c}` is not supported: use managedidentity"
        )));
    }
    let endpoint = match get(env, "AzureWebJobsStorage__blobServiceUri") {
        Some(u) => parse_endpoint(&u, "AzureWebJobsStorage__blobServiceUri")?,
        None => {
            let a = get(env, "AzureWebJobsStorage__accountName").unwrap_or_default();
            if !a
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(config(
                    "AzureWebJobsStorage__accountName must be 3-24 of a-z, 0-9",
                ));
            }
            parse_endpoint(
                &format!("https://{a}.blob.core.windows.net"),
                "the blob endpoint",
            )?
        }
    };
    let account = get(env, "AzureWebJobsStorage__accountName")
        .or_else(|| account_of(&endpoint))
        .ok_or_else(|| config("the identity-based settings name no account"))?;
    let mi = managed_identity(env, get(env, "AzureWebJobsStorage__clientId"))?;
    Ok((endpoint, account, Auth::ManagedIdentity(mi)))
}

fn managed_identity(env: Lookup, client_id: Option<String>) -> Result<ManagedIdentity, StoreError> {
    let (Some(endpoint), Some(header)) =
        (get(env, "IDENTITY_ENDPOINT"), get(env, "IDENTITY_HEADER"))
    else {
        return Err(StoreError::new(
            StoreClass::Auth,
            "a managed identity is configured but IDENTITY_ENDPOINT/IDENTITY_HEADER are not set (outside Azure, use a connection string with AccountKey or SharedAccessSignature)",
        ));
    };
    let endpoint = Url::parse(&endpoint)
        .map_err(|e| config(format!("IDENTITY_ENDPOINT is not a URL ({e})")))?;
    Ok(ManagedIdentity {
        endpoint,
        header: Secret::new(header),
        client_id,
    })
}
