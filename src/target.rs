//! Target URIs parsed once into typed values. Everything downstream matches on
//! `TargetSpec`; no layer re-reads a string.
//!
//! | URI | layers |
//! |---|---|
//! | `dns://NAME[?type=A\|AAAA\|CNAME\|TXT\|SRV\|MX]` | dns |
//! | `tcp://HOST:PORT` | dns, tcp |
//! | `tls://HOST[:PORT][?sni=NAME]` | dns, tcp, tls |
//! | `http://…`, `https://…` | dns, tcp, (tls), http |
//! | `sqlserver://HOST[:PORT][/DATABASE]` | dns, tcp, tds |
//! | `env:VAR` | the value of app setting VAR: a URI above or an ADO.NET connection string |

use std::fmt;
use std::net::IpAddr;

use crate::report::Layer;
use crate::secret::{Secret, redact_url};

/// A target URI that cannot be probed. The message names the problem in user terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, TargetError> {
    Err(TargetError(msg.into()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// Lower-case, without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// DNS record types a `dns://` target may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    A,
    Aaaa,
    Cname,
    Txt,
    Srv,
    Mx,
}

impl QueryType {
    pub fn parse(s: &str) -> Result<QueryType, TargetError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "A" => QueryType::A,
            "AAAA" => QueryType::Aaaa,
            "CNAME" => QueryType::Cname,
            "TXT" => QueryType::Txt,
            "SRV" => QueryType::Srv,
            "MX" => QueryType::Mx,
            other => {
                return err(format!(
                    "unsupported DNS type `{other}` (use A, AAAA, CNAME, TXT, SRV or MX)"
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueryType::A => "A",
            QueryType::Aaaa => "AAAA",
            QueryType::Cname => "CNAME",
            QueryType::Txt => "TXT",
            QueryType::Srv => "SRV",
            QueryType::Mx => "MX",
        }
    }
}

/// SQL credentials from a connection string, kept for the TDS layer. Only the user name
/// is ever shown; the password is a `Secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlAuth {
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub authentication: Option<String>,
    /// `Encrypt=Strict`: TDS 8, TLS before PRELOGIN.
    pub strict: bool,
    pub trust_server_certificate: bool,
    pub hostname_in_certificate: Option<String>,
}

/// `Debug` is the redacted `Display` (see below): a derived one would print the URL's
/// user-info and `sig=` values into any `{:?}` of a config.
#[derive(Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Dns {
        name: String,
        qtype: QueryType,
    },
    Tcp {
        host: Host,
        port: u16,
    },
    Tls {
        host: Host,
        port: u16,
        sni: Option<String>,
    },
    Http {
        url: url::Url,
        host: Host,
        port: u16,
    },
    Sql {
        host: Host,
        port: u16,
        database: Option<String>,
        auth: SqlAuth,
    },
}

impl TargetSpec {
    /// The layers this target runs through, in order: the plan `check` prints.
    pub fn layers(&self) -> Vec<Layer> {
        let needs_dns = matches!(self.host(), Some(Host::Name(_))) || self.host().is_none();
        let mut v = Vec::new();
        if needs_dns {
            v.push(Layer::Dns);
        }
        match self {
            TargetSpec::Dns { .. } => {}
            TargetSpec::Tcp { .. } => v.push(Layer::Tcp),
            TargetSpec::Tls { .. } => v.extend([Layer::Tcp, Layer::Tls]),
            TargetSpec::Http { url, .. } => {
                v.push(Layer::Tcp);
                if url.scheme() == "https" {
                    v.push(Layer::Tls);
                }
                v.push(Layer::Http);
            }
            TargetSpec::Sql { .. } => v.extend([Layer::Tcp, Layer::Tds]),
        }
        v
    }

    pub fn host(&self) -> Option<&Host> {
        match self {
            TargetSpec::Dns { .. } => None,
            TargetSpec::Tcp { host, .. }
            | TargetSpec::Tls { host, .. }
            | TargetSpec::Http { host, .. }
            | TargetSpec::Sql { host, .. } => Some(host),
        }
    }

    /// The name the DNS layer resolves, if any.
    pub fn dns_name(&self) -> Option<&str> {
        match self {
            TargetSpec::Dns { name, .. } => Some(name),
            _ => match self.host() {
                Some(Host::Name(n)) => Some(n),
                _ => None,
            },
        }
    }

    pub fn port(&self) -> Option<u16> {
        match self {
            TargetSpec::Dns { .. } => None,
            TargetSpec::Tcp { port, .. }
            | TargetSpec::Tls { port, .. }
            | TargetSpec::Http { port, .. }
            | TargetSpec::Sql { port, .. } => Some(*port),
        }
    }
}

impl fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetSpec({self})")
    }
}

/// The target as a report shows it: no password, no SAS signature, no function key.
impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Dns { name, qtype } => {
                write!(f, "dns://{name}")?;
                if *qtype != QueryType::A {
                    write!(f, "?type={}", qtype.as_str())?;
                }
                Ok(())
            }
            TargetSpec::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            TargetSpec::Tls { host, port, sni } => {
                write!(f, "tls://{host}:{port}")?;
                if let Some(s) = sni {
                    write!(f, "?sni={s}")?;
                }
                Ok(())
            }
            TargetSpec::Http { url, .. } => f.write_str(&redact_url(url)),
            TargetSpec::Sql {
                host,
                port,
                database,
                ..
            } => {
                write!(f, "sqlserver://{host}:{port}")?;
                if let Some(db) = database {
                    write!(f, "/{db}")?;
                }
                Ok(())
            }
        }
    }
}

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
        return if value.contains("://") {
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
            "`{}` is not a target URI: expected dns://, tcp://, tls://, http(s)://, sqlserver:// or env:VAR",
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
        other => err(format!(
            "unknown scheme `{other}`: expected dns, tcp, tls, http, https, sqlserver or env:VAR"
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

fn nonzero(port: u16) -> Result<u16, TargetError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn good_uris() {
        let cases: &[(&str, &str)] = &[
            (
                "dns://MyServer.Database.Windows.Net.",
                "dns://myserver.database.windows.net",
            ),
            (
                "dns://_sip._tcp.example.org?type=srv",
                "dns://_sip._tcp.example.org?type=SRV",
            ),
            (
                "tcp://loopsql.database.windows.net:1433",
                "tcp://loopsql.database.windows.net:1433",
            ),
            ("tcp://127.0.0.1:80", "tcp://127.0.0.1:80"),
            ("tcp://[::1]:443", "tcp://[::1]:443"),
            ("tls://kv.vault.azure.net", "tls://kv.vault.azure.net:443"),
            (
                "tls://10.1.2.4:443?sni=kv.vault.azure.net",
                "tls://10.1.2.4:443?sni=kv.vault.azure.net",
            ),
            ("https://api.internal/health", "https://api.internal/health"),
            ("http://api.internal:8080/", "http://api.internal:8080/"),
            (
                "sqlserver://db.database.windows.net",
                "sqlserver://db.database.windows.net:1433",
            ),
            (
                "sqlserver://db.database.windows.net:11001/orders",
                "sqlserver://db.database.windows.net:11001/orders",
            ),
        ];
        for (input, shown) in cases {
            let t = parse(input, &no_env).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(t.to_string(), *shown, "{input}");
        }
    }

    #[test]
    fn bad_uris_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("myserver:1433", "is not a target URI"),
            ("ftp://x:21", "unknown scheme `ftp`"),
            ("tcp://host", "tcp:// needs a port"),
            ("tcp://host:0", "port 0"),
            ("tcp://host:99999", "invalid URI"),
            ("tcp://host:80/path", "unexpected path"),
            ("tcp://host:80?x=1", "unknown query parameter `x`"),
            ("tcp://bad_-.name-:80", "bad label"),
            ("tcp://a..b:80", "bad label"),
            ("tcp://999.1.1.1:80", "looks like an IPv4 address"),
            ("dns://x.org?type=PTR", "unsupported DNS type `PTR`"),
            ("dns://x.org:53", "takes a name, not a port"),
            ("dns://10.0.0.1", "needs a name to resolve"),
            ("tls://h:443?sni=bad..name", "bad label"),
            ("sqlserver://h/db/extra", "at most one path segment"),
            ("env:", "app setting name"),
            (
                "env:NOT_SET_ANYWHERE",
                "app setting `NOT_SET_ANYWHERE` is not set",
            ),
        ];
        for (input, want) in cases {
            let e = parse(input, &no_env).expect_err(input);
            assert!(e.0.contains(want), "{input}: got `{e}`, want `{want}`");
        }
    }

    #[test]
    fn env_targets_and_ado_strings() {
        let env = |k: &str| {
            match k {
            "SqlConnectionString" => Some(
                "Server=tcp:myserver.database.windows.net,1433;Initial Catalog=orders;User ID=app;Password='p;a''ss-PLANTED';Encrypt=True".to_string(),
            ),
            "ApiUrl" => Some("https://api.internal/health?code=fnkey-PLANTED".to_string()),
            "Broken" => Some("Server=tcp:h,abc;Password=PLANTED".to_string()),
            "Unclosed" => Some("Server=h;Password='PLANTED".to_string()),
            _ => None,
        }
        };
        let t = parse("env:SqlConnectionString", &env).unwrap();
        match &t {
            TargetSpec::Sql {
                host,
                port,
                database,
                auth,
            } => {
                assert_eq!(host, &Host::Name("myserver.database.windows.net".into()));
                assert_eq!(*port, 1433);
                assert_eq!(database.as_deref(), Some("orders"));
                assert_eq!(auth.user.as_deref(), Some("app"));
                assert_eq!(auth.password.as_ref().unwrap().expose(), "p;a'ss-PLANTED");
            }
            other => panic!("{other:?}"),
        }
        assert!(!t.to_string().contains("PLANTED"));
        assert!(!format!("{t:?}").contains("PLANTED"));
        let api = parse("env:ApiUrl", &env).unwrap();
        assert!(!api.to_string().contains("PLANTED"), "{api}");
        for bad in ["env:Broken", "env:Unclosed"] {
            let e = parse(bad, &env).unwrap_err();
            assert!(!e.0.contains("PLANTED"), "{e}");
        }
        assert!(
            parse("env:Broken", &env)
                .unwrap_err()
                .0
                .contains("`abc` is not a number")
        );
        assert!(
            parse("env:Unclosed", &env)
                .unwrap_err()
                .0
                .contains("unclosed quote")
        );
    }

    #[test]
    fn layer_plans() {
        use Layer::*;
        let plan = |s: &str| parse(s, &no_env).unwrap().layers();
        assert_eq!(plan("dns://a.b"), vec![Dns]);
        assert_eq!(plan("tcp://a.b:1"), vec![Dns, Tcp]);
        assert_eq!(plan("tcp://127.0.0.1:1"), vec![Tcp]);
        assert_eq!(plan("https://a.b/"), vec![Dns, Tcp, Tls, Http]);
        assert_eq!(plan("http://a.b/"), vec![Dns, Tcp, Http]);
        assert_eq!(plan("sqlserver://a.b"), vec![Dns, Tcp, Tds]);
    }
}
