//! Property tests for every parser that takes outside input: target URIs, ADO.NET
//! connection strings, the TOML config, and the Functions host's invocation envelope
//! (a PRELOGIN answer: `parsers_prelogin.rs`). Arbitrary input never panics;
//! well-formed input parses to what was written; a password never reaches a message.
//! Cheap enough for every CI run (the cargo-fuzz targets in fuzz/ go deeper).

use crate::support::engine::no_env;
use proptest::prelude::*;
use routeproof::config;
use routeproof::handler::{invocation, payload};
use routeproof::target::{self, Host, TargetSpec};

pub(crate) fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A DNS label: letters, digits, inner hyphens.
fn label() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,14}[a-z0-9]"
}

fn hostname() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..5).prop_map(|l| l.join("."))
}

/// Text that looks enough like a URI to get past the first checks.
fn uri_like() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec![
        "dns",
        "tcp",
        "tls",
        "http",
        "https",
        "sqlserver",
        "TCP",
        "ftp",
        "",
    ]);
    (scheme, "[ -~]{0,40}", any::<Option<u16>>()).prop_map(|(s, rest, port)| match port {
        Some(p) => format!("{s}://{rest}:{p}"),
        None => format!("{s}://{rest}"),
    })
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn uri_parser_never_panics(s in prop_oneof![".{0,80}", uri_like()]) {
        if let Ok(spec) = target::parse_uri(&s) {
            // Whatever parses renders, and what it renders parses again to the same target.
            let shown = spec.to_string();
            let _ = format!("{spec:?}");
            // HTTP URLs are shown with their query re-encoded (for redaction), so only the
            // other kinds are expected to read back identically.
            let http = matches!(spec, TargetSpec::Http { .. });
            if !http && !shown.contains("<redacted>") && !shown.contains('…') {
                let again = target::parse_uri(&shown);
                // A SQL target's user and password are never shown, so it reads back
                // without them: there the shown form itself must be stable.
                let has_credentials = matches!(&spec, TargetSpec::Sql { auth, .. } if auth.user.is_some() || auth.password.is_some());
                if has_credentials {
                    prop_assert_eq!(again.as_ref().ok().map(|a| a.to_string()), Some(shown.clone()), "{} -> {}", s, shown);
                } else {
                    prop_assert_eq!(again.as_ref().ok(), Some(&spec), "{} -> {}", s, shown);
                }
            }
        }
        let _ = target::parse_ado(&s);
        let _ = target::parse_host(&s);
        let lookup = |k: &str| (k == "V").then(|| s.clone());
        let _ = target::parse("env:V", &lookup);
    }

    #[test]
    fn tcp_targets_keep_host_and_port(host in hostname(), port in 1u16..) {
        let spec = target::parse_uri(&format!("tcp://{host}:{port}")).unwrap();
        prop_assert_eq!(spec.port(), Some(port));
        prop_assert_eq!(spec.host(), Some(&Host::Name(host.clone())));
        prop_assert_eq!(spec.dns_name(), Some(host.as_str()));
        // The same, shouted, with a trailing dot: names are case-insensitive and rooted.
        let spec2 = target::parse_uri(&format!("TCP://{}.:{port}", host.to_uppercase())).unwrap();
        prop_assert_eq!(spec2, spec);
    }

    #[test]
    fn ip_literals_skip_dns(ip in any::<std::net::IpAddr>(), port in 1u16..) {
        let uri = match ip {
            std::net::IpAddr::V4(v4) => format!("tcp://{v4}:{port}"),
            std::net::IpAddr::V6(v6) => format!("tcp://[{v6}]:{port}"),
        };
        let spec = target::parse_uri(&uri).unwrap();
        prop_assert_eq!(spec.host(), Some(&Host::Ip(ip)));
        prop_assert_eq!(spec.dns_name(), None);
    }

    #[test]
    fn port_zero_is_refused(host in hostname()) {
        let uri = format!("tcp://{host}:0");
        prop_assert!(target::parse_uri(&uri).is_err());
    }

    /// A password is never echoed: not by Debug or Display of the parsed target, not
    /// by any error, however the rest of the string is malformed.
    #[test]
    fn ado_password_never_leaks(
        host in hostname(),
        port in prop::option::of(1u16..),
        pw in "PW[A-Za-z0-9!#%&*+,.:<>?@^_~ -]{10,24}",
        key in prop::sample::select(vec!["Password", "pwd", "PASSWORD", "Pwd "]),
        quote in prop::sample::select(vec!["", "'", "\""]),
        before in prop::collection::vec(
            prop::sample::select(vec![
                "Initial Catalog=orders", "User ID=app", "Encrypt=Strict", "Persist Security Info=False",
                "TrustServerCertificate=yes", "Authentication=Active Directory Default", "junk", "=x", "Port=zz",
            ]),
            0..4,
        ),
        tail in prop::sample::select(vec!["", ";", ";Database='unclosed", ";Server=tcp:x,notaport", ";=", ";Connect Timeout=30"]),
        server_first in any::<bool>(),
    ) {
        let server = match port {
            Some(p) => format!("Server=tcp:{host},{p}"),
            None => format!("Data Source={host}"),
        };
        // Inside quotes a value may hold ';'; unquoted, SqlClient stops at it.
        let pw = if quote.is_empty() { pw.replace(',', "") } else { pw };
        let pw_field = format!("{key}={quote}{pw}{quote}");
        let mut parts: Vec<String> = before.iter().map(|s| s.to_string()).collect();
        if server_first { parts.insert(0, server.clone()) } else { parts.push(server.clone()) }
        parts.push(pw_field);
        let s = format!("{}{tail}", parts.join(";"));
        let shown = match target::parse_ado(&s) {
            Ok(spec) => format!("{spec} {spec:?}"),
            Err(e) => format!("{e} {e:?}"),
        };
        prop_assert!(!shown.contains(&pw), "password leaked from {}: {}", s, shown);
        // Through `env:`, as App Service hands it over.
        let lookup = |k: &str| (k == "SQLAZURECONNSTR_db").then(|| s.clone());
        let shown = match target::parse("env:SQLAZURECONNSTR_db", &lookup) {
            Ok(spec) => format!("{spec} {spec:?}"),
            Err(e) => format!("{e} {e:?}"),
        };
        prop_assert!(!shown.contains(&pw), "password leaked via env: {}", shown);
    }

    /// `Password;S3cret='…`: a part without `=` must not turn the secret into a key
    /// that an error then names (found by this test's first version).
    #[test]
    fn ado_part_without_equals_never_leaks_what_follows(
        junk in "[A-Za-z ]{1,12}",
        pw in "PW[A-Za-z0-9]{10,20}",
        value in prop::sample::select(vec!["'unclosed", "x", "\"a", ""]),
    ) {
        let s = format!("Server=tcp:h,1433;{junk};{pw}={value}");
        let shown = match target::parse_ado(&s) {
            Ok(spec) => format!("{spec} {spec:?}"),
            Err(e) => format!("{e} {e:?}"),
        };
        prop_assert!(!shown.contains(&pw), "leaked from {}: {}", s, shown);
    }

    #[test]
    fn ado_server_and_port_round_trip(host in hostname(), port in 1u16.., db in "[a-z]{1,12}") {
        let s = format!("Server=tcp:{host},{port};Initial Catalog={db};Password=x");
        let spec = target::parse_ado(&s).unwrap();
        let TargetSpec::Sql { host: h, port: p, database, .. } = spec else {
            panic!("not a SQL target")
        };
        prop_assert_eq!(h, Host::Name(host));
        prop_assert_eq!(p, port);
        prop_assert_eq!(database, Some(db));
    }

    #[test]
    fn url_credentials_never_render(host in hostname(), user in "[a-z]{3,8}", pw in "PW[A-Za-z0-9]{10,20}") {
        // A host the URL standard rejects (e.g. an invalid `xn--` label) is an error, and
        // the error must not quote the credentials either.
        let shown = match target::parse_uri(&format!("https://{user}:{pw}@{host}/x?sig={pw}")) {
            Ok(spec) => format!("{spec} {spec:?}"),
            Err(e) => e.to_string(),
        };
        prop_assert!(!shown.contains(&pw), "{}", shown);
    }
}

// ------------------------------------------------------------------ config

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,30}".prop_map(|s| format!("{:?}", s)),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("[]".to_string()),
        Just("[\"10.0.0.4\", 53]".to_string()),
        Just("\"0s\"".to_string()),
        Just("\"999999999999h\"".to_string()),
        Just("{ a = 1 }".to_string()),
        uri_like().prop_map(|s| format!("{:?}", s)),
    ]
}

fn config_text() -> impl Strategy<Value = String> {
    let engine_key = prop::sample::select(vec![
        "dns_servers",
        "concurrency",
        "deadline",
        "all_addresses",
        "tcp_settle",
        "ca_file",
        "resolv_conf",
        "discover",
        "azure_dns",
        "nonsense",
    ]);
    let target_key = prop::sample::select(vec![
        "name",
        "target",
        "private",
        "addresses",
        "max_ms",
        "sni",
        "insecure",
        "cert_days_left",
        "method",
        "headers",
        "status",
        "body_contains",
        "body_regex",
        "follow_redirects",
        "max_redirects",
        "max_body_bytes",
        "user",
        "password",
        "query",
        "strict",
        "authentication",
        "client_id",
        "bogus",
    ]);
    let timeout_key = prop::sample::select(vec![
        "dns", "tcp", "tls", "http", "body", "login", "query", "x",
    ]);
    (
        prop::collection::vec((engine_key, toml_value()), 0..4),
        prop::collection::vec((timeout_key, toml_value()), 0..3),
        prop::collection::vec(
            prop::collection::vec((target_key, toml_value()), 0..5),
            0..4,
        ),
    )
        .prop_map(|(engine, timeouts, targets)| {
            let mut s = String::from("[engine]\n");
            for (k, v) in engine {
                s.push_str(&format!("{k} = {v}\n"));
            }
            s.push_str("[engine.timeouts]\n");
            for (k, v) in timeouts {
                s.push_str(&format!("{k} = {v}\n"));
            }
            for t in targets {
                s.push_str("[[targets]]\n");
                for (k, v) in t {
                    s.push_str(&format!("{k} = {v}\n"));
                }
            }
            s
        })
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn config_parser_never_panics_and_names_a_key(text in prop_oneof![".{0,200}", config_text()]) {
        match config::parse(&text, &no_env) {
            Ok(cfg) => {
                prop_assert!(cfg.engine.concurrency >= 1);
                let mut names: Vec<&str> = cfg.targets.iter().map(|t| t.name.as_str()).collect();
                names.sort();
                names.dedup();
                prop_assert_eq!(names.len(), cfg.targets.len(), "target names are unique");
            }
            Err(e) => {
                prop_assert!(!e.key.is_empty(), "error without a key: {:?}", e);
                prop_assert!(e.to_string().starts_with("config.invalid"), "{}", e);
            }
        }
    }
}

// ------------------------------------------------------------------ invocation envelope

/// Well-formed traceparents in any case, some with surrounding space, some with an
/// all-zero id or version ff, so the accepting branch is exercised.
fn traceparent_like() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("00".to_string()), "[0-9a-fA-F]{2}"],
        prop_oneof![Just("0".repeat(32)), "[0-9a-fA-F]{32}"],
        prop_oneof![Just("0".repeat(16)), "[0-9a-fA-F]{16}"],
        "[0-9a-fA-F]{2}",
        prop_oneof![Just(String::new()), "-[0-9a-f]{1,8}"],
        prop_oneof![Just(""), Just(" ")],
    )
        .prop_map(|(v, t, p, f, more, pad)| format!("{pad}{v}-{t}-{p}-{f}{more}{pad}"))
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,24}".prop_map(Value::String),
        // The host double-encodes: strings holding JSON.
        Just(Value::String(
            "{\"Url\":\"http://x/api/probe\",\"Method\":\"GET\"}".into()
        )),
        Just(Value::String("\"GET\"".into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop::sample::select(vec![
            "Data",
            "data",
            "Metadata",
            "req",
            "Url",
            "Method",
            "Query",
            "Headers",
            "Body",
            "sys",
            "MethodName",
            "Params",
            "Identities",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::vec((key, inner), 0..5).prop_map(|kv| {
                serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn envelope_decoding_never_panics(
        v in json_value(),
        raw in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = serde_json::to_vec(&v).unwrap();
        for input in [&bytes[..], &raw[..]] {
            match invocation::parse_envelope(input) {
                Ok(env) => {
                    let _ = invocation::method_name(&env);
                    match payload::http_request(&env, 64 * 1024) {
                        Ok(_) => {}
                        Err(e) => prop_assert!(e.class.contains('.'), "{:?}", e),
                    }
                }
                Err(e) => prop_assert!(e.class.starts_with("envelope."), "{:?}", e),
            }
        }
        let _ = invocation::unwrap_encoded(&v);
    }

    #[test]
    fn traceparent_never_panics(s in prop_oneof!["[0-9a-f-]{0,60}|.{0,60}", traceparent_like()]) {
        if let Some((header, trace)) = invocation::parse_traceparent(&s) {
            // What is accepted is the trimmed header in lowercase (for a future version, its
            // first four fields: W3C trace-context says to parse those and ignore the rest),
            // and reads back the same.
            let input = s.trim().to_ascii_lowercase();
            if input.starts_with("00-") {
                prop_assert_eq!(&header, &input);
            } else {
                prop_assert!(input.starts_with(&header), "{} from {}", header, input);
                prop_assert!(
                    input.len() == header.len() || input[header.len()..].starts_with('-'),
                    "{} from {}", header, input
                );
            }
            prop_assert_eq!(
                invocation::parse_traceparent(&header),
                Some((header.clone(), trace.clone()))
            );
            // version-traceid-parentid-flags, every field lowercase hex of its length;
            // version ff and all-zero ids are invalid; version 00 has exactly four fields.
            let fields: Vec<&str> = header.split('-').collect();
            let hex = |f: &str, n: usize| {
                f.len() == n && f.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            };
            prop_assert!(fields.len() >= 4, "{}", header);
            prop_assert!(hex(fields[0], 2) && fields[0] != "ff", "{}", header);
            prop_assert!(fields[0] != "00" || fields.len() == 4, "{}", header);
            prop_assert!(hex(fields[1], 32) && hex(fields[2], 16) && hex(fields[3], 2), "{}", header);
            prop_assert_eq!(fields[1], trace.as_str());
            prop_assert!(fields[1].bytes().any(|b| b != b'0'), "{}", header);
            prop_assert!(fields[2].bytes().any(|b| b != b'0'), "{}", header);
        }
    }
}
