//! Storage: `AzureWebJobsStorage` (a connection string with a key or a SAS, explicit
//! `BlobEndpoint=`/`QueueEndpoint=`/`TableEndpoint=`/`FileEndpoint=`, or
//! `UseDevelopmentStorage=true`), the identity-based form (`PREFIX__accountName`,
//! `__blobServiceUri`, `__queueServiceUri`, `__tableServiceUri` with `__credential` and
//! `__clientId`), and the content share (`WEBSITE_CONTENTAZUREFILECONNECTIONSTRING` with
//! `WEBSITE_CONTENTSHARE`): a service check per storage service (`https://` through the
//! service layer), and `smb://` 445 for the share's mount.
//!
//! A connection string with `AccountKey=` marks its checks `Auth::SharedKey` with
//! the *setting's name*: the key is read from the setting when the probe runs
//! ([`storage_key`]) and signs the one Shared Key read, so it is never copied into a
//! target, the config or the report. A SAS connection string gets the credential-free
//! check only.

use super::Auth;
use super::{Ctx, ServiceCheck, get, host_literal, identity_auth, pairs, parse, web};
use crate::secret::Secret;
use crate::store::settings::{EMULATOR_ACCOUNT, EMULATOR_KEY};

/// Azurite's ports for `UseDevelopmentStorage=true` (it has no file service).
const EMULATOR_PORTS: [(&str, u16); 3] = [("blob", 10000), ("queue", 10001), ("table", 10002)];

/// The storage key a Shared Key target references, read when the probe runs.
#[derive(Debug, Clone)]
pub struct StorageKey {
    /// `AccountName=` (the Azurite account for `UseDevelopmentStorage=true`); `None` for
    /// a setting holding the bare key.
    pub account: Option<String>,
    pub key: Secret,
}

/// The account key in a setting's value: a connection string's `AccountKey=`, the
/// Azurite key for `UseDevelopmentStorage=true`, or the value itself when it is a bare
/// base64 key. The error names what is missing, never the value.
pub fn storage_key(value: &str) -> Result<StorageKey, String> {
    let value = value.trim();
    let p = pairs(value);
    if dev_storage(&p) {
        return Ok(StorageKey {
            account: Some(EMULATOR_ACCOUNT.into()),
            key: Secret::new(EMULATOR_KEY),
        });
    }
    if let Some(k) = get(&p, "accountkey") {
        return Ok(StorageKey {
            account: get(&p, "accountname").map(str::to_string),
            key: Secret::new(k),
        });
    }
    let bare = !value.contains(';')
        && !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if bare {
        return Ok(StorageKey {
            account: None,
            key: Secret::new(value),
        });
    }
    Err("it holds no AccountKey (a SAS or an identity-based connection has no key)".into())
}

fn dev_storage(p: &[(String, String)]) -> bool {
    get(p, "usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `AzureWebJobsStorage`: blob, queue and table.
pub(super) fn host_storage(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    let source = ctx.key.to_string();
    connection_string(ctx, value, &["blob", "queue", "table"], source)
}

/// A storage connection string's service checks for `services` (the setting's name as
/// the source unless `source` says more). Explicit `*Endpoint=` keys win; otherwise
/// `AccountName` + `EndpointSuffix` (default `core.windows.net`) over
/// `DefaultEndpointsProtocol`; `UseDevelopmentStorage=true` is Azurite on
/// `http://127.0.0.1:10000-10002/devstoreaccount1`.
pub(super) fn connection_string(
    ctx: &mut Ctx<'_>,
    value: &str,
    services: &[&'static str],
    source: String,
) -> Result<(), String> {
    let key = ctx.key.to_string();
    let p = pairs(value);
    let shared_key = Auth::SharedKey {
        setting: key.clone(),
    };
    if dev_storage(&p) {
        let mut any = false;
        for (svc, port) in EMULATOR_PORTS {
            if let Some(svc) = services.iter().find(|s| **s == svc) {
                let spec = web(false, "127.0.0.1", Some(port), EMULATOR_ACCOUNT)?;
                let check = service(svc, true, shared_key.clone());
                ctx.push(format!("{key}/{svc}"), spec, source.clone(), check, None);
                any = true;
            }
        }
        return if any {
            Ok(())
        } else {
            Err("UseDevelopmentStorage=true has no file service (Azurite emulates blob, queue and table)".into())
        };
    }
    let account = get(&p, "accountname").map(str::to_ascii_lowercase);
    if let Some(a) = &account
        && !valid_account(a)
    {
        return Err("AccountName is not a storage account name (3-24 of a-z, 0-9)".into());
    }
    let suffix = get(&p, "endpointsuffix")
        .unwrap_or("core.windows.net")
        .trim_matches('.')
        .to_ascii_lowercase();
    let secure = match get(&p, "defaultendpointsprotocol").map(str::to_ascii_lowercase) {
        None => true,
        Some(s) if s == "https" => true,
        Some(s) if s == "http" => false,
        Some(_) => return Err("DefaultEndpointsProtocol is not https or http".into()),
    };
    let auth = if get(&p, "accountkey").is_some() {
        shared_key
    } else {
        Auth::None
    };
    let mut any = false;
    for svc in services {
        let (host, port, sec, emulator, path) = match get(&p, &format!("{svc}endpoint")) {
            Some(url) => explicit_endpoint(url, account.as_deref())
                .ok_or(format!("{}Endpoint is not an http(s) URL", capital(svc)))?,
            None => match &account {
                Some(acct) => (
                    format!("{acct}.{svc}.{suffix}"),
                    None,
                    secure,
                    false,
                    String::new(),
                ),
                None => continue,
            },
        };
        let spec = web(sec, &host, port, &path)?;
        let check = service(svc, emulator, auth.clone());
        ctx.push(format!("{key}/{svc}"), spec, source.clone(), check, None);
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err("a storage connection string without AccountName or service endpoints".into())
    }
}

fn service(kind: &'static str, emulator: bool, auth: Auth) -> Option<ServiceCheck> {
    Some(ServiceCheck {
        kind,
        emulator,
        auth,
    })
}

fn capital(svc: &str) -> String {
    let mut c = svc.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn valid_account(a: &str) -> bool {
    (3..=24).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// An explicit service endpoint: host, port, secure, emulator, path. Path-style (the
/// first path segment is the account, or the host is an address or `localhost` with a
/// path) is an emulator's URL (Azurite); Azure's are host-style. Nothing of the query or
/// user-info is kept.
fn explicit_endpoint(
    url: &str,
    account: Option<&str>,
) -> Option<(String, Option<u16>, bool, bool, String)> {
    let u = url::Url::parse(url.trim()).ok()?;
    let secure = match u.scheme() {
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let host = u.host_str()?.to_ascii_lowercase();
    let first = u
        .path_segments()
        .and_then(|mut s| s.next())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let local = host == "localhost" || !matches!(u.host(), Some(url::Host::Domain(_)));
    let emulator = first
        .as_deref()
        .is_some_and(|f| Some(f) == account || (local && valid_emulator_account(f)));
    let path = if emulator {
        first.unwrap_or_default()
    } else {
        String::new()
    };
    Some((host, u.port(), secure, emulator, path))
}

fn valid_emulator_account(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `PREFIX__blobServiceUri` (also `__serviceUri`), `__queueServiceUri`,
/// `__tableServiceUri`: the service named, with the connection's identity.
pub(super) fn identity_uri(
    ctx: &mut Ctx<'_>,
    prefix: &str,
    svc: &'static str,
    value: &str,
) -> Result<(), String> {
    let (host, port, secure, emulator, path) =
        explicit_endpoint(value, None).ok_or("not an http(s) URL")?;
    let auth = identity_auth(ctx, prefix);
    let spec = web(secure, &host, port, &path)?;
    let source = ctx.key.to_string();
    ctx.push(
        format!("{prefix}/{svc}"),
        spec,
        source,
        service(svc, emulator, auth),
        None,
    );
    Ok(())
}

/// `PREFIX__accountName`: blob, queue and table of the account in the public cloud (a
/// sovereign cloud's account is named by the service URIs instead).
pub(super) fn identity_account(ctx: &mut Ctx<'_>, prefix: &str, value: &str) -> Result<(), String> {
    let acct = value.to_ascii_lowercase();
    if !valid_account(&acct) {
        return Err("not a storage account name (3-24 of a-z, 0-9)".into());
    }
    let auth = identity_auth(ctx, prefix);
    let source = ctx.key.to_string();
    for svc in ["blob", "queue", "table"] {
        let spec = web(true, &format!("{acct}.{svc}.core.windows.net"), None, "")?;
        ctx.push(
            format!("{prefix}/{svc}"),
            spec,
            source.clone(),
            service(svc, false, auth.clone()),
            None,
        );
    }
    Ok(())
}

/// The content share: the file service over HTTPS (a service check, Shared Key with the
/// connection string's key) and the SMB mount on 445 (`smb://`), both sourced from the
/// connection string and the share's settings; a note on whether the share is mounted
/// over the VNet.
pub(super) fn content_share(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    let mut source = ctx.key.to_string();
    for s in ["WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTOVERVNET"] {
        if let Some((name, _)) = ctx.setting(s) {
            source = format!("{source}, {name}");
        }
    }
    connection_string(ctx, value, &["file"], source.clone())?;
    let p = pairs(value);
    let host = match get(&p, "fileendpoint") {
        Some(url) => explicit_endpoint(url, None).map(|e| e.0),
        None => get(&p, "accountname").map(|a| {
            let suffix = get(&p, "endpointsuffix")
                .unwrap_or("core.windows.net")
                .trim_matches('.')
                .to_ascii_lowercase();
            format!("{}.file.{suffix}", a.to_ascii_lowercase())
        }),
    };
    if let Some(host) = host {
        let spec = parse(&format!("smb://{}", host_literal(&host)))?;
        ctx.push(format!("{}/smb", ctx.key), spec, source, None, None);
    }
    let over_vnet = ctx
        .setting("WEBSITE_CONTENTOVERVNET")
        .and_then(|(_, v)| crate::setting::parse_yes_no(v));
    ctx.note(if over_vnet == Some(true) {
        "the content share is mounted over the VNet (WEBSITE_CONTENTOVERVNET=1): 443 and 445 to the file endpoint go through the integration subnet"
    } else {
        "WEBSITE_CONTENTOVERVNET is not 1: whether the content share is mounted over the VNet is the site property vnetContentShareEnabled, which the app cannot see; with the storage account's public access off it must be on, with 443 and 445 open to the file endpoint"
    });
    Ok(())
}
