//! What the in-process DNS peer answers, as `dig` sees it: loopback-only binding,
//! privatelink chains, case, NXDOMAIN/NODATA, SERVFAIL/REFUSED, CNAME loops, every
//! record type.

use super::*;

#[tokio::test]
async fn binds_loopback_only_with_udp_and_tcp_on_one_port() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    assert_ne!(server.addr.port(), 0);

    let udp = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &[],
    )
    .await;
    let tcp = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &["+tcp"],
    )
    .await;
    for r in [&udp, &tcp] {
        assert_eq!(r.status(), "NOERROR", "{}", r.stdout);
        assert_eq!(r.answer_pairs(), vec![("A", "127.0.0.10")], "{}", r.stdout);
    }
    assert!(udp.stdout.contains("(UDP)"), "{}", udp.stdout);
    assert!(tcp.stdout.contains("(TCP)"), "{}", tcp.stdout);
    assert_eq!(server.queries(), 2);
}

#[tokio::test]
async fn privatelink_cname_chain_over_udp_and_tcp() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    for transport in [&[][..], &["+tcp"][..]] {
        let r = dig(
            &dig_path,
            server.addr,
            "myserver.database.windows.net",
            "A",
            transport,
        )
        .await;
        assert_eq!(r.status(), "NOERROR", "{}", r.stdout);
        for flag in ["qr", "aa", "rd", "ra"] {
            assert!(r.has_flag(flag), "missing flag {flag}: {}", r.stdout);
        }
        assert!(!r.has_flag("tc"), "{}", r.stdout);
        assert_eq!(
            r.answers,
            vec![
                Rr {
                    name: "myserver.database.windows.net.".into(),
                    rtype: "CNAME".into(),
                    data: "myserver.privatelink.database.windows.net.".into(),
                },
                Rr {
                    name: "myserver.privatelink.database.windows.net.".into(),
                    rtype: "A".into(),
                    data: "10.1.2.4".into(),
                },
            ],
            "{}",
            r.stdout
        );
        // dig checks the id and question itself and complains on mismatch.
        assert!(!r.stdout.contains("WARNING"), "{}", r.stdout);
        assert!(
            r.stdout.contains(";myserver.database.windows.net.\tIN\tA"),
            "{}",
            r.stdout
        );
    }
}

#[tokio::test]
async fn loopback_privatelink_a_and_aaaa() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    let a = dig(
        &dig_path,
        server.addr,
        "loopsql.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(a.status(), "NOERROR", "{}", a.stdout);
    assert_eq!(
        a.answer_pairs(),
        vec![
            ("CNAME", "loopsql.privatelink.database.windows.net."),
            ("A", "127.0.0.1")
        ],
        "{}",
        a.stdout
    );
    let aaaa = dig(
        &dig_path,
        server.addr,
        "loopsql.database.windows.net",
        "AAAA",
        &["+tcp"],
    )
    .await;
    assert_eq!(aaaa.status(), "NOERROR", "{}", aaaa.stdout);
    assert_eq!(
        aaaa.answer_pairs(),
        vec![
            ("CNAME", "loopsql.privatelink.database.windows.net."),
            ("AAAA", "::1")
        ],
        "{}",
        aaaa.stdout
    );
}

#[tokio::test]
async fn public_answer_with_privatelink_hop() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    let r = dig(
        &dig_path,
        server.addr,
        "publicsql.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(r.status(), "NOERROR", "{}", r.stdout);
    assert_eq!(
        r.answer_pairs(),
        vec![
            ("CNAME", "publicsql.privatelink.database.windows.net."),
            ("CNAME", "publicsql.cloudapp.net."),
            ("A", "20.0.0.5"),
        ],
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn names_are_case_insensitive() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    let r = dig(
        &dig_path,
        server.addr,
        "LocAL.DataBase.Windows.NET.",
        "A",
        &[],
    )
    .await;
    assert_eq!(r.status(), "NOERROR", "{}", r.stdout);
    assert_eq!(r.answer_pairs(), vec![("A", "127.0.0.10")], "{}", r.stdout);
}

#[tokio::test]
async fn unknown_name_is_nxdomain_with_soa() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    for transport in [&[][..], &["+tcp"][..]] {
        let r = dig(
            &dig_path,
            server.addr,
            "nosuch.database.windows.net",
            "A",
            transport,
        )
        .await;
        assert_eq!(r.status(), "NXDOMAIN", "{}", r.stdout);
        assert!(r.answers.is_empty(), "{}", r.stdout);
        assert_eq!(r.authority.len(), 1, "{}", r.stdout);
        assert_eq!(r.authority[0].rtype, "SOA", "{}", r.stdout);
        assert!(
            "nosuch.database.windows.net.".ends_with(&r.authority[0].name),
            "SOA owner must be an ancestor: {}",
            r.stdout
        );
    }
    // An empty non-terminal is not NXDOMAIN.
    let ent = dig(
        &dig_path,
        server.addr,
        "privatelink.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(ent.status(), "NOERROR", "{}", ent.stdout);
    assert!(ent.answers.is_empty(), "{}", ent.stdout);
}

#[tokio::test]
async fn existing_name_without_the_type_is_nodata() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    let a = dig(
        &dig_path,
        server.addr,
        "empty.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(a.status(), "NOERROR", "{}", a.stdout);
    assert!(a.answers.is_empty(), "{}", a.stdout);
    assert_eq!(a.authority.len(), 1, "{}", a.stdout);
    assert_eq!(a.authority[0].rtype, "SOA", "{}", a.stdout);

    let txt = dig(
        &dig_path,
        server.addr,
        "empty.database.windows.net",
        "TXT",
        &[],
    )
    .await;
    assert_eq!(txt.status(), "NOERROR", "{}", txt.stdout);
    assert_eq!(
        txt.answer_pairs(),
        vec![("TXT", "\"exists-but-no-address\"")],
        "{}",
        txt.stdout
    );
    assert!(txt.authority.is_empty(), "{}", txt.stdout);
}

#[tokio::test]
async fn servfail_and_refused() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    for transport in [&[][..], &["+tcp"][..]] {
        let sf = dig(&dig_path, server.addr, "x.servfail.test", "A", transport).await;
        assert_eq!(sf.status(), "SERVFAIL", "{}", sf.stdout);
        assert!(sf.answers.is_empty(), "{}", sf.stdout);
        let rf = dig(&dig_path, server.addr, "x.refused.test", "AAAA", transport).await;
        assert_eq!(rf.status(), "REFUSED", "{}", rf.stdout);
        assert!(rf.answers.is_empty(), "{}", rf.stdout);
    }
}

#[tokio::test]
async fn cname_loop_returns_the_cnames_seen() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    let r = dig(
        &dig_path,
        server.addr,
        "loop1.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(r.status(), "NOERROR", "{}", r.stdout);
    assert_eq!(
        r.answer_pairs(),
        vec![
            ("CNAME", "loop2.database.windows.net."),
            ("CNAME", "loop1.database.windows.net."),
        ],
        "{}",
        r.stdout
    );

    // A long (non-looping) chain stops after 8 hops.
    let mut zone = Zone::new();
    for i in 0..12 {
        zone = zone.cname(
            &format!("c{i}.chain.test"),
            &format!("c{}.chain.test", i + 1),
            60,
        );
    }
    let chain = DnsServer::start(zone.a("c12.chain.test", "127.0.0.1", 60)).await;
    let r = dig(&dig_path, chain.addr, "c0.chain.test", "A", &[]).await;
    assert_eq!(r.status(), "NOERROR", "{}", r.stdout);
    assert_eq!(r.answers.len(), 8, "{}", r.stdout);
    assert!(
        r.answers.iter().all(|rr| rr.rtype == "CNAME"),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn every_record_type() {
    let dig_path = require_dig!();
    let zone = Zone::new()
        .a("host.example.test", "192.0.2.7", 300)
        .aaaa("host.example.test", "2001:db8::7", 300)
        .cname("alias.example.test", "host.example.test", 120)
        .txt("example.test", "v=spf1 -all", 60)
        .mx("example.test", 10, "mail.example.test", 60)
        .srv(
            "_sql._tcp.example.test",
            1,
            5,
            1433,
            "host.example.test",
            60,
        );
    let server = DnsServer::start(zone).await;
    let cases = [
        ("host.example.test", "A", vec![("A", "192.0.2.7")]),
        ("host.example.test", "AAAA", vec![("AAAA", "2001:db8::7")]),
        (
            "alias.example.test",
            "CNAME",
            vec![("CNAME", "host.example.test.")],
        ),
        (
            "alias.example.test",
            "AAAA",
            vec![("CNAME", "host.example.test."), ("AAAA", "2001:db8::7")],
        ),
        ("example.test", "TXT", vec![("TXT", "\"v=spf1 -all\"")]),
        ("example.test", "MX", vec![("MX", "10 mail.example.test.")]),
        (
            "_sql._tcp.example.test",
            "SRV",
            vec![("SRV", "1 5 1433 host.example.test.")],
        ),
    ];
    for (name, rtype, expected) in cases {
        let r = dig(&dig_path, server.addr, name, rtype, &[]).await;
        assert_eq!(r.status(), "NOERROR", "{name} {rtype}: {}", r.stdout);
        assert_eq!(r.answer_pairs(), expected, "{name} {rtype}: {}", r.stdout);
    }
    // TTLs are served as configured.
    let r = dig(&dig_path, server.addr, "host.example.test", "A", &[]).await;
    assert!(
        r.stdout
            .contains("host.example.test.\t300\tIN\tA\t192.0.2.7"),
        "{}",
        r.stdout
    );
}
