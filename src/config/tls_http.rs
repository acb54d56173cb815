//! The TLS keys (`sni`, `ca_file`, `insecure`, `cert_days_left`) and the HTTP keys
//! (`method`, `headers`, `status`, `body_*`, redirects) of a target.

use rustls::pki_types::CertificateDer;
use serde::Deserialize;

use super::targets::{RawTarget, only};
use crate::env::{ConfigError, EnvLookup};
use crate::layer::Layer;
use crate::secret::Secret;
use crate::spec::{HttpOptions, Pattern, TargetSpec, TlsOptions, uri};

/// `status = [200, 401, "500-599"]`
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawStatus {
    Code(i64),
    Range(String),
}

/// `sni`, `ca_file`, `insecure`, `cert_days_left`: for targets that handshake TLS
/// (`tds` targets too, inside PRELOGIN), on top of what a connection string said.
pub(super) fn tls_options(
    i: usize,
    raw: &RawTarget,
    spec: &TargetSpec,
    plan: &[Layer],
    from_spec: TlsOptions,
) -> Result<TlsOptions, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    // TDS targets handshake TLS too (inside PRELOGIN), so they take the TLS keys.
    let is_tls = plan.contains(&Layer::Tls) || plan.contains(&Layer::Tds);
    let what = "tls:// and https://";
    only(i, !is_tls && raw.sni.is_some(), "sni", what)?;
    only(i, !is_tls && raw.ca_file.is_some(), "ca_file", what)?;
    only(i, !is_tls && raw.insecure.is_some(), "insecure", what)?;
    only(
        i,
        !plan.contains(&Layer::Tls) && raw.cert_days_left.is_some(),
        "cert_days_left",
        what,
    )?;
    let mut tls = TlsOptions {
        sni: match spec {
            TargetSpec::Tls { sni, .. } => sni.clone(),
            _ => from_spec.sni,
        },
        insecure: raw.insecure.unwrap_or(from_spec.insecure),
        ..Default::default()
    };
    if let Some(n) = &raw.sni {
        uri::parse_host(n).map_err(|e| ConfigError::new(key("sni"), e.0))?;
        tls.sni = Some(n.trim_end_matches('.').to_ascii_lowercase());
    }
    if let Some(f) = &raw.ca_file {
        tls.ca_roots = load_ca_file(&key("ca_file"), f)?;
    }
    if let Some(d) = raw.cert_days_left {
        if !(0..=3650).contains(&d) {
            return Err(ConfigError::new(
                key("cert_days_left"),
                format!("{d} is outside 0..=3650"),
            ));
        }
        tls.cert_days_left = Some(d as u32);
    }
    Ok(tls)
}

pub(super) fn http_options(
    i: usize,
    raw: &RawTarget,
    is_http: bool,
    env: EnvLookup,
) -> Result<HttpOptions, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let present: [(&str, bool); 10] = [
        ("method", raw.method.is_some()),
        ("headers", raw.headers.is_some()),
        ("body", raw.body.is_some()),
        ("status", raw.status.is_some()),
        ("body_contains", raw.body_contains.is_some()),
        ("body_regex", raw.body_regex.is_some()),
        ("header_contains", raw.header_contains.is_some()),
        ("follow_redirects", raw.follow_redirects.is_some()),
        ("max_redirects", raw.max_redirects.is_some()),
        ("max_body_bytes", raw.max_body_bytes.is_some()),
    ];
    if !is_http {
        if let Some((k, _)) = present.iter().find(|(_, p)| *p) {
            return Err(ConfigError::new(
                key(k),
                "only for http:// and https:// targets",
            ));
        }
        return Ok(HttpOptions::default());
    }
    let mut h = HttpOptions::default();
    if let Some(m) = &raw.method {
        let m = m.trim().to_ascii_uppercase();
        if !matches!(
            m.as_str(),
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS"
        ) {
            return Err(ConfigError::new(
                key("method"),
                format!("`{m}` is not GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"),
            ));
        }
        h.method = m;
    }
    if let Some(map) = &raw.headers {
        for (name, value) in map {
            let hk = format!("targets[{i}].headers.{name}");
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ConfigError::new(hk, "not a valid header name"));
            }
            let value = match value.strip_prefix("env:") {
                Some(var) => env(var).ok_or_else(|| {
                    ConfigError::new(&hk, format!("app setting `{var}` is not set"))
                })?,
                None => value.clone(),
            };
            if hyper::header::HeaderValue::from_str(&value).is_err() {
                // Never echo the value: it is likely a credential.
                return Err(ConfigError::new(
                    hk,
                    "the value is not a valid header value",
                ));
            }
            h.headers
                .push((name.to_ascii_lowercase(), Secret::new(value)));
        }
    }
    if let Some(b) = &raw.body {
        h.body = Some(Secret::new(b.clone()));
    }
    if let Some(list) = &raw.status {
        if list.is_empty() {
            return Err(ConfigError::new(
                key("status"),
                "empty list: omit it for the default 200-399",
            ));
        }
        h.status = list
            .iter()
            .enumerate()
            .map(|(j, st)| {
                parse_status(st)
                    .map_err(|m| ConfigError::new(format!("targets[{i}].status[{j}]"), m))
            })
            .collect::<Result<_, _>>()?;
    }
    h.body_contains = raw.body_contains.clone();
    if let Some(re) = &raw.body_regex {
        h.body_regex = Some(Pattern(regex::Regex::new(re).map_err(|e| {
            ConfigError::new(key("body_regex"), e.to_string().replace('\n', " "))
        })?));
    }
    if let Some(map) = &raw.header_contains {
        h.header_contains = map
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
    }
    h.follow_redirects = raw.follow_redirects.unwrap_or(false);
    if let Some(n) = raw.max_redirects {
        if !(0..=20).contains(&n) {
            return Err(ConfigError::new(
                key("max_redirects"),
                format!("{n} is outside 0..=20"),
            ));
        }
        h.max_redirects = n as u8;
    }
    if let Some(n) = raw.max_body_bytes {
        if !(0..=16 * 1024 * 1024).contains(&n) {
            return Err(ConfigError::new(
                key("max_body_bytes"),
                format!("{n} is outside 0..=16777216"),
            ));
        }
        h.max_body_bytes = n as usize;
        h.enforce_body_limit = true;
    }
    Ok(h)
}

fn parse_status(s: &RawStatus) -> Result<(u16, u16), String> {
    let code = |n: i64| -> Result<u16, String> {
        if (100..=599).contains(&n) {
            Ok(n as u16)
        } else {
            Err(format!("{n} is not an HTTP status (100..=599)"))
        }
    };
    match s {
        RawStatus::Code(n) => code(*n).map(|c| (c, c)),
        RawStatus::Range(r) => {
            let (a, b) = r
                .split_once('-')
                .ok_or_else(|| format!("`{r}` is not a status or a range like \"200-299\""))?;
            let a = code(
                a.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("`{r}`: `{a}` is not a number"))?,
            )?;
            let b = code(
                b.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("`{r}`: `{b}` is not a number"))?,
            )?;
            if a > b {
                return Err(format!("`{r}`: the range is backwards"));
            }
            Ok((a, b))
        }
    }
}

/// PEM certificates from a file; an unreadable file or one without certificates is an
/// error at load time, not a surprise at probe time.
pub(super) fn load_ca_file(
    key: &str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(key, format!("cannot read `{path}`: {e}")))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| ConfigError::new(key, format!("`{path}` is not PEM: {e:?}")))?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            key,
            format!("`{path}` holds no certificate"),
        ));
    }
    Ok(certs)
}
