use super::*;
use crate::report::ResolverSource;

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

fn resolver(server: &str, source: ResolverSource) -> ResolverInfo {
    ResolverInfo {
        server: server.into(),
        source,
    }
}

#[test]
fn route_table() {
    let env = env_of(&[
        ("WEBSITE_SITE_NAME", "app"),
        ("WEBSITE_PRIVATE_IP", "10.0.1.5"),
    ]);
    let missing = &ResolvConf::read(std::path::Path::new("/nonexistent/resolv.conf"));
    let mut f = facts(&env, missing, &[], None, None);
    let cases = [
        ("10.1.2.4", RoutePath::Vnet),
        ("20.0.0.5", RoutePath::RouteAllUnknown),
        ("127.0.0.1", RoutePath::Local),
        ("169.254.169.254", RoutePath::Platform),
        ("168.63.129.16", RoutePath::Platform),
    ];
    for (ip, want) in cases {
        assert_eq!(route(&f, ip.parse().unwrap()).path, want, "{ip}");
    }
    assert!(
        route(&f, "10.1.2.4".parse().unwrap())
            .why
            .contains("10.0.1.5")
    );
    f.site.as_mut().unwrap().route_all = Tri::On;
    assert_eq!(route(&f, "20.0.0.5".parse().unwrap()).path, RoutePath::Vnet);
    f.site.as_mut().unwrap().route_all = Tri::Off;
    let r = route(&f, "20.0.0.5".parse().unwrap());
    assert_eq!(r.path, RoutePath::Internet);
    assert!(r.why.contains("bypassing"), "{}", r.why);
    let off = facts(&|_| None, missing, &[], None, None);
    assert_eq!(
        route(&off, "10.1.2.4".parse().unwrap()).path,
        RoutePath::OffAzure
    );
}

#[test]
fn route_all_table() {
    // (WEBSITE_VNET_ROUTE_ALL, engine.route_all, Flex) -> (state, basis, words in the why)
    type Row = (
        Option<&'static str>,
        Option<bool>,
        bool,
        Tri,
        RouteAllBasis,
        &'static [&'static str],
    );
    let table: &[Row] = &[
        (
            None,
            None,
            true,
            Tri::On,
            RouteAllBasis::FlexConsumption,
            &["WEBSITE_SKU=FlexConsumption", "does not document"],
        ),
        (
            Some("0"),
            Some(false),
            true,
            Tri::On,
            RouteAllBasis::FlexConsumption,
            &["Flex Consumption"],
        ),
        (
            Some("1"),
            None,
            false,
            Tri::On,
            RouteAllBasis::AppSetting,
            &["weak signal", "engine.route_all"],
        ),
        (
            Some("true"),
            None,
            false,
            Tri::On,
            RouteAllBasis::AppSetting,
            &["weak signal"],
        ),
        (
            Some("0"),
            None,
            false,
            Tri::Unknown,
            RouteAllBasis::None,
            &[
                "proves nothing",
                "az functionapp config show",
                "--query vnetRouteAllEnabled",
            ],
        ),
        (
            Some("maybe"),
            None,
            false,
            Tri::Unknown,
            RouteAllBasis::None,
            &["`maybe` is not 0 or 1", "az functionapp config show"],
        ),
        (
            Some("1"),
            Some(false),
            false,
            Tri::Off,
            RouteAllBasis::Declared,
            &["declared"],
        ),
        (
            Some("0"),
            Some(true),
            false,
            Tri::On,
            RouteAllBasis::Declared,
            &["declared"],
        ),
        (
            None,
            Some(true),
            false,
            Tri::On,
            RouteAllBasis::Declared,
            &["engine.route_all"],
        ),
        (
            None,
            None,
            false,
            Tri::Unknown,
            RouteAllBasis::None,
            &[
                "not visible",
                "outboundVnetRouting.applicationTraffic",
                "az functionapp config show -g RG -n APP --query vnetRouteAllEnabled",
            ],
        ),
    ];
    for (setting, declared, flex, state, basis, words) in table {
        let r = route_all(setting.map(String::from), *declared, *flex);
        assert_eq!(
            (r.state, r.basis),
            (*state, *basis),
            "{setting:?} {declared:?} {flex}: {}",
            r.why
        );
        for w in *words {
            assert!(
                r.why.contains(w),
                "{setting:?} {declared:?} {flex}: {w:?} not in {}",
                r.why
            );
        }
        assert!(!r.why.contains("az functionapp show"), "{}", r.why);
    }
}

#[test]
fn flex_and_content_share_from_the_environment() {
    let missing = &ResolvConf::read(std::path::Path::new("/nonexistent/resolv.conf"));
    let flex = env_of(&[
        ("WEBSITE_SITE_NAME", "app"),
        ("WEBSITE_SKU", "FlexConsumption"),
        ("WEBSITE_VNET_ROUTE_ALL", "0"),
        ("WEBSITE_CONTENTOVERVNET", "0"),
    ]);
    let f = facts(&flex, missing, &[], None, None);
    let site = f.site.as_ref().unwrap();
    assert_eq!(site.route_all, Tri::On);
    assert_eq!(site.route_all_basis, RouteAllBasis::FlexConsumption);
    assert_eq!(site.content_over_vnet, Tri::Unknown);
    let r = route(&f, "20.0.0.5".parse().unwrap());
    assert_eq!(r.path, RoutePath::Vnet);
    assert!(
        r.why.contains("outbound addresses") && !r.why.contains("needs an outbound path"),
        "{}",
        r.why
    );
    let premium = env_of(&[
        ("WEBSITE_SITE_NAME", "app"),
        ("WEBSITE_SKU", "ElasticPremium"),
        ("WEBSITE_CONTENTOVERVNET", "1"),
    ]);
    let weak = env_of(&[
        ("WEBSITE_SITE_NAME", "app"),
        ("WEBSITE_VNET_ROUTE_ALL", "1"),
    ]);
    let f = facts(&weak, missing, &[], None, None);
    let r = route(&f, "20.0.0.5".parse().unwrap());
    assert_eq!(r.path, RoutePath::Vnet);
    assert!(r.why.contains("a weak signal"), "{}", r.why);
    let f = facts(&premium, missing, &[], None, None);
    let site = f.site.as_ref().unwrap();
    assert_eq!(site.route_all, Tri::Unknown);
    assert_eq!(site.content_over_vnet, Tri::On);
    let r = route(&f, "20.0.0.5".parse().unwrap());
    assert_eq!(r.path, RoutePath::RouteAllUnknown);
    assert!(r.why.contains("declare engine.route_all"), "{}", r.why);
}

#[test]
fn azure_dns_is_compared_only_with_custom_dns_and_on_azure_or_configured() {
    let missing = &ResolvConf::read(std::path::Path::new("/nonexistent/resolv.conf"));
    let azure = env_of(&[("WEBSITE_SITE_NAME", "app")]);
    let custom = [resolver("10.0.0.4:53", ResolverSource::WebsiteDnsServer)];
    let platform = [resolver("168.63.129.16:53", ResolverSource::ResolvConf)];
    let loopback: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    // (env on Azure, resolvers, engine.azure_dns) -> compared with
    type Case<'a> = (bool, &'a [ResolverInfo], Option<SocketAddr>, Option<String>);
    let table: [Case; 5] = [
        (true, &custom, None, Some(AZURE_DNS.to_string())),
        (false, &custom, None, None),
        (false, &custom, Some(loopback), Some(loopback.to_string())),
        (true, &platform, None, None),
        (
            true,
            &[resolver(
                "168.63.129.16:53",
                ResolverSource::WebsiteDnsServer,
            )],
            None,
            None,
        ),
    ];
    for (on, rs, configured, want) in table {
        let f = if on {
            facts(&azure, missing, rs, None, configured)
        } else {
            facts(&|_| None, missing, rs, None, configured)
        };
        assert_eq!(
            f.dns.azure_dns, want,
            "{on} {rs:?} {configured:?}: {}",
            f.dns.azure_dns_why
        );
    }
}

#[test]
fn resolvers_why_says_which_is_the_apps_own_path() {
    let missing = &ResolvConf::read(std::path::Path::new("/nonexistent/resolv.conf"));
    let azure = env_of(&[("WEBSITE_SITE_NAME", "app")]);
    let both = [
        resolver("127.0.0.11:53", ResolverSource::ResolvConf),
        resolver("10.0.0.4:53", ResolverSource::WebsiteDnsServer),
    ];
    let f = facts(&azure, missing, &both, None, None);
    assert!(
        f.dns.resolvers_why.starts_with("resolv.conf first")
            && f.dns.resolvers_why.contains("asked alongside to compare"),
        "{}",
        f.dns.resolvers_why
    );
    let f = facts(&azure, missing, &both[1..], None, None);
    assert!(
        f.dns.resolvers_why.contains("resolv.conf was unreadable"),
        "{}",
        f.dns.resolvers_why
    );
    let cli = [resolver("127.0.0.53:53", ResolverSource::Cli)];
    let f = facts(&|_| None, missing, &cli, None, None);
    assert!(
        f.dns.resolvers_why.starts_with("explicit"),
        "{}",
        f.dns.resolvers_why
    );
}
