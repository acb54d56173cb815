//! Hints of the data-service layers (`postgres`): the decisive content of each is in the
//! table at the top of `probe/postgres.rs`.

use super::Context;
use crate::addr::AddrClass;
use crate::report::FailureClass;

/// What the server's witness says about the route, for the pg_hba hints.
fn witness_route(ctx: &Context) -> String {
    match ctx.witness {
        Some(ip) if AddrClass::of(ip) == AddrClass::Public => format!(
            "The server saw this app as the public address {ip}: the connection went over the server's public endpoint, not a private endpoint or VNet integration, so fix the route first (the DNS layer shows where the name led: a private endpoint's name goes through privatelink.postgres.database.azure.com)."
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
        C::PostgresTokenRejected => "PostgreSQL answered (the route works) but refused the Microsoft Entra token: the token must be for `https://ossrdbms-aad.database.windows.net/.default`, the user must be the Entra principal's name as created on the server, and Microsoft Entra authentication must be enabled on the server.".into(),
        C::PostgresUnknownUser => "PostgreSQL answered (the route works); the role does not exist: check `user` (a credential-free probe names a user that need not exist).".into(),
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
