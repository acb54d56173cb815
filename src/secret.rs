//! Secrets cannot print. A `Secret` masks itself in Debug, Display and Serialize, so a
//! password that reaches a report, a log line or a span by accident still shows `<redacted>`.

use std::fmt;

use serde::Serialize;

pub const MASK: &str = "<redacted>";

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The only way to the value: named so every use is easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// Query keys whose values are credentials: SAS signatures, function keys, API keys.
const SECRET_QUERY_KEYS: &[&str] = &[
    "sig",
    "code",
    "sv",
    "se",
    "token",
    "access_token",
    "api-key",
    "apikey",
    "key",
    "password",
    "pwd",
    "secret",
    "client_secret",
    "x-functions-key",
];

pub fn is_secret_query_key(k: &str) -> bool {
    SECRET_QUERY_KEYS.iter().any(|s| s.eq_ignore_ascii_case(k))
}

/// A URL fit for a report: user-info password and credential query values masked.
pub fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some(MASK));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_query_key(&k) {
                    MASK.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2-PLANTED");
        assert_eq!(format!("{s}"), MASK);
        assert_eq!(format!("{s:?}"), MASK);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{MASK}\""));
        assert_eq!(s.expose(), "hunter2-PLANTED");
    }

    #[test]
    fn url_redaction() {
        let u = url::Url::parse("https://bob:pa55@api.internal/x?sig=abc&keep=1&code=zz").unwrap();
        let r = redact_url(&u);
        assert!(
            !r.contains("pa55") && !r.contains("abc") && !r.contains("zz"),
            "{r}"
        );
        assert!(r.contains("bob") && r.contains("keep=1"), "{r}");
    }
}
