//! ADO.NET connection strings (`Server=tcp:x.database.windows.net,1433;...`) parsed
//! into a `sqlserver` `TargetSpec`.

use super::target::{SqlAuth, TargetError, TargetSpec, err};
use super::uri::{nonzero, parse_host};
use crate::secret::Secret;

/// An ADO.NET connection string as App Service and `SqlConnectionString` settings carry it:
/// `Server=tcp:host,1433;Initial Catalog=db;User ID=u;Password=p;...`.
pub fn parse_ado(s: &str) -> Result<TargetSpec, TargetError> {
    let mut server = None;
    let mut database = None;
    let mut auth = SqlAuth {
        user: None,
        password: None,
        authentication: None,
        strict: false,
        trust_server_certificate: false,
        hostname_in_certificate: None,
    };
    for (key, value) in ado_pairs(s)? {
        match key.as_str() {
            "server" | "data source" | "address" | "addr" | "network address" => {
                server = Some(value)
            }
            "database" | "initial catalog" => database = Some(value),
            "user id" | "uid" | "user" => auth.user = Some(value),
            "password" | "pwd" => auth.password = Some(Secret::new(value)),
            "authentication" => auth.authentication = Some(value),
            "encrypt" => auth.strict = value.eq_ignore_ascii_case("strict"),
            // SqlClient's own keyword grammar (true/yes), not an app setting's yes/no
            // (crate::setting::parse_yes_no): routeproof must not accept what the app's
            // driver would not.
            "trustservercertificate" | "trust server certificate" => {
                auth.trust_server_certificate =
                    matches!(value.to_ascii_lowercase().as_str(), "true" | "yes")
            }
            "hostnameincertificate" | "host name in certificate" => {
                auth.hostname_in_certificate = Some(value)
            }
            _ => {}
        }
    }
    let Some(server) = server else {
        return err("connection string has no `Server` (or `Data Source`)");
    };
    let server = server.trim();
    let server = server
        .strip_prefix("tcp:")
        .or_else(|| server.strip_prefix("TCP:"))
        .unwrap_or(server);
    let (host_part, port) = match server.rsplit_once(',') {
        Some((h, p)) => {
            let port: u16 = p.trim().parse().map_err(|_| {
                TargetError(format!(
                    "connection string port `{}` is not a number",
                    p.trim()
                ))
            })?;
            (h.trim(), nonzero(port)?)
        }
        None => (server, 1433),
    };
    if host_part.contains('\\') {
        return err(
            "named instances (`host\\instance`) need SQL Browser on UDP 1434; give the port instead (`host,PORT`)",
        );
    }
    Ok(TargetSpec::Sql {
        host: parse_host(host_part)?,
        port,
        database: database.filter(|d| !d.is_empty()),
        auth,
    })
}

/// `key=value;` pairs with ADO quoting (`'…'`, `"…"`, doubled quotes inside). Keys are
/// lower-cased and inner whitespace collapsed, as SqlClient does.
fn ado_pairs(s: &str) -> Result<Vec<(String, String)>, TargetError> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        if rest.is_empty() {
            return Ok(out);
        }
        let Some(eq) = rest.find('=') else {
            return err("connection string is not `key=value;` pairs");
        };
        // `Password;S3cret=…`: a part without `=`. Its text would become the key, and a
        // key is named in errors, so reject it without quoting anything (SqlClient
        // rejects it too).
        if rest[..eq].contains(';') {
            return err("connection string has a part without `=` (not `key=value;` pairs)");
        }
        let key = rest[..eq]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase();
        if key.is_empty() {
            return err("connection string has an empty key");
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
            let mut v = String::new();
            let mut chars = rest[1..].char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == q {
                    if rest[1 + i + 1..].starts_with(q) {
                        v.push(q);
                        chars.next();
                        continue;
                    }
                    end = Some(1 + i + 1);
                    break;
                }
                v.push(c);
            }
            let Some(end) = end else {
                // Say which key, never the value: it may be the password.
                return err(format!(
                    "connection string value for `{key}` has an unclosed quote"
                ));
            };
            value = v;
            rest = &rest[end..];
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((key, value));
    }
}
