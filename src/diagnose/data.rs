//! Hints of the data-service layers (`postgres`, `mysql`): the decisive content of each is
//! in the table at the top of `probe/postgres.rs` and `probe/mysql.rs`.

use super::Context;
use crate::addr::AddrClass;
use crate::report::FailureClass;

/// What the server's witness says about the route, for the pg_hba hints.
fn witness_route(ctx: &Context) -> String {
    witness_of(ctx, "privatelink.postgres.database.azure.com")
}

fn witness_of(ctx: &Context, zone: &str) -> String {
    match ctx.witness {
        Some(ip) if AddrClass::of(ip) == AddrClass::Public => format!(
            "The server saw this app as the public address {ip}: the connection went over the server's public endpoint, not a private endpoint or VNet integration, so fix the route first (the DNS layer shows where the name led: a private endpoint's name goes through {zone})."
        ),
        Some(ip) => format!(
            "The server saw this app as {ip}, a private address: the route is private; allow that address (or the integration subnet's range) on the server."
        ),
        None => "The server did not name the address it saw.".into(),
    }
}

pub(super) fn postgres(class: FailureClass, ctx: &Context) -> String {
    use FailureClass as C;
    match class {
        C::PostgresNotPostgres => "The port accepted TCP but did not answer PostgreSQL's SSLRequest with `S` or `N`: another service, a proxy or a firewall appliance holds this port (check the port: 5432, or 6432 for the built-in PgBouncer).".into(),
        C::PostgresNoAnswer => "TCP connected but the SSLRequest was never answered: not a PostgreSQL server, or a firewall/NVA that accepts connections and holds them.".into(),
        C::PostgresTlsRefused => "The server answered `N` to SSLRequest: TLS is off on this server. Azure Database for PostgreSQL requires TLS (`require_secure_transport`); a server that refuses it is not the Azure server, or set `tls = \"disable\"` to probe it unencrypted.".into(),
        C::PostgresTlsFailed => "The server accepted TLS (`S`) but the handshake failed (the TLS layer's result names why): the certificate of an Azure server names `<server>.postgres.database.azure.com`, so probe that name (not an IP or a custom alias), or set `ca_file` for a private CA.".into(),
        C::PostgresNoHbaEntry => format!(
            "PostgreSQL answered and refused the connection: no pg_hba.conf entry matches this client (on Azure: no firewall rule allows it, or public access is disabled). {}",
            witness_route(ctx)
        ),
        C::PostgresHbaRejected => format!(
            "PostgreSQL answered; a `reject` rule in pg_hba.conf matched this client. {}",
            witness_route(ctx)
        ),
        C::PostgresAuthFailed => "PostgreSQL answered (the route works); the password is wrong for this user (SQLSTATE 28P01). Check the `password` app setting.".into(),
        C::PostgresTokenRejected => "PostgreSQL answered (the route works) but refused the Microsoft Entra token: the token must be for `https://ossrdbms-aad.database.windows.net/.default`, `user` must be the Entra principal's name exactly as its role was created on the server (case-sensitive; an Entra admin creates it with `pgaadauth_create_principal`; for a system-assigned identity the name is likely the app's), and Microsoft Entra authentication must be enabled on the server.".into(),
        C::PostgresTokenNeedsTls => "PostgreSQL answered (the route works) and asked for the password in clear text on a connection without TLS: the probe does not send a Microsoft Entra token that way. Use `tls = \"require\"` or `\"verify-full\"` (Azure requires TLS anyway).".into(),
        C::PostgresUnknownUser => "PostgreSQL answered (the route works); the role does not exist: check `user` (a credential-free probe names a user that need not exist). For a managed identity the role is missing: an Entra admin creates it with `SELECT * FROM pgaadauth_create_principal('<identity name>', false, false)`.".into(),
        C::PostgresDatabaseMissing => "PostgreSQL answered (the route works); the database does not exist (SQLSTATE 3D000): check the database in the target URI.".into(),
        C::PostgresTooManyConnections => "PostgreSQL answered (the route works) but has no connection slot left (SQLSTATE 53300): the server's `max_connections` (set by the compute tier on Azure) is reached; use connection pooling (PgBouncer on 6432).".into(),
        C::PostgresServerStarting => "PostgreSQL answered (the route works) but is starting, stopping or in recovery (SQLSTATE 57P03): on Azure a stopped server, a restart, or a failover in progress.".into(),
        C::PostgresAuthUnsupported => "PostgreSQL answered (the route works) but asked for an authentication method the probe does not do (GSS, SSPI, SCRAM with channel binding only).".into(),
        C::PostgresQueryFailed => "Logged in (the route works), but `SELECT 1` failed: see the server's message.".into(),
        C::PostgresServerError => "PostgreSQL answered (the route works) with an error: the evidence carries its SQLSTATE and message.".into(),
        C::PostgresProtocol => "The answer is not valid PostgreSQL protocol: a proxy or another service on this port.".into(),
        C::PostgresClosed => "The server closed the connection mid-handshake (the message says in which phase): a proxy or firewall cutting the session, or the server refusing the client.".into(),
        C::PostgresTimeout => "A PostgreSQL phase stalled (the message says which): a firewall/NVA holding the session after TLS, or a server under heavy load.".into(),
        _ => "A socket error during the PostgreSQL exchange: the connection was cut.".into(),
    }
}

pub(super) fn mysql(class: FailureClass, ctx: &Context) -> String {
    use FailureClass as C;
    let w = || witness_of(ctx, "privatelink.mysql.database.azure.com");
    match class {
        C::MysqlNotMysql => "The port spoke, but not a MySQL greeting: another service, a proxy or an appliance holds this port (MySQL is 3306).".into(),
        C::MysqlNoGreeting => "TCP connected but no greeting came: MySQL always speaks first, so this is another service, or a firewall/NVA that accepts connections and holds them.".into(),
        C::MysqlTlsRefused => "MySQL answered, but its greeting lacks the SSL capability: TLS is off on this server. Azure Database for MySQL supports TLS (and requires it by default: `require_secure_transport`); or set `tls = \"disable\"`.".into(),
        C::MysqlTlsFailed => "MySQL offered TLS but the handshake failed (the TLS layer's result names why): the certificate of an Azure server names `<server>.mysql.database.azure.com`, so probe that name, or set `ca_file` for a private CA.".into(),
        C::MysqlAuthFailed => format!("MySQL answered (the route works) and refused the login (1045): a wrong password or an unknown user (MySQL does not say which). {}", w()),
        C::MysqlTokenRejected => "MySQL answered (the route works) but refused the Microsoft Entra token: the token must be for `https://ossrdbms-aad.database.windows.net/.default`, `user` must be the Entra principal's name (case-sensitive), and the Entra admin must have created it (`CREATE AADUSER '<identity name>'`) with Microsoft Entra authentication enabled on the server. A MySQL server without Entra authentication switches the clear-text plugin to its own and refuses the token the same way.".into(),
        C::MysqlHostNotAllowed => format!("MySQL answered; no account matches the address it saw (1130). {}", w()),
        C::MysqlFirewall => format!("Azure Database for MySQL refused this client by its firewall rules or because public access is disabled. {}", w()),
        C::MysqlInsecureTransport => "MySQL answered (the route works) and requires TLS (3159, `require_secure_transport = ON`): use `tls = \"require\"` or `\"verify-full\"`.".into(),
        C::MysqlDatabaseMissing => "MySQL answered (the route works); the database does not exist (1049): check the database in the target URI.".into(),
        C::MysqlDatabaseAccessDenied => "MySQL answered (the route works); the user may not use that database (1044).".into(),
        C::MysqlTooManyConnections => "MySQL answered (the route works) but has no connection left (1040/1203): `max_connections` of the tier is reached.".into(),
        C::MysqlPasswordExpired => "MySQL answered (the route works); the user's password has expired and must be changed (1820/1862).".into(),
        C::MysqlCleartextNeedsTls => "The probe refused to send a password or token in clear text without TLS: enable TLS (`tls = \"require\"` or `\"verify-full\"`).".into(),
        C::MysqlAuthUnsupported => "MySQL answered (the route works) but asked for an authentication plugin the probe does not do (or caching_sha2_password full authentication without TLS).".into(),
        C::MysqlQueryFailed => "Logged in (the route works), but `SELECT 1` failed: see the server's message.".into(),
        C::MysqlServerError => "MySQL answered (the route works) with an error: the evidence carries its code and message.".into(),
        C::MysqlProtocol => "The answer is not valid MySQL protocol: a proxy or another service on this port.".into(),
        C::MysqlClosed => "The server closed the connection mid-handshake (the message says in which phase): a proxy or firewall cutting the session, or the server refusing the client.".into(),
        C::MysqlTimeout => "A MySQL phase stalled (the message says which): a firewall/NVA holding the session after TLS, or a server under heavy load.".into(),
        _ => "A socket error during the MySQL exchange: the connection was cut.".into(),
    }
}

pub(super) fn redis(class: FailureClass) -> String {
    use FailureClass as C;
    match class {
        C::RedisNotRedis => "The port answered PING, but not as Redis: another service or an appliance holds this port (Azure Cache for Redis: 6380 with TLS; 6379 is the non-TLS port, off by default).".into(),
        C::RedisNoAnswer => "TCP connected but PING was never answered: not Redis, or a firewall/NVA that accepts connections and holds them; a TLS port (6380) probed without TLS also stays silent: use `rediss://`.".into(),
        C::RedisTlsRefused => "The server did not accept TLS: a plain (non-TLS) Redis port; Azure Cache for Redis serves TLS on 6380: use that port, or `redis://` for a plain port.".into(),
        C::RedisTlsFailed => "The TLS handshake failed (the TLS layer's result names why): the certificate of an Azure cache names `<cache>.redis.cache.windows.net`, so probe that name, or set `ca_file` for a private CA.".into(),
        C::RedisPlaintextRefused => "Redis answered (the route works) and refuses plain text: use `rediss://` on the TLS port (6380).".into(),
        C::RedisAuthFailed => "Redis answered (the route works); the password or access key is wrong for this user (WRONGPASS).".into(),
        C::RedisTokenRejected => "Redis answered (the route works) but refused the Microsoft Entra token: the user must be the identity's object id and the identity must have a data access policy on the cache.".into(),
        C::RedisTokenExpired => "Redis answered (the route works); the Microsoft Entra token has expired: get a fresh one.".into(),
        C::RedisTokenNeedsTls => "Redis answered (the route works), but the connection has no TLS, and the probe does not send a Microsoft Entra token in clear text: use `rediss://` on the TLS port (Azure: 6380, Managed Redis 10000; Entra authentication works over TLS only).".into(),
        C::RedisNoPermission => "Redis answered (the route works); the user is authenticated but may not run PING (NOPERM): check its ACL or data access policy.".into(),
        C::RedisProtectedMode => "Redis answered in protected mode: no password is set and it accepts only loopback clients; not how an Azure cache answers.".into(),
        C::RedisFirewall => "Azure Cache for Redis refused this client by its firewall rules or because public network access is disabled: connect through the private endpoint (privatelink.redis.cache.windows.net).".into(),
        C::RedisLoading => "Redis answered (the route works) but is loading its dataset into memory (LOADING): retry shortly; on Azure, after a restart or failover.".into(),
        C::RedisServerError => "Redis answered (the route works) with an error: see the message.".into(),
        C::RedisProtocol => "The answer is not valid Redis protocol (RESP): a proxy or another service on this port.".into(),
        C::RedisClosed => "The server closed the connection (the message says in which phase): a TLS port probed without TLS, a proxy, or the server refusing the client.".into(),
        C::RedisTimeout => "A Redis phase stalled (the message says which): a firewall/NVA holding the session after TLS, or a busy server.".into(),
        _ => "A socket error during the Redis exchange: the connection was cut.".into(),
    }
}
