//! Checks the DNS test peers with an independent client (ISC `dig`), so the
//! rest of the suite can trust that they behave like real DNS servers and
//! that a passing prober test is not just hickory agreeing with itself.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::dns::{DnsServer, SilentDns, Zone};
use support::unbound::Unbound;

/// One resource record line from dig's output.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rr {
    name: String,
    rtype: String,
    data: String,
}

/// The parts of dig's output the tests assert on.
#[derive(Debug)]
struct DigResult {
    exit_code: Option<i32>,
    status: Option<String>,
    flags: Vec<String>,
    answers: Vec<Rr>,
    authority: Vec<Rr>,
    stdout: String,
    elapsed: Duration,
}

impl DigResult {
    fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("<no reply>")
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// `(type, data)` pairs of the answer section, in order.
    fn answer_pairs(&self) -> Vec<(&str, &str)> {
        self.answers
            .iter()
            .map(|r| (r.rtype.as_str(), r.data.as_str()))
            .collect()
    }

    fn timed_out(&self) -> bool {
        // dig exits 9 for "no reply from server".
        self.exit_code == Some(9) && self.status.is_none() && self.stdout.contains("timed out")
    }
}

fn find_dig() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("dig"))
        .find(|p| p.is_file())
}

macro_rules! require_dig {
    () => {
        match find_dig() {
            Some(path) => path,
            None => {
                support::skip(
                    "dns_peers",
                    "dig not installed (apt-get install bind9-dnsutils)",
                );
                return;
            }
        }
    };
}

/// Runs dig on the blocking pool: the server under test lives on this same
/// (single-threaded) runtime and must keep running while dig waits.
async fn dig(
    dig_path: &Path,
    server: SocketAddr,
    name: &str,
    rtype: &str,
    extra: &[&str],
) -> DigResult {
    let mut cmd = Command::new(dig_path);
    cmd.arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=2", "+tries=1"])
        .args(extra)
        .arg(name)
        .arg(rtype);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("dig task panicked")
        .expect("running dig");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut result = parse_dig(&stdout);
    result.exit_code = output.status.code();
    result.elapsed = elapsed;
    result
}

fn parse_dig(stdout: &str) -> DigResult {
    let mut status = None;
    let mut flags = Vec::new();
    let mut answers = Vec::new();
    let mut authority = Vec::new();
    #[derive(PartialEq)]
    enum Section {
        Other,
        Answer,
        Authority,
    }
    let mut section = Section::Other;
    for line in stdout.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            status = Some(rest.split(',').next().unwrap_or("").trim().to_owned());
        } else if let Some(rest) = line.strip_prefix(";; flags:") {
            flags = rest
                .split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        } else if line.starts_with(";; ANSWER SECTION:") {
            section = Section::Answer;
        } else if line.starts_with(";; AUTHORITY SECTION:") {
            section = Section::Authority;
        } else if line.trim().is_empty() || line.starts_with(";;") {
            section = Section::Other;
        } else if section != Section::Other && !line.starts_with(';') {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 5 {
                let rr = Rr {
                    name: fields[0].to_ascii_lowercase(),
                    rtype: fields[3].to_owned(),
                    data: fields[4..].join(" "),
                };
                if section == Section::Answer {
                    answers.push(rr);
                } else {
                    authority.push(rr);
                }
            }
        }
    }
    DigResult {
        exit_code: None,
        status,
        flags,
        answers,
        authority,
        stdout: stdout.to_owned(),
        elapsed: Duration::ZERO,
    }
}

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

#[tokio::test]
async fn truncated_udp_falls_back_to_tcp() {
    let dig_path = require_dig!();
    let zone = Zone::privatelink_fixture()
        .a("big.example.test", "127.0.0.42", 60)
        .truncate_udp("big.example.test");
    let server = DnsServer::start(zone).await;

    // UDP only, no retry: TC set and nothing in the answer.
    let udp = dig(
        &dig_path,
        server.addr,
        "big.example.test",
        "A",
        &["+notcp", "+ignore"],
    )
    .await;
    assert_eq!(udp.status(), "NOERROR", "{}", udp.stdout);
    assert!(udp.has_flag("tc"), "{}", udp.stdout);
    assert!(udp.answers.is_empty(), "{}", udp.stdout);
    assert_eq!(server.queries(), 1);

    // Default dig behaviour: sees TC and retries the same port over TCP.
    let auto = dig(&dig_path, server.addr, "big.example.test", "A", &[]).await;
    assert!(
        auto.stdout.contains("Truncated, retrying in TCP mode"),
        "{}",
        auto.stdout
    );
    assert_eq!(auto.status(), "NOERROR", "{}", auto.stdout);
    assert_eq!(
        auto.answer_pairs(),
        vec![("A", "127.0.0.42")],
        "{}",
        auto.stdout
    );
    assert_eq!(server.queries(), 3);

    // Straight to TCP: full answer, no TC.
    let tcp = dig(&dig_path, server.addr, "big.example.test", "A", &["+tcp"]).await;
    assert!(!tcp.has_flag("tc"), "{}", tcp.stdout);
    assert_eq!(
        tcp.answer_pairs(),
        vec![("A", "127.0.0.42")],
        "{}",
        tcp.stdout
    );

    // Other names on the same server are unaffected over UDP.
    let other = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &["+ignore"],
    )
    .await;
    assert!(!other.has_flag("tc"), "{}", other.stdout);
    assert_eq!(
        other.answer_pairs(),
        vec![("A", "127.0.0.10")],
        "{}",
        other.stdout
    );
}

#[tokio::test]
async fn dropped_queries_time_out_but_are_counted() {
    let dig_path = require_dig!();
    let zone = Zone::privatelink_fixture()
        .a("blackhole.example.test", "127.0.0.1", 60)
        .drop_queries("blackhole.example.test");
    let server = DnsServer::start(zone).await;

    let r = dig(
        &dig_path,
        server.addr,
        "blackhole.example.test",
        "A",
        &["+time=1"],
    )
    .await;
    assert!(r.timed_out(), "expected a timeout: {r:?}");
    assert!(r.elapsed >= Duration::from_millis(900), "{:?}", r.elapsed);
    assert_eq!(server.queries(), 1);

    let tcp = dig(
        &dig_path,
        server.addr,
        "blackhole.example.test",
        "A",
        &["+time=1", "+tcp"],
    )
    .await;
    assert!(tcp.timed_out(), "expected a timeout over TCP: {tcp:?}");

    // The server itself is alive.
    let ok = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(
        ok.answer_pairs(),
        vec![("A", "127.0.0.10")],
        "{}",
        ok.stdout
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    let dig_path = require_dig!();
    let silent = SilentDns::start();
    assert!(silent.addr.ip().is_loopback());
    let r = dig(
        &dig_path,
        silent.addr,
        "local.database.windows.net",
        "A",
        &["+time=1"],
    )
    .await;
    assert!(r.timed_out(), "expected a timeout: {r:?}");
    assert!(r.elapsed >= Duration::from_millis(900), "{:?}", r.elapsed);
}

#[tokio::test]
async fn delayed_answer_arrives_late() {
    let dig_path = require_dig!();
    let zone =
        Zone::privatelink_fixture().delay("local.database.windows.net", Duration::from_millis(400));
    let server = DnsServer::start(zone).await;

    let slow = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(
        slow.answer_pairs(),
        vec![("A", "127.0.0.10")],
        "{}",
        slow.stdout
    );
    assert!(
        slow.elapsed >= Duration::from_millis(400),
        "{:?}",
        slow.elapsed
    );

    // A delay longer than the client's patience looks like silence.
    let zone =
        Zone::privatelink_fixture().delay("local.database.windows.net", Duration::from_secs(3));
    let server = DnsServer::start(zone).await;
    let r = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &["+time=1"],
    )
    .await;
    assert!(r.timed_out(), "expected a timeout: {r:?}");
}

#[tokio::test]
async fn edns_is_echoed_only_when_sent() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    let with = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &["+edns=0"],
    )
    .await;
    assert!(with.stdout.contains("OPT PSEUDOSECTION"), "{}", with.stdout);
    assert!(with.stdout.contains("EDNS: version: 0"), "{}", with.stdout);
    let without = dig(
        &dig_path,
        server.addr,
        "local.database.windows.net",
        "A",
        &["+noedns"],
    )
    .await;
    assert!(
        !without.stdout.contains("OPT PSEUDOSECTION"),
        "{}",
        without.stdout
    );
    assert_eq!(
        without.answer_pairs(),
        vec![("A", "127.0.0.10")],
        "{}",
        without.stdout
    );
}

#[tokio::test]
async fn query_counter_counts_every_query() {
    let dig_path = require_dig!();
    let server = DnsServer::start(Zone::privatelink_fixture()).await;
    assert_eq!(server.queries(), 0);
    for (i, name) in [
        "local.database.windows.net",
        "nosuch.database.windows.net",
        "x.servfail.test",
    ]
    .into_iter()
    .enumerate()
    {
        dig(&dig_path, server.addr, name, "A", &[]).await;
        assert_eq!(server.queries(), i + 1);
    }
}

#[tokio::test]
async fn dropping_the_server_frees_the_port() {
    let addr = {
        let server = DnsServer::start(Zone::new()).await;
        server.addr
    };
    // The tasks are aborted on drop; give the runtime a moment to run the
    // aborts, which close the sockets.
    let mut freed = false;
    for _ in 0..50 {
        if std::net::UdpSocket::bind(addr).is_ok() && std::net::TcpListener::bind(addr).is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "port {addr} still bound after drop");
}

#[tokio::test]
async fn unbound_serves_the_same_privatelink_zone() {
    let dig_path = require_dig!();
    let unbound = match Unbound::start() {
        Ok(u) => u,
        Err(why) => {
            support::skip("unbound peer", &why);
            return;
        }
    };
    assert!(unbound.addr.ip().is_loopback());

    for transport in [&[][..], &["+tcp"][..]] {
        let a = dig(
            &dig_path,
            unbound.addr,
            "loopsql.database.windows.net",
            "A",
            transport,
        )
        .await;
        assert_eq!(a.status(), "NOERROR", "{}", a.stdout);
        assert!(a.has_flag("ra"), "{}", a.stdout);
        assert_eq!(
            a.answer_pairs(),
            vec![
                ("CNAME", "loopsql.privatelink.database.windows.net."),
                ("A", "127.0.0.1")
            ],
            "{}",
            a.stdout
        );
    }
    let aaaa = dig(
        &dig_path,
        unbound.addr,
        "loopsql.database.windows.net",
        "AAAA",
        &[],
    )
    .await;
    assert_eq!(
        aaaa.answer_pairs(),
        vec![
            ("CNAME", "loopsql.privatelink.database.windows.net."),
            ("AAAA", "::1")
        ],
        "{}",
        aaaa.stdout
    );
    let my = dig(
        &dig_path,
        unbound.addr,
        "myserver.database.windows.net",
        "A",
        &[],
    )
    .await;
    assert_eq!(
        my.answer_pairs(),
        vec![
            ("CNAME", "myserver.privatelink.database.windows.net."),
            ("A", "10.1.2.4")
        ],
        "{}",
        my.stdout
    );

    for (name, status) in [
        ("nosuch.database.windows.net", "NXDOMAIN"),
        ("x.nxdomain.test", "NXDOMAIN"),
        ("x.refused.test", "REFUSED"),
        ("x.servfail.test", "SERVFAIL"),
    ] {
        let r = dig(&dig_path, unbound.addr, name, "A", &[]).await;
        assert_eq!(r.status(), status, "{name}: {}", r.stdout);
    }
}
