//! The config file, parsed once into types. Unknown keys are rejected, every error names
//! the key it is about (`targets[2].target`, `engine.timeouts.dns`), and nothing downstream
//! sees a string where a `Duration`, an address or a `TargetSpec` belongs.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use rustls::pki_types::CertificateDer;
use serde::Deserialize;

use crate::secret::Secret;

use crate::target::{self, TargetSpec};

/// What the engine sees of the process environment (app settings). Injected so tests and
/// ad-hoc requests control it; production passes `std::env::var`.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config.invalid: `{key}`: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub engine: EngineSettings,
    pub targets: Vec<TargetConfig>,
    /// `[policy]`: what ad-hoc requests may probe (the handler enforces it).
    pub policy: crate::policy::PolicyConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// Explicit DNS servers; empty means "Azure app settings, then resolv.conf".
    pub dns_servers: Vec<SocketAddr>,
    pub resolv_conf: PathBuf,
    /// `engine.discover`: add targets found in app settings (`None`: on inside Azure).
    pub discover: Option<bool>,
    /// `engine.azure_dns`: the Azure DNS to compare a failing custom DNS server with.
    /// `None`: 168.63.129.16:53, asked only when running on Azure.
    pub azure_dns: Option<SocketAddr>,
    /// `engine.route_all`: the operator's word for the site property
    /// `vnetRouteAllEnabled`, which the app cannot read.
    pub route_all: Option<bool>,
    /// What discovery did (set by `discover::apply`), for the report's environment.
    pub discovery: Option<crate::discover::Summary>,
    /// Targets probed at once. Bounded because every probe is traffic into a private network.
    pub concurrency: usize,
    /// The whole run's budget; callers may shorten it (the HTTP trigger's own deadline).
    pub deadline: Duration,
    pub timeouts: Timeouts,
    /// Connect to every resolved address instead of the first.
    pub all_addresses: bool,
    /// How long a bare `tcp://` probe watches a fresh connection for an immediate reset.
    pub tcp_settle: Duration,
    /// Extra trust anchors for every TLS target (`engine.ca_file`), on top of the system store.
    pub ca_roots: Vec<CertificateDer<'static>>,
    /// The same, as PEM text, for tiberius' TLS on a TDS login connection.
    pub ca_pem: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub dns: Duration,
    pub tcp: Duration,
    pub tls: Duration,
    /// Request written to the first response byte.
    pub http: Duration,
    /// First byte to the end of the body read.
    pub body: Duration,
    /// TDS: PRELOGIN, and the login (token, handshake, LOGINACK).
    pub login: Duration,
    /// TDS: the query after the login.
    pub query: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            dns_servers: Vec::new(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            discover: None,
            azure_dns: None,
            route_all: None,
            discovery: None,
            concurrency: 32,
            deadline: Duration::from_secs(30),
            timeouts: Timeouts {
                dns: Duration::from_secs(2),
                tcp: Duration::from_secs(3),
                tls: Duration::from_secs(5),
                http: Duration::from_secs(10),
                body: Duration::from_secs(10),
                login: Duration::from_secs(15),
                query: Duration::from_secs(30),
            },
            all_addresses: false,
            tcp_settle: Duration::from_millis(20),
            ca_roots: Vec::new(),
            ca_pem: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    pub name: String,
    pub spec: TargetSpec,
    /// The app setting a discovered target came from (`None` for configured targets).
    pub source: Option<String>,
    pub expect: Expectations,
    /// Per-target override of `engine.all_addresses`.
    pub all_addresses: Option<bool>,
    pub tls: TlsOptions,
    pub http: HttpOptions,
    pub tds: TdsOptions,
}

/// How a `sqlserver://` target logs in and what it runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TdsOptions {
    pub auth: crate::probe::tds::LoginAuth,
    pub strict: bool,
    /// Run after the login; `SELECT 1` by default.
    pub query: String,
}

impl TdsOptions {
    /// Defaults from what the connection string said, before any config key.
    fn from_spec(spec: &TargetSpec) -> (TdsOptions, TlsOptions) {
        use crate::probe::tds::LoginAuth;
        let TargetSpec::Sql { auth, .. } = spec else {
            return (TdsOptions::default(), TlsOptions::default());
        };
        let method = auth
            .authentication
            .as_deref()
            .map(|a| a.to_ascii_lowercase().replace(' ', ""))
            .unwrap_or_default();
        let login = if matches!(
            method.as_str(),
            "activedirectorymanagedidentity" | "activedirectorymsi" | "activedirectorydefault"
        ) {
            // For a user-assigned identity, `User ID` carries its client id.
            LoginAuth::ManagedIdentity {
                client_id: auth.user.clone(),
            }
        } else {
            match (&auth.user, &auth.password) {
                (Some(u), Some(p)) => LoginAuth::Sql {
                    user: u.clone(),
                    password: p.clone(),
                },
                _ => LoginAuth::None,
            }
        };
        (
            TdsOptions {
                auth: login,
                strict: auth.strict,
                query: "SELECT 1".into(),
            },
            TlsOptions {
                sni: auth.hostname_in_certificate.clone(),
                insecure: auth.trust_server_certificate,
                ..Default::default()
            },
        )
    }
}

impl TargetConfig {
    /// A CLI or ad-hoc target: named after itself, no expectations.
    pub fn adhoc(spec: TargetSpec) -> Self {
        let sni = match &spec {
            TargetSpec::Tls { sni, .. } => sni.clone(),
            _ => None,
        };
        let (tds, tds_tls) = TdsOptions::from_spec(&spec);
        TargetConfig {
            name: spec.to_string(),
            source: None,
            spec,
            expect: Expectations::default(),
            all_addresses: None,
            tls: TlsOptions {
                sni: sni.or(tds_tls.sni),
                insecure: tds_tls.insecure,
                ..Default::default()
            },
            http: HttpOptions::default(),
            tds,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsOptions {
    /// Name to send as SNI and verify, instead of the target's host.
    pub sni: Option<String>,
    /// Extra trust anchors for this target (`ca_file`).
    pub ca_roots: Vec<CertificateDer<'static>>,
    pub ca_pem: Vec<u8>,
    /// Record the verdict but do not fail on it.
    pub insecure: bool,
    pub cert_days_left: Option<u32>,
}

/// A compiled `body_regex`; compared by pattern so configs stay comparable.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    pub method: String,
    /// Header values may come from app settings (`env:NAME`); all are kept as secrets
    /// because a header is where credentials travel.
    pub headers: Vec<(String, Secret)>,
    pub body: Option<Secret>,
    /// Accepted statuses as inclusive ranges; default 200-399.
    pub status: Vec<(u16, u16)>,
    pub body_contains: Option<String>,
    pub body_regex: Option<Pattern>,
    /// `(header name, substring its value must contain)`.
    pub header_contains: Vec<(String, String)>,
    pub follow_redirects: bool,
    pub max_redirects: u8,
    pub max_body_bytes: usize,
    /// `max_body_bytes` was set: exceeding it fails (`http.too_large`). The default
    /// limit only bounds what is read.
    pub enforce_body_limit: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            status: vec![(200, 399)],
            body_contains: None,
            body_regex: None,
            header_contains: Vec::new(),
            follow_redirects: false,
            max_redirects: 5,
            max_body_bytes: 64 * 1024,
            enforce_body_limit: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expectations {
    /// No resolved address may be public (private, loopback and link-local pass).
    pub private: bool,
    /// Every resolved address must fall inside one of these (single IPs are /32 or /128).
    pub addresses: Vec<IpNet>,
    /// The whole target, all layers, within this many milliseconds.
    pub max_ms: Option<u64>,
}

// ---- the file as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    policy: crate::policy::RawPolicy,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    dns_servers: Option<Vec<String>>,
    resolv_conf: Option<String>,
    discover: Option<bool>,
    azure_dns: Option<String>,
    route_all: Option<bool>,
    concurrency: Option<i64>,
    deadline: Option<String>,
    all_addresses: Option<bool>,
    tcp_settle: Option<String>,
    ca_file: Option<String>,
    #[serde(default)]
    timeouts: RawTimeouts,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    dns: Option<String>,
    tcp: Option<String>,
    tls: Option<String>,
    http: Option<String>,
    body: Option<String>,
    login: Option<String>,
    query: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Option<String>,
    target: Option<String>,
    private: Option<bool>,
    addresses: Option<Vec<String>>,
    max_ms: Option<i64>,
    all_addresses: Option<bool>,
    // TLS (tls:// and https:// targets)
    sni: Option<String>,
    ca_file: Option<String>,
    insecure: Option<bool>,
    cert_days_left: Option<i64>,
    // HTTP (http:// and https:// targets)
    method: Option<String>,
    headers: Option<std::collections::BTreeMap<String, String>>,
    body: Option<String>,
    status: Option<Vec<RawStatus>>,
    body_contains: Option<String>,
    body_regex: Option<String>,
    header_contains: Option<std::collections::BTreeMap<String, String>>,
    follow_redirects: Option<bool>,
    max_redirects: Option<i64>,
    max_body_bytes: Option<i64>,
    // TDS (sqlserver:// and SQL connection-string targets)
    user: Option<String>,
    password: Option<String>,
    authentication: Option<String>,
    client_id: Option<String>,
    query: Option<String>,
    strict: Option<bool>,
}

/// `status = [200, 401, "500-599"]`
#[derive(Deserialize)]
#[serde(untagged)]
enum RawStatus {
    Code(i64),
    Range(String),
}

/// Reads and validates a config file. `env` resolves `env:VAR` targets.
pub fn load(path: &Path, env: EnvLookup) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path.display().to_string(), format!("cannot read: {e}")))?;
    parse(&text, env)
}

pub fn parse(text: &str, env: EnvLookup) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        // toml's message already names the key and the line; keep it on one line.
        let msg = e.message().to_string();
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let key = match line {
            Some(l) => format!("line {l}"),
            None => "file".to_string(),
        };
        ConfigError::new(key, msg)
    })?;
    let engine = engine_settings(raw.engine)?;
    let mut targets = Vec::with_capacity(raw.targets.len());
    let mut names = HashSet::new();
    for (i, t) in raw.targets.into_iter().enumerate() {
        let tc = target_config(i, t, env)?;
        if !names.insert(tc.name.clone()) {
            return Err(ConfigError::new(
                format!("targets[{i}].name"),
                format!("duplicate target name `{}`", tc.name),
            ));
        }
        targets.push(tc);
    }
    let policy = crate::policy::PolicyConfig::from_raw(raw.policy)?;
    Ok(Config {
        engine,
        targets,
        policy,
    })
}

fn engine_settings(raw: RawEngine) -> Result<EngineSettings, ConfigError> {
    let mut s = EngineSettings::default();
    if let Some(list) = raw.dns_servers {
        s.dns_servers = list
            .iter()
            .enumerate()
            .map(|(i, v)| {
                parse_dns_server(v)
                    .map_err(|m| ConfigError::new(format!("engine.dns_servers[{i}]"), m))
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(p) = raw.resolv_conf {
        s.resolv_conf = PathBuf::from(p);
    }
    s.discover = raw.discover;
    s.route_all = raw.route_all;
    if let Some(a) = raw.azure_dns {
        s.azure_dns =
            Some(parse_dns_server(&a).map_err(|m| ConfigError::new("engine.azure_dns", m))?);
    }
    if let Some(c) = raw.concurrency {
        if !(1..=4096).contains(&c) {
            return Err(ConfigError::new(
                "engine.concurrency",
                format!("{c} is outside 1..=4096"),
            ));
        }
        s.concurrency = c as usize;
    }
    if let Some(d) = raw.deadline {
        s.deadline = duration("engine.deadline", &d, Duration::from_secs(3600))?;
    }
    if let Some(d) = raw.timeouts.dns {
        s.timeouts.dns = duration("engine.timeouts.dns", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.tcp {
        s.timeouts.tcp = duration("engine.timeouts.tcp", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.tls {
        s.timeouts.tls = duration("engine.timeouts.tls", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.http {
        s.timeouts.http = duration("engine.timeouts.http", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.login {
        s.timeouts.login = duration("engine.timeouts.login", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.query {
        s.timeouts.query = duration("engine.timeouts.query", &d, Duration::from_secs(600))?;
    }
    if let Some(d) = raw.timeouts.body {
        s.timeouts.body = duration("engine.timeouts.body", &d, Duration::from_secs(600))?;
    }
    if let Some(f) = raw.ca_file {
        (s.ca_roots, s.ca_pem) = load_ca_file("engine.ca_file", &f)?;
    }
    if let Some(d) = raw.tcp_settle {
        s.tcp_settle = duration_allow_zero("engine.tcp_settle", &d, Duration::from_secs(10))?;
    }
    if let Some(a) = raw.all_addresses {
        s.all_addresses = a;
    }
    Ok(s)
}

fn target_config(i: usize, raw: RawTarget, env: EnvLookup) -> Result<TargetConfig, ConfigError> {
    let key = |k: &str| format!("targets[{i}].{k}");
    let Some(uri) = raw.target else {
        return Err(ConfigError::new(
            key("target"),
            "missing (e.g. target = \"tcp://host:1433\")",
        ));
    };
    let spec = target::parse(&uri, env).map_err(|e| ConfigError::new(key("target"), e.0))?;
    let name = match raw.name {
        Some(n) => {
            let n = n.trim().to_string();
            if n.is_empty() || n.len() > 128 || n.chars().any(char::is_control) {
                return Err(ConfigError::new(
                    key("name"),
                    "1 to 128 printable characters",
                ));
            }
            n
        }
        None => spec.to_string(),
    };
    let mut expect = Expectations {
        private: raw.private.unwrap_or(false),
        ..Default::default()
    };
    if let Some(list) = raw.addresses {
        if list.is_empty() {
            return Err(ConfigError::new(
                key("addresses"),
                "empty list: omit the key to accept any address",
            ));
        }
        for (j, a) in list.iter().enumerate() {
            expect.addresses.push(
                parse_net(a)
                    .map_err(|m| ConfigError::new(format!("targets[{i}].addresses[{j}]"), m))?,
            );
        }
    }
    if let Some(ms) = raw.max_ms {
        if !(1..=3_600_000).contains(&ms) {
            return Err(ConfigError::new(
                key("max_ms"),
                format!("{ms} is outside 1..=3600000"),
            ));
        }
        expect.max_ms = Some(ms as u64);
    }
    if (expect.private || !expect.addresses.is_empty()) && spec.dns_name().is_none() {
        return Err(ConfigError::new(
            key(if expect.private {
                "private"
            } else {
                "addresses"
            }),
            "this target has no DNS name to check (it is an IP address)",
        ));
    }
    let plan = spec.layers();
    let is_http = plan.contains(&crate::report::Layer::Http);
    let is_tds = plan.contains(&crate::report::Layer::Tds);
    // TDS targets handshake TLS too (inside PRELOGIN), so they take the TLS keys.
    let is_tls = plan.contains(&crate::report::Layer::Tls) || is_tds;
    let only = |present: bool, k: &str, what: &str| -> Result<(), ConfigError> {
        if present {
            Err(ConfigError::new(key(k), format!("only for {what} targets")))
        } else {
            Ok(())
        }
    };
    only(!is_tls && raw.sni.is_some(), "sni", "tls:// and https://")?;
    only(
        !is_tls && raw.ca_file.is_some(),
        "ca_file",
        "tls:// and https://",
    )?;
    only(
        !is_tls && raw.insecure.is_some(),
        "insecure",
        "tls:// and https://",
    )?;
    only(
        !plan.contains(&crate::report::Layer::Tls) && raw.cert_days_left.is_some(),
        "cert_days_left",
        "tls:// and https://",
    )?;
    for (k, present) in [
        ("user", raw.user.is_some()),
        ("password", raw.password.is_some()),
        ("authentication", raw.authentication.is_some()),
        ("client_id", raw.client_id.is_some()),
        ("query", raw.query.is_some()),
        ("strict", raw.strict.is_some()),
    ] {
        only(
            !is_tds && present,
            k,
            "sqlserver:// and SQL connection-string",
        )?;
    }
    let (mut tds, tds_tls) = TdsOptions::from_spec(&spec);
    let mut tls = TlsOptions {
        sni: match &spec {
            TargetSpec::Tls { sni, .. } => sni.clone(),
            _ => tds_tls.sni,
        },
        insecure: raw.insecure.unwrap_or(tds_tls.insecure),
        ..Default::default()
    };
    if is_tds {
        tds_keys(
            i,
            &raw.user,
            &raw.password,
            &raw.authentication,
            &raw.client_id,
            env,
            &mut tds,
        )?;
        if let Some(q) = &raw.query {
            if q.trim().is_empty() || q.len() > 4000 {
                return Err(ConfigError::new(key("query"), "1 to 4000 characters"));
            }
            tds.query = q.clone();
        }
        if let Some(st) = raw.strict {
            tds.strict = st;
        }
    }
    if let Some(n) = raw.sni {
        crate::target::parse_host(&n).map_err(|e| ConfigError::new(key("sni"), e.0))?;
        tls.sni = Some(n.trim_end_matches('.').to_ascii_lowercase());
    }
    if let Some(f) = raw.ca_file {
        (tls.ca_roots, tls.ca_pem) = load_ca_file(&key("ca_file"), &f)?;
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
    let fields = RawHttp {
        method: &raw.method,
        headers: &raw.headers,
        body: &raw.body,
        status: &raw.status,
        body_contains: &raw.body_contains,
        body_regex: &raw.body_regex,
        header_contains: &raw.header_contains,
        follow_redirects: &raw.follow_redirects,
        max_redirects: &raw.max_redirects,
        max_body_bytes: &raw.max_body_bytes,
    };
    let http = http_options(i, &fields, is_http, env)?;
    Ok(TargetConfig {
        name,
        source: None,
        spec,
        expect,
        all_addresses: raw.all_addresses,
        tls,
        http,
        tds,
    })
}

/// Login keys of a TDS target. Passwords may (and should) come from app settings.
fn tds_keys(
    i: usize,
    user: &Option<String>,
    password: &Option<String>,
    authentication: &Option<String>,
    client_id: &Option<String>,
    env: EnvLookup,
    tds: &mut TdsOptions,
) -> Result<(), ConfigError> {
    use crate::probe::tds::LoginAuth;
    let key = |k: &str| format!("targets[{i}].{k}");
    let password = match password {
        Some(p) => Some(Secret::new(match p.strip_prefix("env:") {
            Some(var) => env(var).ok_or_else(|| {
                ConfigError::new(key("password"), format!("app setting `{var}` is not set"))
            })?,
            None => p.clone(),
        })),
        None => None,
    };
    let method = authentication.as_deref().map(str::to_ascii_lowercase);
    match method.as_deref() {
        Some("managed_identity") => {
            tds.auth = LoginAuth::ManagedIdentity {
                client_id: client_id.clone(),
            };
        }
        Some("none") => tds.auth = LoginAuth::None,
        Some("sql") | None => {
            if client_id.is_some() {
                return Err(ConfigError::new(
                    key("client_id"),
                    "only with authentication = \"managed_identity\"",
                ));
            }
            let existing = match &tds.auth {
                LoginAuth::Sql { user, password } => (Some(user.clone()), Some(password.clone())),
                _ => (None, None),
            };
            match (user.clone().or(existing.0), password.or(existing.1)) {
                (Some(u), Some(p)) => {
                    tds.auth = LoginAuth::Sql {
                        user: u,
                        password: p,
                    }
                }
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        key("password"),
                        "a SQL login needs a password (e.g. \"env:SQL_PASSWORD\")",
                    ));
                }
                (None, Some(_)) => {
                    return Err(ConfigError::new(key("user"), "a SQL login needs a user"));
                }
                (None, None) if method.is_some() => {
                    return Err(ConfigError::new(
                        key("user"),
                        "authentication = \"sql\" needs user and password",
                    ));
                }
                (None, None) => {}
            }
        }
        Some(other) => {
            return Err(ConfigError::new(
                key("authentication"),
                format!("`{other}` is not sql, managed_identity or none"),
            ));
        }
    }
    Ok(())
}

/// The HTTP keys of a target, split out so `target_config` stays readable.
struct RawHttp<'a> {
    method: &'a Option<String>,
    headers: &'a Option<std::collections::BTreeMap<String, String>>,
    body: &'a Option<String>,
    status: &'a Option<Vec<RawStatus>>,
    body_contains: &'a Option<String>,
    body_regex: &'a Option<String>,
    header_contains: &'a Option<std::collections::BTreeMap<String, String>>,
    follow_redirects: &'a Option<bool>,
    max_redirects: &'a Option<i64>,
    max_body_bytes: &'a Option<i64>,
}

fn http_options(
    i: usize,
    raw: &RawHttp<'_>,
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
    if let Some(m) = raw.method {
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
    if let Some(map) = raw.headers {
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
    if let Some(b) = raw.body {
        h.body = Some(Secret::new(b.clone()));
    }
    if let Some(list) = raw.status {
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
    if let Some(re) = raw.body_regex {
        h.body_regex = Some(Pattern(regex::Regex::new(re).map_err(|e| {
            ConfigError::new(key("body_regex"), e.to_string().replace('\n', " "))
        })?));
    }
    if let Some(map) = raw.header_contains {
        h.header_contains = map
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
    }
    h.follow_redirects = raw.follow_redirects.unwrap_or(false);
    if let Some(n) = *raw.max_redirects {
        if !(0..=20).contains(&n) {
            return Err(ConfigError::new(
                key("max_redirects"),
                format!("{n} is outside 0..=20"),
            ));
        }
        h.max_redirects = n as u8;
    }
    if let Some(n) = *raw.max_body_bytes {
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
fn load_ca_file(
    key: &str,
    path: &str,
) -> Result<(Vec<CertificateDer<'static>>, Vec<u8>), ConfigError> {
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
    Ok((certs, bytes))
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`; port 53 by default.
pub fn parse_dns_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("`{s}` is not IP or IP:PORT (IPv6 with a port as [::1]:53)"))
        .and_then(|a| {
            if a.port() == 0 {
                Err(format!("`{s}`: port 0"))
            } else {
                Ok(a)
            }
        })
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    s.parse::<IpNet>()
        .map_err(|_| format!("`{s}` is not an IP address or CIDR (e.g. 10.1.2.4 or 10.1.0.0/16)"))
}

pub fn duration(key: &str, s: &str, max: Duration) -> Result<Duration, ConfigError> {
    let d = duration_allow_zero(key, s, max)?;
    if d.is_zero() {
        return Err(ConfigError::new(key, "must be more than 0"));
    }
    Ok(d)
}

fn duration_allow_zero(key: &str, s: &str, max: Duration) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        ConfigError::new(
            key,
            format!("`{s}` is not a duration like \"2s\" or \"500ms\": {e}"),
        )
    })?;
    if d > max {
        return Err(ConfigError::new(
            key,
            format!("{s} is more than {}", humantime::format_duration(max)),
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "SqlConnectionString")
            .then(|| "Server=tcp:db.database.windows.net,1433;Password=x".to_string())
    }

    #[test]
    fn full_config() {
        let c = parse(
            r#"
            [engine]
            dns_servers = ["127.0.0.53:5353", "10.0.0.4", "[::1]:53"]
            concurrency = 8
            deadline = "10s"
            tcp_settle = "0s"
            all_addresses = true
            [engine.timeouts]
            dns = "500ms"
            tcp = "1s"

            [[targets]]
            name = "sql"
            target = "tcp://loopsql.database.windows.net:1433"
            private = true
            addresses = ["127.0.0.1", "10.1.0.0/16"]
            max_ms = 250

            [[targets]]
            target = "env:SqlConnectionString"
            "#,
            &env,
        )
        .unwrap();
        assert_eq!(c.engine.dns_servers.len(), 3);
        assert_eq!(c.engine.dns_servers[1], "10.0.0.4:53".parse().unwrap());
        assert_eq!(c.engine.timeouts.dns, Duration::from_millis(500));
        assert_eq!(c.engine.concurrency, 8);
        assert!(c.engine.tcp_settle.is_zero());
        assert_eq!(c.targets[0].expect.addresses.len(), 2);
        assert_eq!(c.targets[0].expect.max_ms, Some(250));
        assert_eq!(
            c.targets[1].name,
            "sqlserver://db.database.windows.net:1433"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("[engine]\nbogus = 1", "line 2", "unknown field `bogus`"),
            (
                "[[targets]]\ntarget = \"tcp://a:1\"\nprivat = true",
                "line 3",
                "unknown field `privat`",
            ),
            (
                "[engine.timeouts]\ndns = \"fast\"",
                "engine.timeouts.dns",
                "not a duration",
            ),
            (
                "[engine.timeouts]\ntcp = \"0s\"",
                "engine.timeouts.tcp",
                "more than 0",
            ),
            (
                "[engine]\ndeadline = \"2h\"",
                "engine.deadline",
                "more than 1h",
            ),
            ("[engine]\nconcurrency = 0", "engine.concurrency", "outside"),
            (
                "[engine]\ndns_servers = [\"dns.google\"]",
                "engine.dns_servers[0]",
                "not IP or IP:PORT",
            ),
            ("[[targets]]\nname = \"x\"", "targets[0].target", "missing"),
            (
                "[[targets]]\ntarget = \"tcp://a\"",
                "targets[0].target",
                "needs a port",
            ),
            (
                "[[targets]]\ntarget = \"env:Nope\"",
                "targets[0].target",
                "`Nope` is not set",
            ),
            (
                "[[targets]]\ntarget = \"tcp://a:1\"\naddresses = [\"10.0.0.0/33\"]",
                "targets[0].addresses[0]",
                "not an IP address or CIDR",
            ),
            (
                "[[targets]]\ntarget = \"tcp://a:1\"\naddresses = []",
                "targets[0].addresses",
                "empty list",
            ),
            (
                "[[targets]]\ntarget = \"tcp://10.0.0.1:1\"\nprivate = true",
                "targets[0].private",
                "no DNS name",
            ),
            (
                "[[targets]]\ntarget = \"tcp://a:1\"\nmax_ms = -5",
                "targets[0].max_ms",
                "outside",
            ),
            (
                "[[targets]]\nname = \"a\"\ntarget = \"tcp://a:1\"\n[[targets]]\nname = \"a\"\ntarget = \"tcp://b:1\"",
                "targets[1].name",
                "duplicate target name `a`",
            ),
            ("[engine]\nconcurrency = \"many\"", "line 2", "invalid type"),
            (
                "[engine]\nca_file = \"/nonexistent.pem\"",
                "engine.ca_file",
                "cannot read",
            ),
            (
                "[[targets]]\ntarget = \"tcp://a:1\"\nsni = \"x\"",
                "targets[0].sni",
                "only for tls:// and https://",
            ),
            (
                "[[targets]]\ntarget = \"tls://a:1\"\nstatus = [200]",
                "targets[0].status",
                "only for http:// and https://",
            ),
            (
                "[[targets]]\ntarget = \"https://a/\"\nmethod = \"BREW\"",
                "targets[0].method",
                "`BREW` is not",
            ),
            (
                "[[targets]]\ntarget = \"https://a/\"\nstatus = [\"300-200\"]",
                "targets[0].status[0]",
                "backwards",
            ),
            (
                "[[targets]]\ntarget = \"https://a/\"\nstatus = [99]",
                "targets[0].status[0]",
                "not an HTTP status",
            ),
            (
                "[[targets]]\ntarget = \"https://a/\"\nbody_regex = \"(\"",
                "targets[0].body_regex",
                "unclosed",
            ),
            (
                "[[targets]]\ntarget = \"https://a/\"\nheaders = { \"x-key\" = \"env:Missing\" }",
                "targets[0].headers.x-key",
                "`Missing` is not set",
            ),
            (
                "[[targets]]\ntarget = \"https://a/\"\nheaders = { \"bad header\" = \"v\" }",
                "targets[0].headers.bad header",
                "not a valid header name",
            ),
            (
                "[[targets]]\ntarget = \"https://a/\"\nmax_body_bytes = -1",
                "targets[0].max_body_bytes",
                "outside",
            ),
            (
                "[[targets]]\ntarget = \"https://a/\"\ncert_days_left = 99999",
                "targets[0].cert_days_left",
                "outside",
            ),
        ];
        for (text, key, msg) in cases {
            let e = parse(text, &env).expect_err(text);
            assert_eq!(&e.key, key, "{text}: {e}");
            assert!(e.message.contains(msg), "{text}: got `{e}`, want `{msg}`");
            assert!(e.to_string().starts_with("config.invalid: "), "{e}");
        }
    }

    #[test]
    fn dns_server_forms() {
        assert_eq!(
            parse_dns_server("1.2.3.4").unwrap(),
            "1.2.3.4:53".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("127.0.0.53:5353").unwrap(),
            "127.0.0.53:5353".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("::1").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert!(parse_dns_server("[::1]:0").is_err());
        assert!(parse_dns_server("host:53").is_err());
    }
}
