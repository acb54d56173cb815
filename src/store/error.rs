//! Store failures: a stable class the doors can report and count, and a message that
//! never carries a credential (scrubbed, and every configured secret masked by value).

use std::fmt;

use serde::Serialize;

/// Stable store failure classes; the strings are part of the report contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum StoreClass {
    /// The settings are unusable (bad connection string, bad container name, ...).
    #[serde(rename = "store.config")]
    Config,
    /// No connection: refused, reset, DNS, TLS, or no answer in time.
    #[serde(rename = "store.unreachable")]
    Unreachable,
    /// The service answered 401/403, or no token could be had.
    #[serde(rename = "store.auth")]
    Auth,
    /// The container does not exist and could not be created.
    #[serde(rename = "store.container_missing")]
    ContainerMissing,
    /// A conditional write kept losing to concurrent writers.
    #[serde(rename = "store.conflict")]
    Conflict,
    /// A record could not be read back as ours (also reported per skipped blob).
    #[serde(rename = "store.corrupt")]
    Corrupt,
    /// Anything else the service answered (5xx, throttling, unexpected status).
    #[serde(rename = "store.error")]
    Error,
}

impl StoreClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreClass::Config => "store.config",
            StoreClass::Unreachable => "store.unreachable",
            StoreClass::Auth => "store.auth",
            StoreClass::ContainerMissing => "store.container_missing",
            StoreClass::Conflict => "store.conflict",
            StoreClass::Corrupt => "store.corrupt",
            StoreClass::Error => "store.error",
        }
    }
}

impl fmt::Display for StoreClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreError {
    pub class: StoreClass,
    pub message: String,
}

impl StoreError {
    /// The message is scrubbed of credential shapes (`sig=`, `AccountKey=`, ...).
    pub fn new(class: StoreClass, message: impl Into<String>) -> StoreError {
        StoreError {
            class,
            message: crate::secret::scrub(&message.into()),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

impl std::error::Error for StoreError {}

/// Masks every occurrence of the given secret values (and their URL-encoded forms).
pub(crate) fn mask_values(text: &str, secrets: &[&str]) -> String {
    let mut t = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        t = t.replace(s, crate::secret::MASK);
        let enc: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        if enc != *s {
            t = t.replace(&enc, crate::secret::MASK);
        }
        // The signature inside a SAS, which a URL may carry re-encoded.
        for part in s.split('&') {
            if let Some(v) = part.strip_prefix("sig=").filter(|v| v.len() >= 8) {
                t = t.replace(v, crate::secret::MASK);
            }
        }
    }
    t
}
