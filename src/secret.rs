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

/// Masks credentials in free text: `Password=…`, `AccountKey=…`,
/// `SharedAccessSignature=…` (up to the next `;`), `sig=`/`code=`/… query values (up to
/// the next `&`), and URL user-info passwords. Applied to every message that may quote
/// what a caller or an app setting said, as a second line behind never quoting values
/// at all: a message is text, and text has no `Secret` type to protect it.
pub fn scrub(text: &str) -> String {
    use std::sync::OnceLock;
    static PATTERNS: OnceLock<[regex::Regex; 3]> = OnceLock::new();
    let [conn, query, userinfo] = PATTERNS.get_or_init(|| {
        let conn_keys = "password|pwd|account\\s*key|shared\\s*access\\s*key|shared\\s*access\\s*signature|instrumentation\\s*key|client_?secret";
        let query_keys = SECRET_QUERY_KEYS
            .iter()
            .map(|k| regex::escape(k))
            .collect::<Vec<_>>()
            .join("|");
        [
            regex::Regex::new(&format!(
                r#"(?i)((?:^|[\s;"'(,{{])(?:{conn_keys})\s*=\s*)(?:'[^']*'?|"[^"]*"?|[^;\r\n"')]*)"#
            ))
            .expect("static pattern"),
            regex::Regex::new(&format!(
                r#"(?i)((?:^|[\s?&;"'(,{{/])(?:{query_keys})=)[^&;\s"'#)]*"#
            ))
            .expect("static pattern"),
            regex::Regex::new(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]*@").expect("static pattern"),
        ]
    });
    let t = conn.replace_all(text, format!("${{1}}{MASK}"));
    let t = query.replace_all(&t, format!("${{1}}{MASK}"));
    userinfo
        .replace_all(&t, format!("${{1}}{MASK}@"))
        .into_owned()
}

/// `text` with every run of `secret` in it masked, a cut-off run too (a server that
/// quotes what it was sent, e.g. a proxy echoing the Authorization header into a message
/// we keep 300 characters of). A run counts from its first 16 bytes on.
pub fn mask_value(text: &str, secret: &str) -> String {
    let head = match secret.char_indices().nth(16) {
        Some((i, _)) => &secret[..i],
        None => secret,
    };
    if head.is_empty() || !text.contains(head) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(head) {
        out.push_str(&rest[..i]);
        out.push_str(MASK);
        let tail = &rest[i..];
        let n: usize = tail
            .chars()
            .zip(secret.chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a.len_utf8())
            .sum();
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_value_masks_whole_and_cut_off_runs() {
        let tok = "eyJhbGciOi.PLANTED-claims-0123456789.sig";
        let text = format!("echo: Bearer {tok}; again {}", &tok[..20]);
        let m = mask_value(&text, tok);
        assert_eq!(m, format!("echo: Bearer {MASK}; again {MASK}"));
        assert_eq!(mask_value("nothing here", tok), "nothing here");
        // A short prefix alone (under 16 characters) is not a run.
        assert_eq!(mask_value("eyJhbG", tok), "eyJhbG");
    }

    #[test]
    fn scrub_masks_every_credential_shape() {
        let cases: &[(&str, &[&str])] = &[
            (
                "Server=tcp:h,1433;User ID=app;Password=P1-SECRET;Encrypt=True",
                &["Server=tcp:h,1433", "User ID=app", "Encrypt=True"],
            ),
            ("Data Source=h;Pwd='P2;SECRET'", &["Data Source=h"]),
            (
                "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=P3-SECRET==;EndpointSuffix=core.windows.net",
                &["AccountName=acct", "EndpointSuffix=core.windows.net"],
            ),
            (
                "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=P4-SECRET%3D",
                &["BlobEndpoint=https://a.blob.core.windows.net/"],
            ),
            (
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=P5-SECRET=",
                &["SharedAccessKeyName=root"],
            ),
            (
                "InstrumentationKey=P6-SECRET;IngestionEndpoint=https://x.in.applicationinsights.azure.com/",
                &["IngestionEndpoint=https://x.in.applicationinsights.azure.com/"],
            ),
            (
                "bad URL `https://bob:P7-SECRET@api.internal/x?sig=P8-SECRET&keep=1&code=P9-SECRET`",
                &["bob", "keep=1", "api.internal"],
            ),
        ];
        for (text, kept) in cases {
            let s = scrub(text);
            assert!(!s.contains("SECRET"), "{text} -> {s}");
            assert!(s.contains(MASK), "{s}");
            for k in *kept {
                assert!(s.contains(k), "{text} -> {s}: lost `{k}`");
            }
        }
        assert_eq!(scrub("nothing to hide here"), "nothing to hide here");
    }

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
