//! A target as the engine runs it: the spec plus the per-target options config gives it
//! (expectations, TLS, HTTP, TDS).

use ipnet::IpNet;
use rustls::pki_types::CertificateDer;

use super::target::TargetSpec;
use crate::secret::Secret;

/// How the probe logs in, if at all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LoginAuth {
    /// No credentials: stop after PRELOGIN and TLS (the route to the TDS endpoint is proven).
    #[default]
    None,
    Sql {
        user: String,
        password: Secret,
    },
    /// A Microsoft Entra token from the App Service managed-identity endpoint; `client_id`
    /// selects a user-assigned identity.
    ManagedIdentity {
        client_id: Option<String>,
    },
}

/// `authentication = "managed_identity"` on a service or data-service target: log in with
/// a token from the app's managed identity. `client_id` picks a user-assigned identity;
/// without it, the system-assigned one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManagedIdentity {
    pub client_id: Option<String>,
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
    /// The data-service keys (`postgres://`); messaging targets take its `tls` mode.
    pub db: DbOptions,
    /// The messaging keys (`amqps://`, `kafka://`): the login.
    pub msg: MsgOptions,
}

/// Whether and how a data-service probe encrypts (like libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DbTls {
    Disable,
    /// Encrypt without checking the certificate.
    Require,
    /// Chain and name checked (the default).
    #[default]
    VerifyFull,
}

/// The keys of a data-service target (`postgres://`): TLS mode, login user, password or
/// managed identity. With neither the probe is credential-free.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DbOptions {
    pub tls: DbTls,
    /// For a managed identity: the Entra principal's name (PostgreSQL, MySQL) or its
    /// object id (Redis; taken from the token's `oid` claim when absent).
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub identity: Option<ManagedIdentity>,
}

/// How a messaging target (`amqp(s)://`, `amqpws(s)://`, `kafka://`) logs in. Without a
/// credential the probe is credential-free (SASL mechanisms; Kafka's ApiVersions).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MsgAuth {
    #[default]
    None,
    /// SASL PLAIN with `user` and `password` (RabbitMQ, Kafka brokers).
    Plain { user: String, password: Secret },
    /// Kafka SASL SCRAM with `user` and `password` (`sasl_mechanism`; Kafka brokers,
    /// not Event Hubs).
    Scram {
        mechanism: ScramHash,
        user: String,
        password: Secret,
    },
    /// SASL PLAIN with a Service Bus / Event Hubs SAS policy (`sas_key_name`, `sas_key`).
    SasKey { key_name: String, key: Secret },
    /// A Service Bus / Event Hubs connection string (`connection_string`, or the target's
    /// own `env:VAR`): AMQP logs in with its key or signature; Kafka sends it as the
    /// password of user `$ConnectionString`.
    ConnectionString(Secret),
    /// `authentication = "managed_identity"`: a Microsoft Entra token from the app's
    /// identity (AMQP CBS `put-token` type `jwt`, Kafka SASL OAUTHBEARER).
    ManagedIdentity(ManagedIdentity),
}

impl MsgAuth {
    /// For evidence: which kind, never the value.
    pub fn label(&self) -> &'static str {
        match self {
            MsgAuth::None => "none",
            MsgAuth::Plain { .. } => "password",
            MsgAuth::Scram { .. } => "scram",
            MsgAuth::SasKey { .. } => "sas_key",
            MsgAuth::ConnectionString(_) => "connection_string",
            MsgAuth::ManagedIdentity(_) => "managed_identity",
        }
    }
}

/// The hash of a Kafka SCRAM login (`sasl_mechanism = "scram-sha-256"` / `"scram-sha-512"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MsgOptions {
    pub auth: MsgAuth,
}

impl MsgOptions {
    /// What the target itself carries (a connection string from `env:VAR`).
    pub fn from_spec(spec: &TargetSpec) -> MsgOptions {
        let cs = match spec {
            TargetSpec::Amqp {
                connection_string, ..
            }
            | TargetSpec::Kafka {
                connection_string, ..
            } => connection_string.clone(),
            _ => None,
        };
        MsgOptions {
            auth: cs.map_or(MsgAuth::None, MsgAuth::ConnectionString),
        }
    }
}

/// How a `sqlserver://` target logs in and what it runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TdsOptions {
    pub auth: LoginAuth,
    pub strict: bool,
    /// Run after the login; `SELECT 1` by default.
    pub query: String,
}

impl TdsOptions {
    /// Defaults from what the connection string said, before any config key.
    pub fn from_spec(spec: &TargetSpec) -> (TdsOptions, TlsOptions) {
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
        let msg = MsgOptions::from_spec(&spec);
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
            db: DbOptions::default(),
            msg,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsOptions {
    /// Name to send as SNI and verify, instead of the target's host.
    pub sni: Option<String>,
    /// Extra trust anchors for this target (`ca_file`).
    pub ca_roots: Vec<CertificateDer<'static>>,
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
    /// `account_key = "env:NAME"`: the service layer's authorised read is signed with the
    /// storage key in app setting NAME (its `AccountKey=`, or Azurite's for
    /// `UseDevelopmentStorage=true`), read when the probe runs. Only the name is kept.
    pub account_key: Option<String>,
    /// `service = "blob" | "keyvault" | …`: run the service layer (`probe/service/`) on
    /// an https target whose host name does not say which service it is.
    pub service: Option<String>,
    /// `emulator = true`: the declared service is an emulator (Azurite): path-style URLs.
    pub emulator: bool,
    /// The service layer's authorised read with the app's identity.
    pub identity: Option<ManagedIdentity>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            method: "GET".into(),
            account_key: None,
            headers: Vec::new(),
            body: None,
            status: vec![(200, 399)],
            body_contains: None,
            body_regex: None,
            header_contains: Vec::new(),
            follow_redirects: false,
            service: None,
            emulator: false,
            identity: None,
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
