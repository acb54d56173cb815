//! The other Azure services an app's settings name: Key Vault references, the container
//! registry (`DOCKER_REGISTRY_SERVER_URL`, `DOCKER_CUSTOM_IMAGE_NAME`, `DOCKER|…` image
//! references as in `linuxFxVersion`), Cosmos DB (`__accountEndpoint`), Application
//! Insights and the run-from-package URL.
//!
//! Key Vault, the registry and Cosmos DB become service checks (`https://` through the
//! service layer: the service's own answer and, for Key Vault, its witness of our
//! address). Application Insights and the package stay `tls://`: the service layer does
//! not know them, and a GET of the package URL would download it.

use super::Auth;
use super::{Ctx, ServiceCheck, by_scheme, endpoint, get, pairs, tls, web};

fn check(kind: &'static str, auth: Auth) -> Option<ServiceCheck> {
    Some(ServiceCheck {
        kind,
        emulator: false,
        auth,
    })
}

/// `@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s/)` or
/// `@Microsoft.KeyVault(VaultName=v;SecretName=s)`: the vault's service check, and a
/// note, since seeing the reference at all means the platform did not resolve it.
pub(super) fn key_vault_reference(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    let (vault, port) = key_vault_host(value)?;
    let name = format!("keyvault/{}", vault.split('.').next().unwrap_or(&vault));
    let source = ctx.key.to_string();
    ctx.push(
        name,
        web(true, &vault, port, "")?,
        source,
        check("keyvault", Auth::None),
        None,
    );
    Err(
        "an unresolved Key Vault reference: the platform could not read the secret (check the app's identity, the vault's access policy or RBAC, and its network rules); the vault is probed"
            .into(),
    )
}

/// The vault's host (and a port, if the URI has one). `VaultName=` is the public
/// cloud's `vault.azure.net`.
fn key_vault_host(value: &str) -> Result<(String, Option<u16>), String> {
    let inner = value
        .strip_prefix("@Microsoft.KeyVault(")
        .and_then(|v| v.strip_suffix(')'))
        .ok_or("a malformed Key Vault reference")?;
    let p = pairs(inner);
    if let Some(uri) = get(&p, "secreturi") {
        let (host, port, secure) = endpoint(uri).ok_or("SecretUri is not a URL")?;
        if !secure {
            return Err("SecretUri is not an https URL".into());
        }
        return Ok((host, port));
    }
    let vault =
        get(&p, "vaultname").ok_or("a Key Vault reference without SecretUri or VaultName")?;
    let vault = vault.to_ascii_lowercase();
    if vault.is_empty()
        || vault.len() > 24
        || !vault
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("VaultName is not a vault name".into());
    }
    Ok((format!("{vault}.vault.azure.net"), None))
}

/// `PREFIX__accountEndpoint` (Cosmos DB, identity-based): its service check.
pub(super) fn cosmos(
    ctx: &mut Ctx<'_>,
    prefix: &str,
    value: &str,
    auth: Auth,
) -> Result<(), String> {
    let (host, port, secure) = endpoint(value).ok_or("not a URL")?;
    let name = format!("{prefix}/account");
    let source = ctx.key.to_string();
    if secure {
        ctx.push(
            name,
            web(true, &host, port, "")?,
            source,
            check("cosmosdb", auth),
            None,
        );
    } else {
        ctx.push(name, by_scheme(&host, port, false)?, source, None, None);
    }
    Ok(())
}

/// `WEBSITE_RUN_FROM_PACKAGE` / `WEBSITE_USE_ZIP`: a URL's host (`1` is the local package).
pub(super) fn package(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    if matches!(value, "0" | "1") {
        return Ok(());
    }
    let (host, port, secure) = endpoint(value).ok_or("not a URL (nor 0 or 1)")?;
    ctx.add(ctx.key.to_string(), by_scheme(&host, port, secure)?);
    Ok(())
}

pub(super) fn app_insights(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    let pairs = pairs(value);
    let host = match (
        get(&pairs, "ingestionendpoint"),
        get(&pairs, "endpointsuffix"),
    ) {
        (Some(u), _) => endpoint(u).ok_or("IngestionEndpoint is not a URL")?.0,
        (None, Some(suffix)) => format!("dc.{}", suffix.trim_matches('.')),
        (None, None) => "dc.services.visualstudio.com".to_string(),
    };
    ctx.add(ctx.key.to_string(), tls(&host, 443)?);
    Ok(())
}

/// The registry suffixes of the three clouds.
const ACR: &[&str] = &[".azurecr.io", ".azurecr.cn", ".azurecr.us"];

/// `DOCKER_REGISTRY_SERVER_URL`: `https://R.azurecr.io` (or without a scheme).
pub(super) fn registry(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    let url = if value.contains("://") {
        value.to_string()
    } else {
        format!("https://{value}")
    };
    let (host, port, _) = endpoint(&url).ok_or("not a registry URL")?;
    registry_host(ctx, &host, port)
}

/// `DOCKER_CUSTOM_IMAGE_NAME` or a `DOCKER|…` value: the registry of an image reference
/// (`R.azurecr.io/app:1.0`); an image without a registry host is Docker Hub's, not checked.
pub(super) fn image(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    let v = value.trim();
    let v = v
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("DOCKER|"))
        .map_or(v, |_| &v[7..]);
    let Some((first, _)) = v.split_once('/') else {
        return Ok(());
    };
    // The reference grammar: a first component with a dot, a port or `localhost` is a registry.
    if !(first.contains('.') || first.contains(':') || first == "localhost") {
        return Ok(());
    }
    let (host, port, _) = endpoint(&format!("https://{first}")).ok_or("not an image reference")?;
    registry_host(ctx, &host, port)
}

/// A registry's checks. Azure Container Registry: the login server `R.azurecr.io` and,
/// when the region is known (`REGION_NAME`, normalised as Azure's tools do: lower case,
/// no spaces), the data endpoint `R.REGION.data.azurecr.io` where pulls are redirected,
/// both service checks. Another registry: `tls://HOST:443`.
fn registry_host(ctx: &mut Ctx<'_>, host: &str, port: Option<u16>) -> Result<(), String> {
    let key = ctx.key.to_string();
    let Some(suffix) = ACR.iter().find(|s| host.ends_with(*s)) else {
        ctx.add(key, tls(host, port.unwrap_or(443))?);
        return Ok(());
    };
    let r = &host[..host.len() - suffix.len()];
    if r.is_empty() || r.contains('.') {
        return Err("not a registry login server (R.azurecr.io)".into());
    }
    let name = format!("acr/{r}");
    ctx.push(
        name.clone(),
        web(true, host, port, "")?,
        key.clone(),
        check("acr", Auth::None),
        None,
    );
    let region = ctx.setting("REGION_NAME").map(|(k, v)| {
        let r: String = v
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        (k.to_string(), r)
    });
    match region {
        Some((k, region)) if !region.is_empty() && region.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            let data = format!("{r}.{region}.data{suffix}");
            ctx.push(
                format!("{name}/data"),
                web(true, &data, None, "")?,
                format!("{key}, {k}"),
                check("acr", Auth::None),
                None,
            );
            ctx.note(format!(
                "the registry's data endpoint {data} (where pulls are redirected) assumes the registry or a geo-replica is in this app's region ({k}); it exists with dedicated data endpoints or a private endpoint, otherwise layers come from the registry's storage (*.blob.core.windows.net)"
            ));
        }
        _ => ctx.note(format!(
            "REGION_NAME is not set, so the registry's data endpoint {r}.REGION.data{suffix} (where pulls are redirected) was not added: add it as an https:// target"
        )),
    }
    Ok(())
}
