//! Databases: `SQLCONNSTR_*` / `SQLAZURECONNSTR_*` (ADO.NET, `sqlserver://`),
//! `POSTGRESQLCONNSTR_*` (Npgsql `Host=…;Database=…;Username=…;Password=…`, libpq
//! `host=… dbname=…`, or a `postgres://` / `jdbc:postgresql://` URL), `MYSQLCONNSTR_*`
//! (Connector/NET `Server=…;Database=…;Uid=…;Pwd=…`, or a `mysql://` URL), Redis
//! (StackExchange.Redis `host:6380,password=…,ssl=True,abortConnect=False`, or a
//! `redis(s)://` URL, in a setting whose name says REDIS or in `CUSTOMCONNSTR_*`), and the
//! other `CUSTOMCONNSTR_*` forms.
//!
//! Each becomes its protocol's check built from host, port, database and the TLS mode the
//! string asks for; the user, password, and any other key stay in the setting. The
//! protocol's handshake without credentials proves the route (`reached: postgres` …).

use super::{Ctx, by_scheme, endpoint, get, get_any, host_literal, pairs, parse, sniff};
use crate::spec::DbTls;
use crate::spec::target::{self, TargetSpec};

/// An ADO.NET string as a `sqlserver://` target without its credentials.
pub(super) fn sql(value: &str) -> Result<TargetSpec, String> {
    let mut spec = target::parse_ado(value).map_err(|e| crate::secret::scrub(&e.0))?;
    if let TargetSpec::Sql { auth, .. } = &mut spec {
        auth.user = None;
        auth.password = None;
        auth.authentication = None;
    }
    Ok(spec)
}

/// Host, port, database and TLS mode of a database connection string.
#[derive(Debug, PartialEq)]
pub(super) struct Db {
    pub host: String,
    pub port: u16,
    pub database: Option<String>,
    pub tls: Option<DbTls>,
    /// More hosts were listed (failover); only the first is checked.
    pub more_hosts: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Postgres,
    Mysql,
}

impl Kind {
    fn port(self) -> u16 {
        match self {
            Kind::Postgres => 5432,
            Kind::Mysql => 3306,
        }
    }
    fn scheme(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
        }
    }
}

pub(super) fn postgres(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    database(ctx, Kind::Postgres, value)
}

pub(super) fn mysql(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    database(ctx, Kind::Mysql, value)
}

fn database(ctx: &mut Ctx<'_>, kind: Kind, value: &str) -> Result<(), String> {
    let db = parse_db(kind, value)?;
    let path = db.database.map(|d| format!("/{d}")).unwrap_or_default();
    let spec = parse(&format!(
        "{}://{}:{}{path}",
        kind.scheme(),
        host_literal(&db.host),
        db.port
    ))?;
    let key = ctx.key.to_string();
    ctx.push(key.clone(), spec, key, None, db.tls);
    if db.more_hosts {
        ctx.note("several hosts are listed; the first is checked");
    }
    Ok(())
}

/// A PostgreSQL or MySQL connection string in any of its forms.
pub(super) fn parse_db(kind: Kind, value: &str) -> Result<Db, String> {
    let v = value.trim();
    let v = v
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("jdbc:"))
        .map_or(v, |_| &v[5..]);
    if v.contains("://") {
        return db_url(kind, v);
    }
    let p = if kind == Kind::Postgres && !v.contains(';') && v.contains(' ') {
        // libpq keyword/value: `host=h port=5432 dbname=d user=u password=p`.
        v.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim_matches('\'').to_string()))
            .collect()
    } else {
        pairs(v)
    };
    let hosts = get_any(&p, &["host", "server", "datasource", "address", "addr"])
        .ok_or("no Host or Server key")?;
    let mut list = hosts.split(',').map(str::trim).filter(|h| !h.is_empty());
    let first = list.next().ok_or("no Host or Server key")?;
    let more_hosts = list.next().is_some();
    let (host, inline_port) = host_port(first).ok_or("the host is not a host name or address")?;
    let port = match (get(&p, "port"), inline_port) {
        (Some(s), _) => s
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("Port is not a number")?,
        (None, Some(p)) => p,
        (None, None) => kind.port(),
    };
    let database = get_any(&p, &["database", "dbname", "db", "initialcatalog"])
        .filter(|d| plain_name(d))
        .map(str::to_string);
    let tls = get_any(&p, &["sslmode", "ssl-mode"])
        .map(ssl_mode)
        .transpose()?;
    Ok(Db {
        host,
        port,
        database,
        tls,
        more_hosts,
    })
}

fn db_url(kind: Kind, v: &str) -> Result<Db, String> {
    let u = url::Url::parse(v).map_err(|_| "not a URL")?;
    let ok = match kind {
        Kind::Postgres => matches!(u.scheme(), "postgres" | "postgresql"),
        Kind::Mysql => matches!(u.scheme(), "mysql" | "mariadb"),
    };
    if !ok {
        return Err(format!("not a {}:// URL", kind.scheme()));
    }
    let host = u
        .host_str()
        .ok_or("the URL has no host")?
        .to_ascii_lowercase();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let database = Some(u.path().trim_matches('/'))
        .filter(|d| plain_name(d))
        .map(str::to_string);
    let mode = u
        .query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case("sslmode") || k.eq_ignore_ascii_case("ssl-mode"))
        .map(|(_, v)| v.into_owned());
    Ok(Db {
        host,
        port: u.port().unwrap_or(kind.port()),
        database,
        tls: mode.as_deref().map(ssl_mode).transpose()?,
        more_hosts: false,
    })
}

/// `sslmode` (libpq, Npgsql, Connector/NET, MySqlConnector spellings) as the probe's TLS
/// mode: no TLS, encrypt without checking the certificate, or verify chain and name.
fn ssl_mode(m: &str) -> Result<DbTls, String> {
    let m: String = m
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    Ok(match m.as_str() {
        "disable" | "disabled" | "none" => DbTls::Disable,
        "allow" | "prefer" | "preferred" | "require" | "required" => DbTls::Require,
        "verifyca" | "verifyfull" | "verifyidentity" => DbTls::VerifyFull,
        _ => return Err("SSL Mode is not a known mode".into()),
    })
}

/// A database name safe to put in a URI path.
fn plain_name(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 128
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
fn host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let s = s.strip_prefix("tcp:").unwrap_or(s);
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else if s.matches(':').count() == 1 {
        let (h, p) = s.split_once(':')?;
        (h, Some(p))
    } else {
        (s, None)
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => None,
    };
    let host = host.to_ascii_lowercase();
    let ok = host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')));
    ok.then_some((host, port))
}

// ---- Redis ----

/// A setting whose name says it is Redis (`REDIS`, `REDISCACHECONNSTR_x`), except the
/// ones that hold a part of a connection (a password, a port) rather than all of it.
pub(super) fn redis_named(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    k.contains("REDIS")
        && ![
            "PASSWORD", "PWD", "KEY", "SECRET", "TOKEN", "PORT", "USER", "USERNAME", "SSL", "TLS",
            "DB", "DATABASE",
        ]
        .iter()
        .any(|s| k.ends_with(s))
}

/// Azure Cache for Redis / Azure Managed Redis host suffixes, for a StackExchange string in
/// a setting whose name does not say Redis.
const AZURE_REDIS: &[&str] = &[
    ".redis.cache.windows.net",
    ".redis.azure.net",
    ".redisenterprise.cache.azure.net",
    ".redis.cache.chinacloudapi.cn",
    ".redis.cache.usgovcloudapi.net",
];

/// A StackExchange.Redis string whose first endpoint is an Azure Redis host.
pub(super) fn azure_redis(value: &str) -> bool {
    matches!(stackexchange(value), Ok(Some(r)) if AZURE_REDIS.iter().any(|s| r.host.ends_with(s)))
}

#[derive(Debug, PartialEq)]
pub(super) struct Redis {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub more_hosts: bool,
}

/// A Redis connection string: `redis(s)://…` or StackExchange.Redis's
/// `host[:port][,host:port…][,option=value…]` (`ssl=True` → TLS, default port 6380 with
/// TLS and 6379 without, as the client does). `Ok(None)`: not a Redis connection string.
pub(super) fn stackexchange(value: &str) -> Result<Option<Redis>, String> {
    let v = value.trim();
    if let Some((scheme, _)) = v.split_once("://") {
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "rediss" => true,
            "redis" => false,
            _ => return Ok(None),
        };
        let (host, port, _) = endpoint(v).ok_or("not a URL")?;
        return Ok(Some(Redis {
            host,
            port: port.unwrap_or(if tls { 6380 } else { 6379 }),
            tls,
            more_hosts: false,
        }));
    }
    let mut hosts = Vec::new();
    let mut ssl = None;
    let mut options = 0;
    for token in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match token.split_once('=') {
            Some((k, val)) => {
                options += 1;
                if k.trim().eq_ignore_ascii_case("ssl") {
                    ssl =
                        Some(crate::setting::parse_yes_no(val).ok_or("ssl is not true or false")?);
                }
            }
            None => hosts.push(token),
        }
    }
    let Some(first) = hosts.first() else {
        return Ok(None);
    };
    let (host, port) = host_port(first).ok_or("the endpoint is not host:port")?;
    // A lone word (`cluster`, `true`) is not an endpoint.
    if options == 0 && port.is_none() && !host.contains('.') {
        return Ok(None);
    }
    let tls = ssl.unwrap_or(false);
    Ok(Some(Redis {
        host,
        port: port.unwrap_or(if tls { 6380 } else { 6379 }),
        tls,
        more_hosts: hosts.len() > 1,
    }))
}

/// A Redis setting's check: `rediss://HOST:PORT` (or `redis://`); anything that is not a
/// Redis connection string is left alone.
pub(super) fn redis_setting(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    let Some(r) = stackexchange(value)? else {
        return Ok(());
    };
    let scheme = if r.tls { "rediss" } else { "redis" };
    let spec = parse(&format!("{scheme}://{}:{}", host_literal(&r.host), r.port))?;
    ctx.add(ctx.key.to_string(), spec);
    if r.more_hosts {
        ctx.note("several endpoints are listed; the first is checked");
    }
    Ok(())
}

/// `CUSTOMCONNSTR_*`: a URL by its scheme, a Redis or PostgreSQL string by its shape, an
/// ADO.NET (SQL Server) string, or one of the strings `sniff` recognises.
pub(super) fn custom(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    if value.contains("://") && !value.contains(';') {
        let scheme = value
            .trim()
            .trim_start_matches("jdbc:")
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default();
        return match scheme.as_str() {
            "postgres" | "postgresql" => postgres(ctx, value),
            "mysql" | "mariadb" => mysql(ctx, value),
            "redis" | "rediss" => redis_setting(ctx, value),
            "sb" | "amqps" | "amqp" => {
                let (host, _, _) = endpoint(value).ok_or("not a URL")?;
                let key = ctx.key;
                super::messaging::namespace_setting(ctx, key, &host)
            }
            _ => {
                let (host, port, secure) = endpoint(value).ok_or("not a URL")?;
                ctx.add(ctx.key.to_string(), by_scheme(&host, port, secure)?);
                Ok(())
            }
        };
    }
    if !value.contains(';') && matches!(stackexchange(value), Ok(Some(_))) && value.contains(',') {
        return redis_setting(ctx, value);
    }
    let p = pairs(value);
    if get(&p, "endpoint").is_some_and(|e| e.to_ascii_lowercase().starts_with("sb://")) {
        return sniff(ctx, value);
    }
    // Npgsql names the server `Host` and the user `Username`; SQL Server knows neither.
    if get(&p, "host").is_some() && get_any(&p, &["username", "userid", "user"]).is_some() {
        return postgres(ctx, value);
    }
    if ["server", "datasource", "address", "addr", "networkaddress"]
        .iter()
        .any(|k| get(&p, k).is_some())
    {
        ctx.add(ctx.key.to_string(), sql(value)?);
        return Ok(());
    }
    sniff(ctx, value)
}
