//! The stable failure classes (`layer.reason`), spelled once: the table below yields the
//! enum, its serde names, `as_str` and the list `FailureClass::ALL`.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! failure_classes {
    ($($(#[doc = $doc:literal])* $name:ident = $s:literal,)*) => {
        /// Stable failure classes (`layer.reason`). Hints, exit codes and telemetry match on
        /// these, never on message text, so the strings are part of the report contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum FailureClass {
            $($(#[doc = $doc])* #[serde(rename = $s)] $name,)*
        }

        impl FailureClass {
            /// Every class, in the table's order.
            pub const ALL: &'static [FailureClass] = &[$(FailureClass::$name,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(FailureClass::$name => $s,)*
                }
            }
        }
    };
}

failure_classes! {
    DnsNxdomain = "dns.nxdomain",
    DnsServfail = "dns.servfail",
    DnsRefused = "dns.refused",
    DnsTimeout = "dns.timeout",
    DnsNoRecords = "dns.no_records",
    DnsPublicAddress = "dns.public_address",
    /// Any other resolver failure (FORMERR, NOTIMP, malformed answer, socket error).
    DnsError = "dns.error",
    /// The custom DNS server failed (NXDOMAIN, SERVFAIL, no records or a public answer)
    /// where Azure DNS (168.63.129.16) resolves the name to a private address: the
    /// custom server does not forward the privatelink zone.
    DnsDivergent = "dns.divergent",
    TcpRefused = "tcp.refused",
    TcpTimeout = "tcp.timeout",
    TcpReset = "tcp.reset",
    TcpUnreachable = "tcp.unreachable",
    TcpForbidden = "tcp.forbidden",
    /// Any other socket error, with the OS error in the message.
    TcpError = "tcp.error",
    TlsUntrusted = "tls.untrusted",
    /// Expired or not yet valid.
    TlsExpired = "tls.expired",
    TlsNameMismatch = "tls.name_mismatch",
    /// Protocol failure: an alert, no common parameters, not TLS at all.
    TlsHandshake = "tls.handshake",
    TlsTimeout = "tls.timeout",
    HttpStatus = "http.status",
    HttpBody = "http.body",
    /// The message says which phase: first byte or body.
    HttpTimeout = "http.timeout",
    HttpTooLarge = "http.too_large",
    HttpRedirects = "http.redirects",
    /// Not a valid HTTP response, or the connection closed mid-response.
    HttpProtocol = "http.protocol",
    /// The chain's earliest certificate expires sooner than `cert_days_left`.
    ExpectCertDaysLeft = "expect.cert_days_left",
    /// Not a TDS server, or it closed the connection during PRELOGIN.
    TdsPrelogin = "tds.prelogin",
    /// Client and server cannot agree on encryption.
    TdsEncryption = "tds.encryption",
    /// The server refused the login (the message carries the SQL error number and state).
    TdsLoginFailed = "tds.login_failed",
    /// The server redirected the login (Redirect connection policy) and the redirect
    /// target could not be reached.
    TdsRedirect = "tds.redirect",
    TdsQuery = "tds.query",
    /// The message says which phase: prelogin, login or query.
    TdsTimeout = "tds.timeout",
    /// PostgreSQL (`probe/postgres.rs`): the port answered, but not with `S`/`N`.
    PostgresNotPostgres = "postgres.not_postgres",
    /// TCP accepted; `SSLRequest` never answered.
    PostgresNoAnswer = "postgres.no_answer",
    PostgresTlsRefused = "postgres.tls_refused",
    PostgresTlsFailed = "postgres.tls_failed",
    /// 28000 `no pg_hba.conf entry for host "ADDR"`: the evidence's `witness`.
    PostgresNoHbaEntry = "postgres.no_hba_entry",
    PostgresHbaRejected = "postgres.hba_rejected",
    PostgresAuthFailed = "postgres.auth_failed",
    PostgresTokenRejected = "postgres.token_rejected",
    /// The server asked for the token in clear text on a connection without TLS; not sent.
    PostgresTokenNeedsTls = "postgres.token_needs_tls",
    PostgresUnknownUser = "postgres.unknown_user",
    PostgresDatabaseMissing = "postgres.database_missing",
    PostgresTooManyConnections = "postgres.too_many_connections",
    PostgresServerStarting = "postgres.server_starting",
    PostgresAuthUnsupported = "postgres.auth_unsupported",
    PostgresQueryFailed = "postgres.query_failed",
    PostgresServerError = "postgres.server_error",
    PostgresProtocol = "postgres.protocol",
    /// The server closed mid-handshake (the message says which phase).
    PostgresClosed = "postgres.closed",
    PostgresTimeout = "postgres.timeout",
    PostgresIo = "postgres.io",
    /// MySQL / MariaDB (`probe/mysql.rs`); 1045/1130/firewall refusals carry the `witness`.
    MysqlNotMysql = "mysql.not_mysql",
    MysqlNoGreeting = "mysql.no_greeting",
    MysqlTlsRefused = "mysql.tls_refused",
    MysqlTlsFailed = "mysql.tls_failed",
    MysqlAuthFailed = "mysql.auth_failed",
    MysqlTokenRejected = "mysql.token_rejected",
    MysqlHostNotAllowed = "mysql.host_not_allowed",
    MysqlFirewall = "mysql.firewall",
    MysqlInsecureTransport = "mysql.insecure_transport",
    MysqlDatabaseMissing = "mysql.database_missing",
    MysqlDatabaseAccessDenied = "mysql.database_access_denied",
    MysqlTooManyConnections = "mysql.too_many_connections",
    MysqlPasswordExpired = "mysql.password_expired",
    MysqlCleartextNeedsTls = "mysql.cleartext_needs_tls",
    MysqlAuthUnsupported = "mysql.auth_unsupported",
    MysqlQueryFailed = "mysql.query_failed",
    MysqlServerError = "mysql.server_error",
    MysqlProtocol = "mysql.protocol",
    MysqlClosed = "mysql.closed",
    MysqlTimeout = "mysql.timeout",
    MysqlIo = "mysql.io",
    /// Redis (`probe/redis.rs`).
    RedisNotRedis = "redis.not_redis",
    RedisNoAnswer = "redis.no_answer",
    RedisTlsRefused = "redis.tls_refused",
    RedisTlsFailed = "redis.tls_failed",
    RedisPlaintextRefused = "redis.plaintext_refused",
    RedisAuthFailed = "redis.auth_failed",
    RedisTokenRejected = "redis.token_rejected",
    RedisTokenExpired = "redis.token_expired",
    /// A token would go to `AUTH` on a connection without TLS; not sent.
    RedisTokenNeedsTls = "redis.token_needs_tls",
    RedisNoPermission = "redis.no_permission",
    RedisProtectedMode = "redis.protected_mode",
    RedisFirewall = "redis.firewall",
    RedisLoading = "redis.loading",
    RedisServerError = "redis.server_error",
    RedisProtocol = "redis.protocol",
    RedisClosed = "redis.closed",
    RedisTimeout = "redis.timeout",
    RedisIo = "redis.io",
    /// The app's managed identity (`platform/identity.rs`): no token for the login. The
    /// layer ran credential-free first, so its server answered.
    IdentityNotConfigured = "identity.not_configured",
    /// The identity endpoint refused the connection, reset it or did not answer.
    IdentityUnavailable = "identity.unavailable",
    /// The identity endpoint answered with an error (the status and its message).
    IdentityRefused = "identity.refused",
    /// A 2xx answer without a usable `access_token` / `expires_on`.
    IdentityMalformed = "identity.malformed",
    /// AMQP 1.0: Service Bus, Event Hubs (`probe/amqp.rs`).
    AmqpNotThisProtocol = "amqp.not_this_protocol",
    AmqpUnsupportedVersion = "amqp.unsupported_version",
    /// The TLS layer's handshake failed on an AMQP port (the class of the `tls` layer).
    AmqpTlsRefused = "amqp.tls_refused",
    AmqpWebsocketRefused = "amqp.websocket_refused",
    AmqpClosed = "amqp.closed",
    AmqpTimeout = "amqp.timeout",
    AmqpAuthFailed = "amqp.auth_failed",
    AmqpTokenExpired = "amqp.token_expired",
    AmqpForbidden = "amqp.forbidden",
    /// "Ip has been prevented to connect to the endpoint".
    AmqpNetworkRule = "amqp.network_rule",
    AmqpUnsupported = "amqp.unsupported",
    AmqpRemoteError = "amqp.remote_error",
    AmqpBadCredentials = "amqp.bad_credentials",
    AmqpProtocolError = "amqp.protocol_error",
    AmqpIoError = "amqp.io_error",
    /// Kafka: Event Hubs' Kafka endpoint, Kafka-compatible brokers (`probe/kafka.rs`).
    KafkaNotThisProtocol = "kafka.not_this_protocol",
    /// The TLS layer's handshake failed on a Kafka port (the class of the `tls` layer).
    KafkaTlsRefused = "kafka.tls_refused",
    KafkaClosed = "kafka.closed",
    KafkaTimeout = "kafka.timeout",
    KafkaAuthFailed = "kafka.auth_failed",
    KafkaTokenExpired = "kafka.token_expired",
    KafkaNetworkRule = "kafka.network_rule",
    KafkaUnsupported = "kafka.unsupported",
    KafkaIllegalSaslState = "kafka.illegal_sasl_state",
    KafkaBrokerError = "kafka.broker_error",
    KafkaBadCredentials = "kafka.bad_credentials",
    KafkaProtocolError = "kafka.protocol_error",
    KafkaIoError = "kafka.io_error",
    /// The request was refused by policy before any packet was sent (ad-hoc targets).
    PolicyDenied = "policy.denied",
    /// The resolved addresses are not the ones the target expects.
    ExpectAddresses = "expect.addresses",
    /// Every layer passed but the whole probe took longer than `max_ms`.
    ExpectMaxMs = "expect.max_ms",
    /// The service layer (`probe/service/`): the verdict on the service's own answer.
    ServiceFirewall = "service.firewall",
    ServiceRbac = "service.rbac",
    ServiceAuthFailed = "service.auth_failed",
    ServiceNotService = "service.not_service",
    ServiceError = "service.error",
    ServiceUnexpected = "service.unexpected",
    /// With `private = true`, the service's witness of our address is public.
    ServicePublicPath = "service.public_path",
    ServiceDeadline = "service.deadline",
    ServiceHttpProtocol = "service.http_protocol",
    /// SMB 445 (`probe/smb.rs`).
    SmbRefused = "smb.refused",
    SmbTimeout = "smb.timeout",
    SmbNotSmb = "smb.not_smb",
    SmbNegotiateRejected = "smb.negotiate_rejected",
    SmbClosed = "smb.closed",
    SmbError = "smb.error",
    ConfigInvalid = "config.invalid",
    /// The run deadline expired before this layer (or target) finished.
    Deadline = "deadline",
}

impl FailureClass {
    /// Whether a failure of this class still proves the server answered at this layer.
    /// Expectation failures happen after the layer answered; transport failures do not.
    /// A protocol's `tls_refused` on the TLS layer is `tls.handshake` re-classed, and
    /// like it does not count as an answer.
    /// A certificate the client rejects was still served, and a 401 or 500 is an HTTP
    /// server answering: the route works, something above it does not.
    pub fn layer_answered(self) -> bool {
        matches!(
            self,
            FailureClass::DnsPublicAddress
                | FailureClass::ExpectAddresses
                | FailureClass::ExpectMaxMs
                | FailureClass::DnsNxdomain
                | FailureClass::DnsNoRecords
                | FailureClass::DnsDivergent
                | FailureClass::TlsUntrusted
                | FailureClass::TlsExpired
                | FailureClass::TlsNameMismatch
                | FailureClass::ExpectCertDaysLeft
                | FailureClass::HttpStatus
                | FailureClass::HttpBody
                | FailureClass::HttpTooLarge
                | FailureClass::HttpRedirects
                | FailureClass::TdsEncryption
                | FailureClass::TdsLoginFailed
                | FailureClass::TdsRedirect
                | FailureClass::TdsQuery
                | FailureClass::ServiceFirewall
                | FailureClass::ServiceRbac
                | FailureClass::ServiceAuthFailed
                | FailureClass::ServiceError
                | FailureClass::ServiceUnexpected
                | FailureClass::ServicePublicPath
                | FailureClass::SmbNegotiateRejected
                | FailureClass::PostgresTlsRefused
                | FailureClass::PostgresNoHbaEntry
                | FailureClass::PostgresHbaRejected
                | FailureClass::PostgresAuthFailed
                | FailureClass::PostgresTokenRejected
                | FailureClass::PostgresTokenNeedsTls
                | FailureClass::PostgresUnknownUser
                | FailureClass::PostgresDatabaseMissing
                | FailureClass::PostgresTooManyConnections
                | FailureClass::PostgresServerStarting
                | FailureClass::PostgresAuthUnsupported
                | FailureClass::PostgresQueryFailed
                | FailureClass::PostgresServerError
                | FailureClass::MysqlTlsRefused
                | FailureClass::MysqlAuthFailed
                | FailureClass::MysqlTokenRejected
                | FailureClass::MysqlHostNotAllowed
                | FailureClass::MysqlFirewall
                | FailureClass::MysqlInsecureTransport
                | FailureClass::MysqlDatabaseMissing
                | FailureClass::MysqlDatabaseAccessDenied
                | FailureClass::MysqlTooManyConnections
                | FailureClass::MysqlPasswordExpired
                | FailureClass::MysqlCleartextNeedsTls
                | FailureClass::MysqlAuthUnsupported
                | FailureClass::MysqlQueryFailed
                | FailureClass::MysqlServerError
                | FailureClass::RedisPlaintextRefused
                | FailureClass::RedisAuthFailed
                | FailureClass::RedisTokenRejected
                | FailureClass::RedisTokenExpired
                | FailureClass::RedisTokenNeedsTls
                | FailureClass::RedisNoPermission
                | FailureClass::RedisProtectedMode
                | FailureClass::RedisFirewall
                | FailureClass::RedisLoading
                | FailureClass::RedisServerError
                | FailureClass::IdentityNotConfigured
                | FailureClass::IdentityUnavailable
                | FailureClass::IdentityRefused
                | FailureClass::IdentityMalformed
                | FailureClass::AmqpUnsupportedVersion
                | FailureClass::AmqpAuthFailed
                | FailureClass::AmqpTokenExpired
                | FailureClass::AmqpForbidden
                | FailureClass::AmqpNetworkRule
                | FailureClass::AmqpUnsupported
                | FailureClass::AmqpRemoteError
                | FailureClass::AmqpProtocolError
                | FailureClass::KafkaAuthFailed
                | FailureClass::KafkaTokenExpired
                | FailureClass::KafkaNetworkRule
                | FailureClass::KafkaUnsupported
                | FailureClass::KafkaIllegalSaslState
                | FailureClass::KafkaBrokerError
                | FailureClass::KafkaProtocolError
        )
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_name_is_as_str() {
        for c in FailureClass::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str(), "{c:?}");
        }
        assert_eq!(FailureClass::ALL.len(), 143);
    }
}
