//! A failure explains itself: every class carries a hint naming the likely Azure cause
//! and the fix. Hints match on the class and on facts from the probe (a `privatelink`
//! hop in the CNAME chain, a custom DNS server), never on error text.

use std::net::IpAddr;

use crate::addr::AddrClass;
use crate::report::{Failure, FailureClass, Layer, ResolverSource};
use crate::zone;

/// What a hint may use about the target, gathered by the layers as they run.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub name: String,
    /// CNAME targets in order.
    pub chain: Vec<String>,
    pub addresses: Vec<IpAddr>,
    /// Where the DNS servers came from (`WEBSITE_DNS_SERVER`, `resolv.conf`, ...).
    pub resolver_sources: Vec<ResolverSource>,
    pub port: Option<u16>,
    /// The name TLS verified against (SNI, or the IP when the target is an address).
    pub tls_name: Option<String>,
    pub http_status: Option<u16>,
    /// A recognised Azure answer in the response (see `azure_signature`).
    pub http_signature: Option<&'static str>,
    /// The SQL Server error number of a refused login or failed query.
    pub sql_error: Option<u32>,
    /// `host:port` of a TDS redirect.
    pub redirect: Option<String>,
    /// The address a data service said it saw us as (pg_hba's `host "ADDR"`).
    pub witness: Option<IpAddr>,
    /// The user-assigned identity a managed-identity login asked for (`client_id`);
    /// `None` for the system-assigned one.
    pub client_id: Option<String>,
}

impl Context {
    pub fn new(name: &str) -> Self {
        Context {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// The `privatelink.*` name in the chain, if the name went through one.
    fn privatelink_hop(&self) -> Option<&str> {
        zone::first_privatelink(
            self.chain
                .iter()
                .map(String::as_str)
                .chain(std::iter::once(self.name.as_str())),
        )
    }

    /// `privatelink.database.windows.net` for `x.privatelink.database.windows.net.`
    fn privatelink_zone(&self) -> Option<String> {
        zone::privatelink_zone(self.privatelink_hop()?)
    }

    fn custom_dns(&self) -> bool {
        self.resolver_sources.iter().any(|s| s.is_custom())
    }

    /// `WEBSITE_DNS_SERVER` is among the servers asked and `WEBSITE_DNS_ALT_SERVER` is not.
    fn only_primary_dns_setting(&self) -> bool {
        self.resolver_sources
            .contains(&ResolverSource::WebsiteDnsServer)
            && !self
                .resolver_sources
                .contains(&ResolverSource::WebsiteDnsAltServer)
    }
}

pub fn failure(
    layer: Option<Layer>,
    class: FailureClass,
    message: String,
    ctx: &Context,
) -> Failure {
    Failure {
        layer,
        class,
        hint: hint(class, ctx),
        message,
        rule: None,
    }
}

/// `policy.denied` with the rule that refused the target.
pub fn denied(rule: &str, message: String, ctx: &Context) -> Failure {
    Failure {
        rule: Some(rule.to_string()),
        ..failure(None, FailureClass::PolicyDenied, message, ctx)
    }
}

pub fn hint(class: FailureClass, ctx: &Context) -> String {
    let zone = ctx.privatelink_zone();
    let forwarder = "a custom DNS server needs a conditional forwarder for the privatelink zone to Azure DNS (168.63.129.16), or use an Azure DNS Private Resolver";
    match class {
        FailureClass::DnsNxdomain => match &zone {
            Some(z) => format!(
                "The name reached the private zone {z}, which has no record for it: the private endpoint's A record is missing. Check the endpoint's DNS zone group (or add the A record to {z}) and that the zone is linked to the app's VNet."
            ),
            None if ctx.custom_dns() => format!(
                "This DNS server says the name does not exist. Check the spelling; if it is a private endpoint, {forwarder}, and the private DNS zone must be linked to the VNet."
            ),
            None => "The name does not exist for this resolver. Check the spelling; for a private endpoint, link its private DNS zone (e.g. privatelink.database.windows.net) to the VNet the app is integrated with.".into(),
        },
        FailureClass::DnsServfail => format!(
            "The DNS server could not get an answer upstream. With a custom DNS server (WEBSITE_DNS_SERVER), {forwarder}; Azure DNS answers only from inside the VNet, so the forwarder itself must run there."
        ),
        FailureClass::DnsRefused => "The DNS server refuses this client: allow the integration subnet's address range in the server's ACL / recursion settings, or point WEBSITE_DNS_SERVER at a server that serves the VNet.".into(),
        FailureClass::DnsTimeout => {
            let base = "No DNS answer: an NSG or firewall blocks UDP/TCP 53 from the integration subnet to the DNS server, or the server in WEBSITE_DNS_SERVER is down or not reachable through the VNet (check peering and route tables toward it).";
            if ctx.only_primary_dns_setting() {
                format!(
                    "{base} Only WEBSITE_DNS_SERVER is set, so there is no fallback: set WEBSITE_DNS_ALT_SERVER to a second server (e.g. Azure DNS 168.63.129.16, or another resolver that forwards the privatelink zones) so a down server does not stop name resolution."
                )
            } else {
                base.into()
            }
        }
        FailureClass::DnsNoRecords => "The name exists but has no record of the type asked: an A record may be missing in the private DNS zone (only a CNAME or TXT was created), or the service is IPv4-only and AAAA was asked.".into(),
        FailureClass::DnsPublicAddress => match &zone {
            Some(z) => format!(
                "The name went through {z} but ended on a public address: the private DNS zone {z} is not linked to the app's VNet or has no record for this name, so public DNS answered. Link the zone (Private DNS zone > Virtual network links), or {forwarder}."
            ),
            None => "The name resolves to a public address, so traffic goes to the service's public endpoint (through the VNet only with route-all on, and rejected when public network access is disabled). Create a private endpoint with its private DNS zone, and use the public FQDN so the privatelink CNAME applies.".into(),
        },
        FailureClass::DnsDivergent => {
            let z = zone.as_deref().unwrap_or("the privatelink zone");
            format!(
                "Custom DNS cannot resolve the privatelink zone, while Azure DNS (168.63.129.16) resolves the name to the private endpoint: the private DNS zone is linked to the VNet, but the custom server (WEBSITE_DNS_SERVER or the VNet's DNS servers) does not ask Azure DNS for it. Add a conditional forwarder for {z} to 168.63.129.16 on the custom server (which must itself run inside a VNet linked to the zone), or use an Azure DNS Private Resolver inbound endpoint."
            )
        }
        FailureClass::DnsError => "The DNS exchange failed (unexpected response code or malformed answer). Query the server directly (e.g. `dig @server name`) and check its logs.".into(),
        FailureClass::TcpRefused => {
            let port = ctx.port.map(|p| format!("port {p}")).unwrap_or_else(|| "this port".into());
            format!(
                "The address answered with a reset: the route works but nothing accepts {port} there (wrong port, service stopped), or an NSG/firewall rule rejects it. For a private endpoint, check that its connection is Approved."
            )
        }
        FailureClass::TcpTimeout => {
            let public = ctx.addresses.iter().any(|a| AddrClass::of(*a) == AddrClass::Public);
            let private = ctx.addresses.iter().any(|a| AddrClass::of(*a) == AddrClass::Private);
            let extra = if public {
                " The address is public: unless route-all is on (always on Flex Consumption; elsewhere the vnetRouteAllEnabled / outboundVnetRouting site property, or WEBSITE_VNET_ROUTE_ALL=1), this traffic does not use the VNet at all."
            } else if private && ctx.privatelink_hop().is_some() {
                " The name went through a privatelink CNAME to a private endpoint's address: or the private endpoint connection is Pending/Rejected: check that it is Approved (the resource's Networking > Private endpoint connections); a connection that is not Approved carries no traffic."
            } else {
                ""
            };
            format!(
                "SYN unanswered: an NSG on the integration or endpoint subnet drops it, a route table (UDR) sends it to a firewall/NVA that drops it, or the target's VNet is not peered. Check the NSG rules and route table on the integration subnet and on the target's subnet (traffic from VNet integration may not appear in NSG flow logs).{extra}"
            )
        }
        FailureClass::TcpReset => "The connection was accepted, then reset: a firewall/NVA in the path (TLS inspection, session rules) or an unhealthy service behind the private endpoint or load balancer.".into(),
        FailureClass::TcpUnreachable => "No route from the instance to this address: it is outside the integrated VNet and its peerings (missing peering or UDR), or it is IPv6, which regional VNet integration may not route (unverified).".into(),
        FailureClass::TcpForbidden => "The platform refused to open this socket (EACCES/EPERM): the App Service sandbox blocks some outbound traffic. Port 25: Azure Functions networking options (03/2026) says regional VNet integration can't use port 25, while Integrate your app with an Azure virtual network (02/2026) says outbound SMTP on 25 works when routed through VNet integration, if the VNet's subscription allows it. IPv6 through VNet integration may also be refused (unverified). Use another port or an IPv4 address.".into(),
        FailureClass::TcpError => "The connection failed with an unexpected socket error; the message carries the OS error.".into(),
        FailureClass::TlsNameMismatch => {
            let name = ctx.tls_name.as_deref().unwrap_or("the name used");
            let why = if name.parse::<IpAddr>().is_ok() {
                format!("{name} is an IP address, and the service's certificate names its public FQDN")
            } else if zone::is_privatelink(name) {
                format!("{name} is the privatelink name, which the certificate does not carry")
            } else {
                format!("the certificate does not cover {name}")
            };
            format!(
                "The server answered TLS, but {why}. Call the public FQDN (e.g. myserver.database.windows.net): the private endpoint's CNAME maps it to the private IP, and the certificate matches it. Use `sni` only to test a specific address."
            )
        }
        FailureClass::TlsUntrusted => "The certificate chain does not lead to a trusted root: an internal CA (add it with `ca_file`), a TLS-inspecting firewall replacing certificates (its CA must be trusted), or a self-signed certificate.".into(),
        FailureClass::TlsExpired => "A certificate in the chain is expired or not yet valid: renew it (App Service/Key Vault certificate, Application Gateway listener), or check the clock of the server that issued it.".into(),
        FailureClass::TlsHandshake => "The TLS handshake failed before any certificate check: no TLS service on this port (plain HTTP, or TDS on 1433 which needs the sqlserver:// target), no common protocol version (the server may require TLS 1.2+ or 1.3), or a middlebox aborted it.".into(),
        FailureClass::TlsTimeout => "TCP connected but the TLS handshake never completed: likely a path-MTU black hole (small packets such as the SYN pass, the server's full-size certificate packets are lost because the ICMP \"fragmentation needed\" never comes back), typical on VPN or ExpressRoute paths and through firewalls/NVAs: clamp the TCP MSS on the VPN gateway, NVA or on-premises edge, or fix the MTU along the path. Otherwise a TLS-inspecting proxy that stalls, or a service not speaking TLS on this port.".into(),
        FailureClass::ExpectCertDaysLeft => "The certificate expires soon: renew it before it breaks this route (check auto-renewal on App Service Managed Certificates or Key Vault).".into(),
        FailureClass::HttpStatus => http_status_hint(ctx),
        FailureClass::HttpBody => "The server answered with the expected status but not the expected body: a default page (e.g. App Service's placeholder, a proxy's error page) answered instead of the app.".into(),
        FailureClass::HttpTimeout => "The request was sent but the answer did not come in time: the app behind the endpoint is slow or hung (cold start, thread-pool starvation), or a proxy holds the request. The message says which phase timed out.".into(),
        FailureClass::HttpTooLarge => "The response body is larger than `max_body_bytes`: raise the limit or probe a lighter health endpoint.".into(),
        FailureClass::HttpRedirects => "Too many redirects, a loop, or a redirect to another origin: a login redirect (Easy Auth) or an HTTP->HTTPS loop behind a proxy. Probe the final URL directly, or give it its own target.".into(),
        FailureClass::HttpProtocol => "The answer is not valid HTTP or the connection closed mid-response: a non-HTTP service on this port, or a proxy/NVA cutting the connection.".into(),
        FailureClass::TdsPrelogin => "The port accepted TCP but did not answer as SQL Server: a wrong port, a proxy or firewall that terminates the connection, or Azure SQL's gateway refusing this client before login (for example public network access disabled while the name resolved to the public gateway: check the DNS layer).".into(),
        FailureClass::TdsEncryption => "Client and server cannot agree on encryption: the server does not support TLS, or it requires TDS 8 strict mode (`strict = true` / `Encrypt=Strict`). Azure SQL always requires encryption.".into(),
        FailureClass::TdsLoginFailed => sql_error_hint(ctx.sql_error),
        FailureClass::TdsRedirect => format!(
            "The gateway answered and redirected the login to {} (Azure SQL's Redirect connection policy), which this app cannot reach. Over the public endpoint, Redirect needs outbound TCP 11000-11999 from the integration subnet to the Sql service tag (and 1433 to the gateway). Over a private endpoint, logins are proxied on 1433 unless the server's connection policy is explicitly Redirect; then the NSGs must allow 1433-65535 to the VNet that hosts the private endpoint. Or set the server's connection policy to Proxy.",
            ctx.redirect.as_deref().unwrap_or("a database node")
        ),
        FailureClass::TdsQuery => match ctx.sql_error {
            Some(229 | 230 | 262 | 297 | 300) => "Logged in, but the login lacks permission for the query: grant it, or probe with `SELECT 1`. The route works.".into(),
            _ => "Logged in, but the query failed: check the query and the login's permissions. The route works.".into(),
        },
        FailureClass::TdsTimeout => "A TDS phase stalled (the message says which): a firewall/NVA inspecting port 1433 that holds the session, or a server under heavy load. A paused serverless database does not stall: it answers the first login at once with error 40613 and resumes in about a minute.".into(),
        FailureClass::PostgresNotPostgres
        | FailureClass::PostgresNoAnswer
        | FailureClass::PostgresTlsRefused
        | FailureClass::PostgresTlsFailed
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
        | FailureClass::PostgresProtocol
        | FailureClass::PostgresClosed
        | FailureClass::PostgresTimeout
        | FailureClass::PostgresIo => data::postgres(class, ctx),
        FailureClass::MysqlNotMysql
        | FailureClass::MysqlNoGreeting
        | FailureClass::MysqlTlsRefused
        | FailureClass::MysqlTlsFailed
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
        | FailureClass::MysqlProtocol
        | FailureClass::MysqlClosed
        | FailureClass::MysqlTimeout
        | FailureClass::MysqlIo
            => data::mysql(class, ctx),
        FailureClass::RedisNotRedis
        | FailureClass::RedisNoAnswer
        | FailureClass::RedisTlsRefused
        | FailureClass::RedisTlsFailed
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
        | FailureClass::RedisProtocol
        | FailureClass::RedisClosed
        | FailureClass::RedisTimeout
        | FailureClass::RedisIo
            => data::redis(class),
        FailureClass::IdentityNotConfigured
        | FailureClass::IdentityUnavailable
        | FailureClass::IdentityRefused
        | FailureClass::IdentityMalformed => identity::hint(class, ctx.client_id.as_deref()),
        FailureClass::AmqpNotThisProtocol
        | FailureClass::AmqpUnsupportedVersion
        | FailureClass::AmqpTlsRefused
        | FailureClass::AmqpWebsocketRefused
        | FailureClass::AmqpClosed
        | FailureClass::AmqpTimeout
        | FailureClass::AmqpAuthFailed
        | FailureClass::AmqpTokenExpired
        | FailureClass::AmqpForbidden
        | FailureClass::AmqpNetworkRule
        | FailureClass::AmqpUnsupported
        | FailureClass::AmqpRemoteError
        | FailureClass::AmqpBadCredentials
        | FailureClass::AmqpProtocolError
        | FailureClass::AmqpIoError
            => messaging::amqp(class),
        FailureClass::KafkaNotThisProtocol
        | FailureClass::KafkaTlsRefused
        | FailureClass::KafkaClosed
        | FailureClass::KafkaTimeout
        | FailureClass::KafkaAuthFailed
        | FailureClass::KafkaTokenExpired
        | FailureClass::KafkaNetworkRule
        | FailureClass::KafkaUnsupported
        | FailureClass::KafkaIllegalSaslState
        | FailureClass::KafkaBrokerError
        | FailureClass::KafkaBadCredentials
        | FailureClass::KafkaProtocolError
        | FailureClass::KafkaIoError
            => messaging::kafka(class),
        FailureClass::PolicyDenied => "routeproof's ad-hoc policy refused this target before connecting (the rule is named): ad-hoc targets must match a host pattern or resolve inside a network of `[policy] allow`, and link-local (IMDS, managed identity), loopback, 168.63.129.16 (except DNS), the handler's own port and the identity endpoint are always refused. Ask for a configured target by name instead, or extend the allow-list.".into(),
        FailureClass::ExpectAddresses => "The name resolved, but not to the expected address: a stale A record in the private DNS zone (the private endpoint was recreated with a new IP), or another zone answered.".into(),
        FailureClass::ExpectMaxMs => "Every layer passed but the probe took longer than `max_ms`; compare the layer timings to see which one is slow.".into(),
        FailureClass::ConfigInvalid => "Fix the named key or target and run `routeproof check --config FILE`.".into(),
        FailureClass::ServiceFirewall => "The service's network rules refused this source: the request did not arrive through its private endpoint (zone privatelink.… linked to the VNet, endpoint connection Approved), or allow the integration subnet in the resource's Networking settings.".into(),
        FailureClass::ServiceRbac => "The route works; the app's identity lacks a data-plane role on the resource.".into(),
        FailureClass::ServiceAuthFailed => "The service refused the credential: token audience, rotated key, or Shared Key access disabled (allowSharedKeyAccess).".into(),
        FailureClass::ServiceNotService => "The answer lacks the service's own headers: a proxy, WAF, Application Gateway or firewall appliance answered, or DNS points elsewhere.".into(),
        FailureClass::ServiceError => "The service itself answered 5xx/429: retry, check Azure status.".into(),
        FailureClass::ServiceUnexpected => "The service answered in a way the probe does not explain; quote status, code and request id in a support case.".into(),
        FailureClass::ServicePublicPath => "The service saw a public address: the private DNS zone is not linked (or custom DNS does not forward to 168.63.129.16), there is no private endpoint, or outbound traffic is not routed into the VNet (vnetRouteAllEnabled / outboundVnetRouting.allTraffic).".into(),
        FailureClass::ServiceDeadline => "The service did not answer before the run deadline.".into(),
        FailureClass::ServiceHttpProtocol => "The peer did not speak HTTP/1.1 as the service does: not the service, or a middlebox broke the exchange.".into(),
        FailureClass::SmbRefused => "Nothing accepted TCP 445: the storage account needs a private endpoint for `file` (zone privatelink.file.core.windows.net linked to the VNet), and an NSG outbound rule must allow 445.".into(),
        FailureClass::SmbTimeout => "No answer on 445 (blackholed): an NSG / Azure Firewall drop or an appliance route; the content share over the VNet needs vnetContentShareEnabled (WEBSITE_CONTENTOVERVNET=1) and both 443 and 445.".into(),
        FailureClass::SmbNotSmb => "Something answered on 445 that is not an SMB2/3 server: a wrong DNS answer or an appliance.".into(),
        FailureClass::SmbNegotiateRejected => "The SMB server refused every offered dialect: Azure Files wants SMB 3.x from outside its region.".into(),
        FailureClass::SmbClosed => "The peer closed 445 without an SMB answer: an appliance that resets SMB, or refused dialects.".into(),
        FailureClass::SmbError => "A socket error during SMB NEGOTIATE; the message has the OS error.".into(),
        FailureClass::Deadline => "The run deadline expired first: raise `engine.deadline` (keep it under the Functions timeout), shorten layer timeouts, or raise `engine.concurrency`.".into(),
    }
}

/// SQL Server error numbers that explain a refused login, with the fix.
fn sql_error_hint(number: Option<u32>) -> String {
    match number {
        Some(18456) => "Login failed, but the route to SQL Server works: the server answered. The user, password or database is wrong; for Microsoft Entra logins the identity needs a user in the database (`CREATE USER [app-name] FROM EXTERNAL PROVIDER`).".into(),
        Some(18452) => "The server refused a Windows (integrated) login from an untrusted domain: use SQL or Microsoft Entra authentication from a Function App.".into(),
        Some(4060) => "Cannot open the database requested by the login (error 4060: \"Cannot open database … requested by the login. The login failed.\"): the database name is wrong, or the login has no user in it. Microsoft lists 4060 among transient errors, so retry once before changing anything.".into(),
        Some(40532) => "Likely: the server named in the login (or the `user@server` suffix) is not the server this gateway serves, or the name resolved to another server's gateway (error 40532; unverified: no public Microsoft documentation of this number was found). Check the server name and the DNS layer.".into(),
        Some(40613) => "The database is not currently available (error 40613): it is being moved or reconfigured (failover, scaling, maintenance), or it is a paused serverless database that this first login is resuming, which takes about a minute. Retry; if it persists, check the database's resource health.".into(),
        Some(40615) => "The server firewall blocks this client's IP: the connection reached the public endpoint. With a private endpoint the name must resolve to its private IP (check the DNS layer); otherwise add a firewall or virtual network rule.".into(),
        Some(40914) => "A virtual network rule is missing: add the integration subnet (with the Microsoft.Sql service endpoint) to the server's virtual network rules, or connect through a private endpoint.".into(),
        Some(47073) => "Public network access is denied and the connection came through the public gateway: connect through the private endpoint, and make sure the name resolves to its private IP (check the DNS layer for the privatelink CNAME).".into(),
        Some(33155) => "Likely: the server waited for a Microsoft Entra token that did not arrive in time (error 33155; unverified: no public documentation found). Check that the managed identity is enabled and that its token request succeeds.".into(),
        Some(18401) => "Likely: the server is in script-upgrade or single-user mode and refuses logins (error 18401; unverified for Azure SQL: no public documentation found). Wait and retry.".into(),
        Some(n) => format!("The server refused the login with SQL error {n}: the route works; look the number up in the SQL Server error reference."),
        None => "The login did not complete: the message says why (for a managed identity, check that it is enabled and has a database user).".into(),
    }
}

/// Azure front ends answer with recognisable bodies; naming them turns "403" into a cause.
pub fn azure_signature(status: u16, body: &str) -> Option<&'static str> {
    let b = body.to_ascii_lowercase();
    let sigs: &[(u16, &str, &'static str)] = &[
        (403, "ip forbidden", "app_service_ip_restriction"),
        (
            403,
            "web app you have attempted to reach has blocked your access",
            "app_service_access_restriction",
        ),
        (
            403,
            "public network access",
            "public_network_access_disabled",
        ),
        (403, "authorizationfailure", "storage_network_rules"),
        (403, "forbiddenbyfirewall", "key_vault_firewall"),
        (403, "forbiddenbyconnection", "private_endpoint_connection"),
        (503, "application error", "app_service_front_end"),
        (502, "bad gateway", "front_end_bad_gateway"),
    ];
    sigs.iter()
        .find(|(code, needle, _)| *code == status && b.contains(needle))
        .map(|(_, _, name)| *name)
}

fn http_status_hint(ctx: &Context) -> String {
    match (ctx.http_status, ctx.http_signature) {
        (Some(403), Some("public_network_access_disabled" | "storage_network_rules" | "key_vault_firewall")) => {
            "The service answered 403 because this request arrived over its public endpoint while public network access is disabled or restricted: the name resolved publicly (check the DNS layer for a privatelink CNAME ending on a private IP) or the call bypassed the private endpoint.".into()
        }
        (Some(403), Some(_)) => "App Service access restrictions refused this caller: add the integration subnet (or its service endpoint) to the target app's access restrictions, or call it through its private endpoint.".into(),
        (Some(403), None) => "403: the route works, the server refuses this caller: access restrictions, a firewall rule on the service, or missing authorization for the app's identity.".into(),
        (Some(401), _) => "401: the route works (the server answered); credentials are needed. Send them with `headers` (values from app settings: \"env:NAME\"), or accept 401 in `status` if reaching the server is the point.".into(),
        (Some(502..=504), _) => "The front end answered but its backend did not: the app behind it is down, restarting, or not reachable from the gateway (App Service, Application Gateway or API Management backend health).".into(),
        (Some(404), _) => "404: the server answered but has nothing at this path: check the path, the host name (a default site answers unknown hosts) and the API's route prefix.".into(),
        _ => "The server answered with a status outside `status` (default 200-399); the evidence carries the status and selected headers.".into(),
    }
}

mod data;
mod identity;
mod messaging;
#[cfg(test)]
mod tests;
