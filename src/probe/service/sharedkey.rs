//! Storage Shared Key authorisation of the one read, for the places where the app holds an
//! account key (a key-based `AzureWebJobsStorage`, the content share's connection string)
//! instead of an identity. The signature follows Microsoft's Storage REST page "Authorize
//! with Shared Key" (learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key):
//! blob, queue and file sign the twelve standard headers, the canonicalised `x-ms-*`
//! headers and the canonicalised resource; the Table service signs
//! `VERB\nContent-MD5\nContent-Type\nDate\nCanonicalizedResource` (`?comp` only).
//!
//! The key and the signature are `Secret`s; the key is decoded here and never leaves.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::kind::{ServiceKind, ServiceTarget};
use super::request::{Purpose, ServiceRequest, anonymous};
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedKeyError {
    #[error("the account key is not base64")]
    KeyNotBase64,
    #[error("Shared Key is not used for {0}")]
    NotStorage(ServiceKind),
}

/// The authorised read of `t`, signed with `account_key` (base64, as in a connection string).
pub fn shared_key(
    t: &ServiceTarget,
    account_key: &Secret,
    now: SystemTime,
) -> Result<ServiceRequest, SharedKeyError> {
    if !t.kind.is_storage() {
        return Err(SharedKeyError::NotStorage(t.kind));
    }
    let key = STANDARD
        .decode(account_key.expose().trim())
        .map_err(|_| SharedKeyError::KeyNotBase64)?;
    let mut req = anonymous(t);
    req.purpose = Purpose::Authorized;
    let date = httpdate::fmt_http_date(now);
    req.headers.push(("x-ms-date", date.clone()));
    let (path, query) = match req.path.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (req.path.clone(), String::new()),
    };
    let path = if path.is_empty() { "/".into() } else { path };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect();
    let string_to_sign = if t.kind == ServiceKind::StorageTable {
        let mut resource = format!("/{}{}", t.account, path);
        if let Some((_, v)) = params.iter().find(|(k, _)| k == "comp") {
            resource.push_str(&format!("?comp={v}"));
        }
        format!("GET\n\n\n{date}\n{resource}")
    } else {
        let mut ms: Vec<(String, String)> = req
            .headers
            .iter()
            .filter(|(k, _)| k.starts_with("x-ms-"))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect();
        ms.sort();
        let headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let mut resource = format!("/{}{}", t.account, path);
        let mut names: Vec<&String> = params.iter().map(|(k, _)| k).collect();
        names.sort();
        names.dedup();
        for n in names {
            let mut vals: Vec<&str> = params
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .collect();
            vals.sort();
            resource.push_str(&format!("\n{n}:{}", vals.join(",")));
        }
        // VERB, then Content-Encoding, -Language, -Length, -MD5, -Type, Date,
        // If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range: all empty.
        format!("GET\n\n\n\n\n\n\n\n\n\n\n\n{headers}{resource}")
    };
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let sig = STANDARD.encode(aws_lc_rs::hmac::sign(&k, string_to_sign.as_bytes()).as_ref());
    req.authorization = Some(Secret::new(format!("SharedKey {}:{sig}", t.account)));
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_without_showing_the_key() {
        let t = ServiceTarget::declared(ServiceKind::StorageBlob, "127.0.0.1", None, true);
        let key = Secret::new(STANDARD.encode(b"PLANTED-ACCOUNT-KEY-0123456789"));
        let r = shared_key(&t, &key, SystemTime::UNIX_EPOCH).unwrap();
        assert!(
            r.authorization
                .as_ref()
                .unwrap()
                .expose()
                .starts_with("SharedKey devstoreaccount1:")
        );
        assert!(!format!("{r:?}").contains("PLANTED"));
        assert!(!format!("{r:?}").contains(key.expose()));
        assert_eq!(
            shared_key(&t, &Secret::new("not base64 !"), SystemTime::UNIX_EPOCH).unwrap_err(),
            SharedKeyError::KeyNotBase64
        );
        let kv = ServiceTarget::recognise("kv.vault.azure.net").unwrap();
        assert!(shared_key(&kv, &key, SystemTime::UNIX_EPOCH).is_err());
    }
}
