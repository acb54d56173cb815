//! Resolver comparison: two loopback DNS servers that disagree, one playing the app's
//! custom DNS server (WEBSITE_DNS_SERVER or engine.dns_servers), one playing Azure DNS
//! (`engine.azure_dns`). A failure a missing forwarder explains becomes `dns.divergent`
//! only when Azure DNS resolves the name privately; when Azure DNS agrees, the ordinary
//! class stands. Every target here is `dns://`, so no answer is ever connected to.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;

use routeproof::probe::Engine;
use routeproof::report::{FailureClass, Report};
use support::dns::{DnsServer, Zone};
use support::engine::{build, class, dns_ev, run_on};
use support::net::SilentDns;

/// What the custom server knows: the public zones, no privatelink records.
fn custom_zone() -> Zone {
    Zone::new()
        .cname(
            "nx.database.windows.net",
            "nx.privatelink.database.windows.net",
            60,
        )
        .cname(
            "pub.database.windows.net",
            "pub.privatelink.database.windows.net",
            60,
        )
        .cname(
            "pub.privatelink.database.windows.net",
            "pub.cloudapp.net",
            60,
        )
        .a("pub.cloudapp.net", "20.0.0.5", 60)
        .servfail("sf.database.windows.net")
        .a("public.contoso.com", "20.0.0.7", 60)
        .cname(
            "ok.database.windows.net",
            "ok.privatelink.database.windows.net",
            60,
        )
        .a("ok.privatelink.database.windows.net", "10.1.2.9", 60)
        .txt("empty.database.windows.net", "no-address-here", 60)
}

/// What Azure DNS knows: the private zones linked to the VNet.
fn azure_zone() -> Zone {
    let pl = |z: Zone, name: &str, ip: &str| {
        z.cname(
            &format!("{name}.database.windows.net"),
            &format!("{name}.privatelink.database.windows.net"),
            60,
        )
        .a(&format!("{name}.privatelink.database.windows.net"), ip, 60)
    };
    let z = pl(Zone::new(), "nx", "10.1.2.4");
    let z = pl(z, "pub", "10.1.2.5");
    let z = pl(z, "sf", "10.1.2.6");
    let z = pl(z, "ok", "10.1.2.9");
    let z = pl(z, "empty", "10.1.2.8");
    z.a("public.contoso.com", "20.0.0.7", 60)
}

struct Sim {
    dir: tempfile::TempDir,
}

impl Sim {
    fn new() -> Sim {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("resolv.conf"), "nameserver 127.0.0.11\n").unwrap();
        Sim { dir }
    }

    /// A sim whose resolv.conf names no server: the instance's own resolver path is not
    /// simulated (it would need a server on port 53), so on Azure routeproof asks the app
    /// setting's server alone, as it does when resolv.conf names nothing
    /// (src/platform/resolvers.rs). Its answers are then the app's answers.
    fn without_resolv_conf_servers() -> Sim {
        let sim = Sim::new();
        std::fs::write(sim.dir.path().join("resolv.conf"), "# no nameserver\n").unwrap();
        sim
    }

    fn resolv(&self) -> String {
        self.dir.path().join("resolv.conf").display().to_string()
    }
}

/// An engine on a simulated Azure instance whose custom DNS is `custom`
/// (WEBSITE_DNS_SERVER) and whose Azure DNS is `azure`.
fn azure_engine(sim: &Sim, custom: SocketAddr, azure: SocketAddr) -> Arc<Engine> {
    let env = move |k: &str| match k {
        "WEBSITE_SITE_NAME" => Some("orders-func".to_string()),
        "WEBSITE_DNS_SERVER" => Some(custom.to_string()),
        _ => None,
    };
    let text = format!(
        "[engine]\nazure_dns = \"{azure}\"\nresolv_conf = \"{}\"\n[engine.timeouts]\ndns = \"800ms\"\n",
        sim.resolv()
    );
    build(&text, &env).0
}

async fn run(engine: &Arc<Engine>, targets: &str) -> Report {
    run_on(engine, targets).await
}

#[tokio::test]
async fn divergence_table() {
    let custom = DnsServer::start(custom_zone()).await;
    let azure = DnsServer::start(azure_zone()).await;
    let sim = Sim::without_resolv_conf_servers();
    let engine = azure_engine(&sim, custom.addr, azure.addr);

    // The environment says what is compared with what.
    let env = &engine.run(&[], None).await.environment;
    assert!(env.on_azure);
    assert!(env.dns.custom);
    assert_eq!(env.dns.website_dns_server, Some(custom.addr.to_string()));
    assert_eq!(env.dns.azure_dns, Some(azure.addr.to_string()));
    assert!(env.dns.resolv_conf.is_empty(), "{:?}", env.dns.resolv_conf);
    assert_eq!(env.resolvers.len(), 1, "{:?}", env.resolvers);
    assert_eq!(env.resolvers[0].source, "WEBSITE_DNS_SERVER");

    // A healthy answer is never second-guessed: Azure DNS is not even asked.
    let r = run(
        &engine,
        "[[targets]]\ntarget = \"dns://ok.database.windows.net\"\nprivate = true\n",
    )
    .await;
    assert!(r.targets[0].ok, "{:#?}", r.targets[0]);
    assert!(dns_ev(&r.targets[0]).azure_dns.is_none());
    assert_eq!(azure.queries(), 0, "Azure DNS asked for a healthy answer");

    // (target, private, class, Azure DNS's answer in the evidence)
    let table: &[(&str, bool, FailureClass, &[&str])] = &[
        // custom NXDOMAIN for the privatelink name, Azure DNS has the record
        (
            "nx.database.windows.net",
            false,
            FailureClass::DnsDivergent,
            &["10.1.2.4"],
        ),
        // custom public through a privatelink hop (nothing asked for `private`)
        (
            "pub.database.windows.net",
            false,
            FailureClass::DnsDivergent,
            &["10.1.2.5"],
        ),
        // the same with `private = true`
        (
            "pub.database.windows.net",
            true,
            FailureClass::DnsDivergent,
            &["10.1.2.5"],
        ),
        // custom SERVFAIL
        (
            "sf.database.windows.net",
            false,
            FailureClass::DnsDivergent,
            &["10.1.2.6"],
        ),
        // custom NOERROR without an address
        (
            "empty.database.windows.net",
            false,
            FailureClass::DnsDivergent,
            &["10.1.2.8"],
        ),
        // Azure DNS agrees (NXDOMAIN): the record is missing, not the forwarder
        (
            "gone.database.windows.net",
            false,
            FailureClass::DnsNxdomain,
            &[],
        ),
        // Azure DNS agrees (public): no private endpoint to forward to
        (
            "public.contoso.com",
            true,
            FailureClass::DnsPublicAddress,
            &["20.0.0.7"],
        ),
    ];
    for (name, private, want, azure_said) in table {
        let r = run(
            &engine,
            &format!("[[targets]]\ntarget = \"dns://{name}\"\nprivate = {private}\n"),
        )
        .await;
        let t = &r.targets[0];
        assert_eq!(class(t), Some(*want), "{name} private={private}: {t:#?}");
        let d = dns_ev(t);
        let a = d
            .azure_dns
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: Azure DNS answer missing: {t:#?}"));
        assert_eq!(a.server, azure.addr.to_string());
        assert_eq!(a.source, "azure_dns");
        let ips: Vec<String> = a.addresses.iter().map(|i| i.to_string()).collect();
        assert_eq!(ips, *azure_said, "{name}");
        let f = t.failure.as_ref().unwrap();
        if *want == FailureClass::DnsDivergent {
            assert!(
                f.message.contains(&custom.addr.to_string())
                    && f.message.contains(&azure.addr.to_string())
                    && f.message.contains(azure_said[0]),
                "{}",
                f.message
            );
            assert!(
                f.hint.contains(
                    "conditional forwarder for privatelink.database.windows.net to 168.63.129.16"
                ),
                "{}",
                f.hint
            );
            assert!(f.hint.contains("Private Resolver"), "{}", f.hint);
            // The route is not proven past DNS, and no address is handed on.
            assert!(!t.ok && t.route.is_empty());
        } else {
            assert!(
                t.warnings
                    .iter()
                    .any(|w| w.contains("compared with Azure DNS")
                        && w.contains("not the forwarder")),
                "{name}: {:?}",
                t.warnings
            );
        }
    }
    let text = routeproof::render::text::render(
        &run(
            &engine,
            "[[targets]]\ntarget = \"dns://nx.database.windows.net\"\n",
        )
        .await,
    );
    assert!(text.contains("=> dns.divergent:"), "{text}");
    assert!(
        text.contains(&format!("Azure DNS {}: 10.1.2.4", azure.addr)),
        "{text}"
    );
}

#[tokio::test]
async fn azure_dns_unreachable_leaves_the_ordinary_class() {
    let custom = DnsServer::start(custom_zone()).await;
    let silent = SilentDns::start();
    let sim = Sim::new();
    let engine = azure_engine(&sim, custom.addr, silent.addr);
    let r = run(
        &engine,
        "[[targets]]\ntarget = \"dns://gone.database.windows.net\"\n",
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::DnsNxdomain), "{t:#?}");
    assert_eq!(
        dns_ev(t).azure_dns.as_ref().unwrap().class,
        Some(FailureClass::DnsTimeout)
    );
}

#[tokio::test]
async fn comparison_only_with_custom_dns_and_only_on_azure_or_when_configured() {
    let custom = DnsServer::start(custom_zone()).await;
    let azure = DnsServer::start(azure_zone()).await;
    let sim = Sim::new();
    let target = "[[targets]]\ntarget = \"dns://nx.database.windows.net\"\n";

    // Off Azure, custom DNS from the config, no engine.azure_dns: 168.63.129.16 is
    // never asked (it is unreachable off Azure, and tests must not send there).
    let (engine, _) = build(
        &format!(
            "[engine]\ndns_servers = [\"{}\"]\nresolv_conf = \"{}\"\n",
            custom.addr,
            sim.resolv()
        ),
        &|_| None,
    );
    let r = run(&engine, target).await;
    assert!(!r.environment.on_azure);
    assert!(
        r.environment
            .note
            .as_deref()
            .unwrap()
            .contains("not running in Azure")
    );
    assert!(r.environment.site.is_none());
    assert_eq!(r.environment.dns.azure_dns, None);
    assert!(r.environment.dns.azure_dns_why.contains("not on Azure"));
    assert_eq!(class(&r.targets[0]), Some(FailureClass::DnsNxdomain));
    assert!(dns_ev(&r.targets[0]).azure_dns.is_none());

    // Off Azure with engine.azure_dns set: compared (custom DNS from the config).
    let (engine, _) = build(
        &format!(
            "[engine]\ndns_servers = [\"{}\"]\nazure_dns = \"{}\"\nresolv_conf = \"{}\"\n",
            custom.addr,
            azure.addr,
            sim.resolv()
        ),
        &|_| None,
    );
    let r = run(&engine, target).await;
    assert_eq!(class(&r.targets[0]), Some(FailureClass::DnsDivergent));

    // On Azure without a custom server (resolv.conf only): nothing to compare.
    let env = |k: &str| (k == "WEBSITE_SITE_NAME").then(|| "orders-func".to_string());
    let (engine, _) = build(
        &format!(
            "[engine]\nazure_dns = \"{}\"\nresolv_conf = \"{}\"\n",
            azure.addr,
            sim.resolv()
        ),
        &env,
    );
    let e = &engine.run(&[], None).await.environment;
    assert!(!e.dns.custom);
    assert_eq!(e.dns.azure_dns, None);
    assert_eq!(
        azure.queries(),
        1,
        "only the configured comparison asked Azure DNS"
    );
}
