//! Which Azure service a host is: recognised from the service's well-known host suffix
//! (public cloud, Azure China, Azure US Government), or declared in config for emulators
//! (Azurite) and custom domains, where the name says nothing.
//!
//! Suffixes, per Microsoft's "Azure Private Endpoint private DNS zone values" page (the
//! public names whose `privatelink.` zones a private endpoint uses) and each service's
//! sovereign-cloud page: storage `core.windows.net` / `core.chinacloudapi.cn` /
//! `core.usgovcloudapi.net`; Key Vault `vault.azure.net` / `vault.azure.cn` /
//! `vault.usgovcloudapi.net`; Cosmos DB `documents.azure.com` / `documents.azure.cn` /
//! `documents.azure.us`; App Configuration `azconfig.io` / `azconfig.azure.cn` /
//! `azconfig.azure.us`; Container Registry `azurecr.io` / `azurecr.cn` / `azurecr.us`;
//! App Service / Functions apps `azurewebsites.net` / `chinacloudsites.cn` /
//! `azurewebsites.us` (the app's own name; `APP.scm.…` is its Kudu site, not recognised).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The services the service layer knows how to ask.
/// Serialised as its config spelling (`blob`, `keyvault`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    StorageBlob,
    StorageQueue,
    StorageTable,
    StorageDfs,
    /// Azure Files over REST (443). The SMB mount (445) is `probe::smb`.
    StorageFile,
    KeyVault,
    CosmosDb,
    AppConfiguration,
    ContainerRegistry,
    /// An App Service / Functions app running routeproof, asked for its anonymous
    /// `/api/health`: the inbound witness (`handler::client`), the app's statement of the
    /// address our request came from.
    FunctionApp,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 10] = [
        ServiceKind::StorageBlob,
        ServiceKind::StorageQueue,
        ServiceKind::StorageTable,
        ServiceKind::StorageDfs,
        ServiceKind::StorageFile,
        ServiceKind::KeyVault,
        ServiceKind::CosmosDb,
        ServiceKind::AppConfiguration,
        ServiceKind::ContainerRegistry,
        ServiceKind::FunctionApp,
    ];

    /// The config spelling (`service = "blob"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::StorageBlob => "blob",
            ServiceKind::StorageQueue => "queue",
            ServiceKind::StorageTable => "table",
            ServiceKind::StorageDfs => "dfs",
            ServiceKind::StorageFile => "file",
            ServiceKind::KeyVault => "keyvault",
            ServiceKind::CosmosDb => "cosmosdb",
            ServiceKind::AppConfiguration => "appconfig",
            ServiceKind::ContainerRegistry => "acr",
            ServiceKind::FunctionApp => "app",
        }
    }

    pub fn is_storage(self) -> bool {
        matches!(
            self,
            ServiceKind::StorageBlob
                | ServiceKind::StorageQueue
                | ServiceKind::StorageTable
                | ServiceKind::StorageDfs
                | ServiceKind::StorageFile
        )
    }

    /// The private DNS zone a private endpoint for this service uses (public cloud).
    pub fn privatelink_zone(self) -> &'static str {
        match self {
            ServiceKind::StorageBlob => "privatelink.blob.core.windows.net",
            ServiceKind::StorageQueue => "privatelink.queue.core.windows.net",
            ServiceKind::StorageTable => "privatelink.table.core.windows.net",
            ServiceKind::StorageDfs => "privatelink.dfs.core.windows.net",
            ServiceKind::StorageFile => "privatelink.file.core.windows.net",
            ServiceKind::KeyVault => "privatelink.vaultcore.azure.net",
            ServiceKind::CosmosDb => "privatelink.documents.azure.com",
            ServiceKind::AppConfiguration => "privatelink.azconfig.io",
            ServiceKind::ContainerRegistry => "privatelink.azurecr.io",
            ServiceKind::FunctionApp => "privatelink.azurewebsites.net",
        }
    }

    /// What people call it, for messages.
    pub fn label(self) -> &'static str {
        match self {
            ServiceKind::StorageBlob => "Storage (blob)",
            ServiceKind::StorageQueue => "Storage (queue)",
            ServiceKind::StorageTable => "Storage (table)",
            ServiceKind::StorageDfs => "Storage (dfs)",
            ServiceKind::StorageFile => "Storage (file)",
            ServiceKind::KeyVault => "Key Vault",
            ServiceKind::CosmosDb => "Cosmos DB",
            ServiceKind::AppConfiguration => "App Configuration",
            ServiceKind::ContainerRegistry => "Container Registry",
            ServiceKind::FunctionApp => "routeproof on the app",
        }
    }
}

impl Serialize for ServiceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown service `{0}` (one of blob, queue, table, dfs, file, keyvault, cosmosdb, appconfig, acr, app)"
)]
pub struct UnknownService(pub String);

impl FromStr for ServiceKind {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let k = s.trim().to_ascii_lowercase();
        let kind = match k.as_str() {
            "blob" | "storage-blob" | "storage_blob" => ServiceKind::StorageBlob,
            "queue" | "storage-queue" | "storage_queue" => ServiceKind::StorageQueue,
            "table" | "storage-table" | "storage_table" => ServiceKind::StorageTable,
            "dfs" | "storage-dfs" | "storage_dfs" => ServiceKind::StorageDfs,
            "file" | "storage-file" | "storage_file" => ServiceKind::StorageFile,
            "keyvault" | "key-vault" | "key_vault" | "vault" => ServiceKind::KeyVault,
            "cosmosdb" | "cosmos-db" | "cosmos_db" | "cosmos" => ServiceKind::CosmosDb,
            "appconfig" | "app-configuration" | "app_configuration" | "appconfiguration" => {
                ServiceKind::AppConfiguration
            }
            "acr" | "container-registry" | "container_registry" | "registry" => {
                ServiceKind::ContainerRegistry
            }
            "app" | "functionapp" | "function-app" | "function_app" | "appservice"
            | "app-service" | "app_service" | "routeproof" => ServiceKind::FunctionApp,
            _ => return Err(UnknownService(s.to_string())),
        };
        Ok(kind)
    }
}

/// Which Azure cloud a recognised host belongs to: token scopes differ per cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cloud {
    Public,
    China,
    UsGov,
}

/// A host the service layer will ask, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceTarget {
    pub kind: ServiceKind,
    pub cloud: Cloud,
    /// The account, vault, registry or store name (the host's first label, or declared).
    pub account: String,
    /// The host name the request goes to (the Host header).
    pub host: String,
    /// Declared as an emulator (Azurite): path-style URLs (`/ACCOUNT/...`), and answers
    /// that differ from Azure's are emulator quirks, not verdicts.
    pub emulator: bool,
    /// Recognised from the host name (false: declared in config).
    pub recognised: bool,
    /// The path asked, for an app (`FunctionApp`): the target URL's health path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Suffix → (kind, cloud). Longest-first is not needed: no suffix ends another.
const SUFFIXES: &[(&str, ServiceKind, Cloud)] = &[
    (
        ".blob.core.windows.net",
        ServiceKind::StorageBlob,
        Cloud::Public,
    ),
    (
        ".queue.core.windows.net",
        ServiceKind::StorageQueue,
        Cloud::Public,
    ),
    (
        ".table.core.windows.net",
        ServiceKind::StorageTable,
        Cloud::Public,
    ),
    (
        ".dfs.core.windows.net",
        ServiceKind::StorageDfs,
        Cloud::Public,
    ),
    (
        ".file.core.windows.net",
        ServiceKind::StorageFile,
        Cloud::Public,
    ),
    (
        ".blob.core.chinacloudapi.cn",
        ServiceKind::StorageBlob,
        Cloud::China,
    ),
    (
        ".queue.core.chinacloudapi.cn",
        ServiceKind::StorageQueue,
        Cloud::China,
    ),
    (
        ".table.core.chinacloudapi.cn",
        ServiceKind::StorageTable,
        Cloud::China,
    ),
    (
        ".dfs.core.chinacloudapi.cn",
        ServiceKind::StorageDfs,
        Cloud::China,
    ),
    (
        ".file.core.chinacloudapi.cn",
        ServiceKind::StorageFile,
        Cloud::China,
    ),
    (
        ".blob.core.usgovcloudapi.net",
        ServiceKind::StorageBlob,
        Cloud::UsGov,
    ),
    (
        ".queue.core.usgovcloudapi.net",
        ServiceKind::StorageQueue,
        Cloud::UsGov,
    ),
    (
        ".table.core.usgovcloudapi.net",
        ServiceKind::StorageTable,
        Cloud::UsGov,
    ),
    (
        ".dfs.core.usgovcloudapi.net",
        ServiceKind::StorageDfs,
        Cloud::UsGov,
    ),
    (
        ".file.core.usgovcloudapi.net",
        ServiceKind::StorageFile,
        Cloud::UsGov,
    ),
    (".vault.azure.net", ServiceKind::KeyVault, Cloud::Public),
    (".vault.azure.cn", ServiceKind::KeyVault, Cloud::China),
    (
        ".vault.usgovcloudapi.net",
        ServiceKind::KeyVault,
        Cloud::UsGov,
    ),
    (".documents.azure.com", ServiceKind::CosmosDb, Cloud::Public),
    (".documents.azure.cn", ServiceKind::CosmosDb, Cloud::China),
    (".documents.azure.us", ServiceKind::CosmosDb, Cloud::UsGov),
    (".azconfig.io", ServiceKind::AppConfiguration, Cloud::Public),
    (
        ".azconfig.azure.cn",
        ServiceKind::AppConfiguration,
        Cloud::China,
    ),
    (
        ".azconfig.azure.us",
        ServiceKind::AppConfiguration,
        Cloud::UsGov,
    ),
    (".azurecr.io", ServiceKind::ContainerRegistry, Cloud::Public),
    (".azurecr.cn", ServiceKind::ContainerRegistry, Cloud::China),
    (".azurecr.us", ServiceKind::ContainerRegistry, Cloud::UsGov),
    (
        ".azurewebsites.net",
        ServiceKind::FunctionApp,
        Cloud::Public,
    ),
    (
        ".chinacloudsites.cn",
        ServiceKind::FunctionApp,
        Cloud::China,
    ),
    (".azurewebsites.us", ServiceKind::FunctionApp, Cloud::UsGov),
];

impl ServiceTarget {
    /// Recognises `host` from its suffix. `ACCOUNT.privatelink.blob.core.windows.net` (the
    /// CNAME target) is recognised too, as the account's own service. A registry's data
    /// endpoint (`R.REGION.data.azurecr.io`) is the registry `R`.
    pub fn recognise(host: &str) -> Option<ServiceTarget> {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        for (suffix, kind, cloud) in SUFFIXES {
            let Some(prefix) = h.strip_suffix(suffix) else {
                continue;
            };
            let prefix = prefix.strip_suffix(".privatelink").unwrap_or(prefix);
            let mut labels = prefix.split('.');
            let account = labels.next().unwrap_or_default();
            let rest: Vec<&str> = labels.collect();
            let valid = !account.is_empty()
                && match kind {
                    // R.azurecr.io or R.REGION.data.azurecr.io
                    ServiceKind::ContainerRegistry => {
                        rest.is_empty() || (rest.len() == 2 && rest[1] == "data")
                    }
                    _ => rest.is_empty(),
                };
            if !valid {
                return None;
            }
            return Some(ServiceTarget {
                kind: *kind,
                cloud: *cloud,
                account: account.to_string(),
                host: h.clone(),
                emulator: false,
                recognised: true,
                path: None,
            });
        }
        None
    }

    /// A service declared in config (`service = "blob"`) for a host whose name says
    /// nothing: an emulator (Azurite on 127.0.0.1:10000, account `devstoreaccount1`) or a
    /// custom domain. Without an explicit account the first label of the host is used.
    pub fn declared(
        kind: ServiceKind,
        host: &str,
        account: Option<&str>,
        emulator: bool,
    ) -> ServiceTarget {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        let account = match account {
            Some(a) => a.to_string(),
            None if emulator => "devstoreaccount1".to_string(),
            None => h.split('.').next().unwrap_or_default().to_string(),
        };
        let cloud = ServiceTarget::recognise(&h)
            .map(|t| t.cloud)
            .unwrap_or(Cloud::Public);
        ServiceTarget {
            kind,
            cloud,
            account,
            host: h,
            emulator,
            recognised: false,
            path: None,
        }
    }

    /// The path prefix of every request: `/ACCOUNT` for an emulator (path-style URLs),
    /// empty for Azure (the account is in the host name).
    pub fn path_prefix(&self) -> String {
        if self.emulator {
            format!("/{}", self.account)
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
#[path = "kind_tests.rs"]
mod tests;
