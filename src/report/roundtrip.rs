//! A report read back from its JSON (a stored `last`, docs/storage.md) is the report that
//! was written: every evidence kind, the environment, routes, skips and warnings.

use serde_json::{Value, json};

use super::*;

/// Every evidence kind, each with content. The match makes a new kind a compile error
/// here until it has a sample.
fn samples() -> Vec<Evidence> {
    let cert = CertInfo {
        subject: "CN=db.internal".into(),
        issuer: "CN=Test CA".into(),
        sans: vec!["db.internal".into()],
        not_before: "2025-01-01T00:00:00Z".into(),
        not_after: "2027-01-01T00:00:00Z".into(),
        sha256: "ab".repeat(32),
        not_after_unix: Some(1_798_761_600),
    };
    let tls = TlsEvidence {
        version: Some("TLSv1.3".into()),
        cipher: Some("TLS13_AES_128_GCM_SHA256".into()),
        alpn: None,
        sni: Some("db.internal".into()),
        verified: true,
        would_fail: None,
        chain: vec![cert],
        days_left: Some(400),
    };
    let identity = IdentityEvidence {
        resource: "https://vault.azure.net".into(),
        identity: "system-assigned".into(),
        ok: true,
        cached: true,
        token_ms: Some(2.5),
        expires_in_s: Some(3500),
    };
    let all = vec![
        Evidence::Dns(DnsEvidence {
            query: "db.internal.".into(),
            types: vec!["A".into()],
            server: Some("127.0.0.1:53".into()),
            rcode: Some("NOERROR".into()),
            cname_chain: vec![CnameHop {
                name: "db.internal.".into(),
                target: "db.privatelink.internal.".into(),
                ttl: 60,
            }],
            addresses: vec![AddressInfo {
                ip: "10.0.0.4".parse().unwrap(),
                ttl: 60,
                class: crate::addr::AddrClass::Private,
            }],
            records: Vec::new(),
            servers: vec![ServerAnswer {
                server: "127.0.0.1:53".into(),
                source: ResolverSource::Config,
                rcode: Some("NOERROR".into()),
                class: Some(FailureClass::DnsTimeout),
                addresses: Vec::new(),
                duration_ms: 1.5,
            }],
            disagreement: true,
            azure_dns: None,
        }),
        Evidence::Tcp(TcpEvidence {
            peer: Some("10.0.0.4:5432".parse().unwrap()),
            local: None,
            attempts: Vec::new(),
            settle_ms: Some(0.0),
        }),
        Evidence::Tls(tls.clone()),
        Evidence::Http(HttpEvidence {
            method: "GET".into(),
            url: "https://db.internal/".into(),
            status: Some(503),
            headers: vec![("server".into(), "x".into())],
            ..HttpEvidence::default()
        }),
        Evidence::Tds(Box::new(TdsEvidence {
            server_version: Some("16.0.1000".into()),
            tls: Some(tls),
            identity: Some(identity.clone()),
            ..TdsEvidence::default()
        })),
        Evidence::Service(Box::new(ServiceEvidence {
            service: "key_vault".into(),
            verdict: "reached_service".into(),
            answer: json!({"status": 401}),
            witness: json!({"conclusion": "unknown"}),
            authorized: Some(json!({"status": 403, "error_code": "ForbiddenByRbac"})),
            identity: Some(identity.clone()),
        })),
        Evidence::Smb(SmbEvidence {
            smb: json!({"dialect": "3.1.1"}),
        }),
        Evidence::Protocol(Box::new(ProtocolEvidence {
            protocol: "postgres",
            witness: Some("10.0.1.5".parse().unwrap()),
            detail: json!({"auth": "scram"}),
            identity: Some(identity),
        })),
        Evidence::None {},
    ];
    for e in &all {
        match e {
            Evidence::Dns(_)
            | Evidence::Tcp(_)
            | Evidence::Tls(_)
            | Evidence::Http(_)
            | Evidence::Tds(_)
            | Evidence::Service(_)
            | Evidence::Smb(_)
            | Evidence::Protocol(_)
            | Evidence::None {} => {}
        }
    }
    all
}

fn report() -> Report {
    let layers: Vec<LayerResult> = samples()
        .into_iter()
        .enumerate()
        .map(|(i, evidence)| LayerResult {
            layer: Layer::Dns,
            ok: i % 2 == 0,
            start_ms: 0.5 + i as f64,
            duration_ms: 1.25 + i as f64,
            error: (i == 1).then(|| Failure {
                layer: Some(Layer::Tcp),
                class: FailureClass::TcpRefused,
                message: "refused".into(),
                hint: "check the NSG".into(),
                rule: None,
            }),
            evidence,
        })
        .collect();
    let target = TargetReport {
        name: "db".into(),
        target: "postgres://db.internal:5432".into(),
        source: Some("DB_URL".into()),
        ok: false,
        reached: Some(Layer::Tcp),
        failure: Some(Failure {
            layer: Some(Layer::Tcp),
            class: FailureClass::TcpRefused,
            message: "refused".into(),
            hint: "check the NSG".into(),
            rule: Some("r".into()),
        }),
        duration_ms: 12.5,
        route: vec![AddressRoute {
            ip: "10.0.0.4".parse().unwrap(),
            class: crate::addr::AddrClass::Private,
            path: RoutePath::Vnet,
            why: "private".into(),
        }],
        layers,
        skipped: vec![Skipped {
            layer: Layer::Http,
            reason: "tcp failed".into(),
        }],
        warnings: vec!["two servers disagree".into()],
    };
    Report {
        schema: SCHEMA,
        version: "9.9.9".into(),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        duration_ms: 20.0,
        deadline_ms: 10_000.0,
        ok: false,
        summary: Report::summarize(std::slice::from_ref(&target)),
        environment: Environment {
            hostname: Some("h".into()),
            on_azure: true,
            note: None,
            site: Some(Site {
                name: "app".into(),
                vnet_integration: Tri::On,
                ..Site::default()
            }),
            dns: DnsSettings::default(),
            resolvers: vec![ResolverInfo {
                server: "127.0.0.1:53".into(),
                source: ResolverSource::WebsiteDnsServer,
            }],
            discovery: None,
        },
        targets: vec![target],
    }
}

#[test]
fn a_report_reads_back_as_written() {
    let r = report();
    let json = serde_json::to_value(&r).unwrap();
    let back: Report = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), json);
    assert_eq!(back.version, "9.9.9");
    // Each evidence kind came back as itself, and the certificate's expiry (not in the
    // JSON) from its text.
    let kinds: Vec<&str> = back.targets[0]
        .layers
        .iter()
        .map(|l| match &l.evidence {
            Evidence::Dns(_) => "dns",
            Evidence::Tcp(_) => "tcp",
            Evidence::Tls(t) => {
                assert_eq!(t.chain[0].not_after_unix, Some(1_798_761_600));
                "tls"
            }
            Evidence::Http(_) => "http",
            Evidence::Tds(t) => {
                assert!(t.tls.as_ref().unwrap().chain[0].not_after_unix.is_some());
                "tds"
            }
            Evidence::Service(_) => "service",
            Evidence::Smb(_) => "smb",
            Evidence::Protocol(_) => "protocol",
            Evidence::None {} => "none",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "dns", "tcp", "tls", "http", "tds", "service", "smb", "protocol", "none"
        ]
    );
}

#[test]
fn another_schema_or_unknown_evidence_is_refused() {
    let mut json = serde_json::to_value(report()).unwrap();
    json["schema"] = Value::from("routeproof.report/v2");
    let e = serde_json::from_value::<Report>(json).unwrap_err();
    assert!(e.to_string().contains("routeproof.report/v2"), "{e}");

    let mut json = serde_json::to_value(report()).unwrap();
    json["targets"][0]["layers"][8]["quantum"] = Value::from(1);
    let e = serde_json::from_value::<Report>(json).unwrap_err();
    assert!(e.to_string().contains("quantum"), "{e}");

    let mut json = serde_json::to_value(report()).unwrap();
    json["targets"][0]["failure"]["class"] = Value::from("tcp.future_class");
    assert!(serde_json::from_value::<Report>(json).is_err());
}
