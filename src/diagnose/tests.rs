use super::*;

#[test]
fn every_class_has_a_hint() {
    let ctx = Context::new("x.example");
    for c in FailureClass::ALL {
        assert!(hint(*c, &ctx).len() > 40, "{c}");
    }
}

#[test]
fn privatelink_hop_sharpens_hints() {
    let mut ctx = Context::new("myserver.database.windows.net");
    ctx.chain = vec!["myserver.privatelink.database.windows.net.".into()];
    let h = hint(FailureClass::DnsPublicAddress, &ctx);
    assert!(
        h.contains("privatelink.database.windows.net is not linked"),
        "{h}"
    );
    let h = hint(FailureClass::DnsNxdomain, &ctx);
    assert!(h.contains("A record is missing"), "{h}");
    let h = hint(FailureClass::DnsDivergent, &ctx);
    assert!(
        h.contains("conditional forwarder for privatelink.database.windows.net to 168.63.129.16")
            && h.contains("Private Resolver"),
        "{h}"
    );
}

fn sql(n: Option<u32>) -> String {
    let mut ctx = Context::new("myserver.database.windows.net");
    ctx.sql_error = n;
    hint(FailureClass::TdsLoginFailed, &ctx)
}

#[test]
fn sql_hints_say_what_the_documentation_says() {
    let h = sql(Some(4060));
    assert!(
        h.contains("Cannot open database")
            && h.contains("transient")
            && !h.contains("The login worked"),
        "{h}"
    );
    let h = sql(Some(40613));
    assert!(
        h.contains("paused serverless database") && h.contains("about a minute"),
        "{h}"
    );
    // 42109 has no documented meaning: the generic text, not "paused".
    let h = sql(Some(42109));
    assert!(
        h.contains("SQL error 42109") && !h.contains("paused"),
        "{h}"
    );
    for n in [33155, 18401, 40532] {
        let h = sql(Some(n));
        assert!(
            h.starts_with("Likely") && h.contains("unverified") && h.contains(&n.to_string()),
            "{n}: {h}"
        );
    }
    let ctx = Context::new("myserver.database.windows.net");
    let h = hint(FailureClass::TdsTimeout, &ctx);
    assert!(
        !h.contains("a paused serverless database,") && h.contains("40613"),
        "{h}"
    );
}

#[test]
fn redirect_hint_tells_public_from_private_endpoint() {
    let mut ctx = Context::new("myserver.database.windows.net");
    ctx.redirect = Some("node.database.windows.net:11000".into());
    let h = hint(FailureClass::TdsRedirect, &ctx);
    assert!(
        h.contains("11000-11999")
            && h.contains("Sql service tag")
            && h.contains("explicitly Redirect")
            && h.contains("1433-65535 to the VNet that hosts the private endpoint"),
        "{h}"
    );
}

#[test]
fn dns_timeout_names_the_missing_fallback() {
    let mut ctx = Context::new("myserver.database.windows.net");
    ctx.resolver_sources = vec![ResolverSource::ResolvConf, ResolverSource::WebsiteDnsServer];
    let h = hint(FailureClass::DnsTimeout, &ctx);
    assert!(
        h.contains("no fallback") && h.contains("WEBSITE_DNS_ALT_SERVER") && h.contains("down"),
        "{h}"
    );
    ctx.resolver_sources
        .push(ResolverSource::WebsiteDnsAltServer);
    let h = hint(FailureClass::DnsTimeout, &ctx);
    assert!(!h.contains("no fallback"), "{h}");
    ctx.resolver_sources = vec![ResolverSource::ResolvConf];
    let h = hint(FailureClass::DnsTimeout, &ctx);
    assert!(!h.contains("no fallback"), "{h}");
}

#[test]
fn tls_timeout_names_the_mtu_black_hole() {
    let h = hint(
        FailureClass::TlsTimeout,
        &Context::new("app.azurewebsites.net"),
    );
    assert!(
        h.contains("MTU") && h.contains("ExpressRoute") && h.contains("MSS"),
        "{h}"
    );
}

#[test]
fn tcp_timeout_depends_on_the_address_and_the_chain() {
    let mut ctx = Context::new("myserver.database.windows.net");
    ctx.chain = vec!["myserver.privatelink.database.windows.net.".into()];
    ctx.addresses = vec!["10.60.2.7".parse().unwrap()];
    let h = hint(FailureClass::TcpTimeout, &ctx);
    assert!(
        h.contains("Pending") && h.contains("Approved") && !h.contains("NSG flow logs."),
        "{h}"
    );
    // A private address without a privatelink hop: no approval text.
    ctx.chain.clear();
    let h = hint(FailureClass::TcpTimeout, &ctx);
    assert!(!h.contains("Pending"), "{h}");
    ctx.addresses = vec!["20.0.0.5".parse().unwrap()];
    let h = hint(FailureClass::TcpTimeout, &ctx);
    assert!(
        h.contains("Flex Consumption") && h.contains("outboundVnetRouting"),
        "{h}"
    );
}

#[test]
fn port_25_states_both_pages_with_dates() {
    let h = hint(FailureClass::TcpForbidden, &Context::new("smtp.example"));
    assert!(
        h.contains("port 25") && h.contains("03/2026") && h.contains("02/2026"),
        "{h}"
    );
    let h = hint(FailureClass::TcpUnreachable, &Context::new("v6.example"));
    assert!(h.contains("IPv6") && h.contains("unverified"), "{h}");
}
