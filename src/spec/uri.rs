//! Target URIs (`tcp://`, `dns://`, `env:VAR`, ...) parsed into `TargetSpec`.

use std::net::IpAddr;

use super::ado::parse_ado;
use super::messaging::{is_servicebus_connection_string, parse_messaging, parse_servicebus};
use super::target::{Host, QueryType, SqlAuth, TargetError, TargetSpec, err};
use crate::secret::Secret;

/// Parses a URI, or (for `env:VAR`) the app setting it names, through `lookup`.
/// `lookup` is injected so tests and ad-hoc requests control what settings are visible.
pub fn parse(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<TargetSpec, TargetError> {
    let input = input.trim();
    if let Some(var) = input.strip_prefix("env:") {
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return err(format!(
                "`env:{var}`: an app setting name is letters, digits and `_`"
            ));
        }
        let Some(value) = lookup(var) else {
            return err(format!("app setting `{var}` is not set"));
        };
        let value = value.trim();
        if value.is_empty() {
            return err(format!("app setting `{var}` is empty"));
        }
        // Never echo the value: it may be a connection string with a password.
        return if is_servicebus_connection_string(value) {
            parse_servicebus(value).map_err(|e| TargetError(format!("app setting `{var}`: {e}")))
        } else if value.contains("://") {
            parse_uri(value).map_err(|e| {
                // A URI error may quote a piece of the value (a path, a host): the
                // value is a setting's, so say what is wrong but not what it says.
                TargetError(format!("app setting `{var}`: {}", unquote(&e.0)))
            })
        } else {
            parse_ado(value).map_err(|e| TargetError(format!("app setting `{var}`: {e}")))
        };
    }
    parse_uri(input)
}

/// Parses a target URI (no `env:`).
pub fn parse_uri(input: &str) -> Result<TargetSpec, TargetError> {
    let Some((scheme, _)) = input.split_once("://") else {
        return err(format!(
            "`{}` is not a target URI: expected dns://, tcp://, tls://, http(s)://, sqlserver://, postgres://, mysql://, redis(s)://, amqp(s)://, amqpws(s)://, kafka:// or env:VAR",
            shorten(input)
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    let url = url::Url::parse(input).map_err(|e| TargetError(format!("invalid URI: {e}")))?;
    match scheme.as_str() {
        "dns" => parse_dns(&url),
        "tcp" => {
            no_extras(&url, &[])?;
            let host = host_of(&url)?;
            let port = url
                .port()
                .ok_or_else(|| TargetError("tcp:// needs a port, e.g. tcp://host:1433".into()))?;
            Ok(TargetSpec::Tcp {
                host,
                port: nonzero(port)?,
            })
        }
        "tls" => {
            no_extras(&url, &["sni"])?;
            let host = host_of(&url)?;
            let sni = query_value(&url, "sni").map(|s| s.to_ascii_lowercase());
            if let Some(s) = &sni {
                validate_name(s)?;
            }
            Ok(TargetSpec::Tls {
                host,
                port: nonzero(url.port().unwrap_or(443))?,
                sni,
            })
        }
        "http" | "https" => {
            let host = host_of(&url)?;
            let port = nonzero(url.port_or_known_default().unwrap_or(80))?;
            Ok(TargetSpec::Http { url, host, port })
        }
        "smb" => {
            no_extras(&url, &[])?;
            let host = host_of(&url)?;
            Ok(TargetSpec::Smb {
                host,
                port: nonzero(url.port().unwrap_or(445))?,
            })
        }
        "sqlserver" | "mssql" => {
            // User info and a database path are allowed here; query and fragment are not.
            if url.query().is_some() || url.fragment().is_some() {
                return err(
                    "sqlserver:// takes no query or fragment; put options in a connection string (env:VAR)",
                );
            }
            let host = host_of(&url)?;
            let path = url.path().trim_matches('/');
            if path.contains('/') {
                return err("sqlserver:// takes at most one path segment: the database");
            }
            let database = (!path.is_empty()).then(|| path.to_string());
            Ok(TargetSpec::Sql {
                host,
                port: nonzero(url.port().unwrap_or(1433))?,
                database,
                auth: SqlAuth {
                    user: (!url.username().is_empty()).then(|| url.username().to_string()),
                    password: url.password().map(Secret::new),
                    authentication: None,
                    strict: false,
                    trust_server_certificate: false,
                    hostname_in_certificate: None,
                },
            })
        }
        "postgres" | "postgresql" | "mysql" => {
            let pg = scheme != "mysql";
            // No user info (a password in a URI would be shown): user and password are keys.
            if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
                return err(format!(
                    "{scheme}:// takes HOST[:PORT][/DATABASE] only; put tls, user and password in the target's keys"
                ));
            }
            let path = url.path().trim_matches('/');
            if path.contains('/') {
                return err(format!(
                    "{scheme}:// takes at most one path segment: the database"
                ));
            }
            let (host, database) = (host_of(&url)?, (!path.is_empty()).then(|| path.to_string()));
            Ok(if pg {
                let port = nonzero(url.port().unwrap_or(5432))?;
                TargetSpec::Postgres {
                    host,
                    port,
                    database,
                }
            } else {
                let port = nonzero(url.port().unwrap_or(3306))?;
                TargetSpec::Mysql {
                    host,
                    port,
                    database,
                }
            })
        }
        "redis" | "rediss" => {
            if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
                return err(format!(
                    "{scheme}:// takes HOST[:PORT] only; put user and password in the target's keys"
                ));
            }
            if !url.path().trim_matches('/').is_empty() {
                return err(format!("{scheme}:// takes no path"));
            }
            let tls = scheme == "rediss";
            let port = nonzero(url.port().unwrap_or(if tls { 6380 } else { 6379 }))?;
            Ok(TargetSpec::Redis {
                host: host_of(&url)?,
                port,
                tls,
            })
        }
        "amqp" | "amqps" | "amqpws" | "amqpwss" | "kafka" => parse_messaging(&scheme, &url),
        other => err(format!(
            "unknown scheme `{other}`: expected dns, tcp, tls, http, https, smb, sqlserver, postgres, mysql, redis, rediss, amqp, amqps, amqpws, amqpwss, kafka or env:VAR"
        )),
    }
}

fn parse_dns(url: &url::Url) -> Result<TargetSpec, TargetError> {
    no_extras(url, &["type"])?;
    if url.port().is_some() {
        return err(
            "dns:// takes a name, not a port (choose servers with --dns-server or `dns_servers`)",
        );
    }
    let name = match host_of(url)? {
        Host::Name(n) => n,
        Host::Ip(ip) => {
            return err(format!(
                "dns:// needs a name to resolve, not the address {ip}"
            ));
        }
    };
    let qtype = match query_value(url, "type") {
        Some(t) => QueryType::parse(&t)?,
        None => QueryType::A,
    };
    Ok(TargetSpec::Dns { name, qtype })
}

fn no_extras(url: &url::Url, allowed_query: &[&str]) -> Result<(), TargetError> {
    if !url.username().is_empty() || url.password().is_some() {
        return err("this scheme takes no user name or password");
    }
    if !matches!(url.path(), "" | "/") {
        return err(format!("unexpected path `{}`", url.path()));
    }
    if url.fragment().is_some() {
        return err("unexpected `#fragment`");
    }
    for (k, _) in url.query_pairs() {
        if !allowed_query.contains(&k.as_ref()) {
            let allowed = if allowed_query.is_empty() {
                "none".to_string()
            } else {
                allowed_query.join(", ")
            };
            return err(format!(
                "unknown query parameter `{k}` (allowed: {allowed})"
            ));
        }
    }
    Ok(())
}

fn query_value(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

pub(crate) fn nonzero(port: u16) -> Result<u16, TargetError> {
    if port == 0 {
        err("port 0 is not a port to probe")
    } else {
        Ok(port)
    }
}

fn host_of(url: &url::Url) -> Result<Host, TargetError> {
    let raw = url.host_str().unwrap_or("");
    parse_host(raw)
}

/// A host as written: an IP literal (IPv6 in brackets or bare) or a DNS name.
pub fn parse_host(raw: &str) -> Result<Host, TargetError> {
    if raw.is_empty() {
        return err("missing host");
    }
    let unbracketed = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let name = raw.trim_end_matches('.').to_ascii_lowercase();
    validate_name(&name)?;
    Ok(Host::Name(name))
}

/// DNS names as RFC 1035 allows them, plus `_` (SRV owners, Azure's `_dnsauth`).
fn validate_name(name: &str) -> Result<(), TargetError> {
    if name.is_empty() || name.len() > 253 {
        return err(format!(
            "`{}` is not a valid host name (1 to 253 characters)",
            shorten(name)
        ));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return err(format!(
                "`{}` is not a valid host name (bad label `{label}`)",
                shorten(name)
            ));
        }
    }
    if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return err(format!(
            "`{name}` looks like an IPv4 address but is not one"
        ));
    }
    Ok(())
}

/// Replaces every `quoted` fragment of a message with `…`.
fn unquote(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for c in msg.chars() {
        match (c, inside) {
            ('`', false) => {
                inside = true;
                out.push_str("`…");
            }
            ('`', true) => {
                inside = false;
                out.push('`');
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    crate::secret::scrub(&out)
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests;
