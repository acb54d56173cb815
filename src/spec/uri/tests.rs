use super::*;
use crate::layer::Layer;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn good_uris() {
    let cases: &[(&str, &str)] = &[
        (
            "dns://MyServer.Database.Windows.Net.",
            "dns://myserver.database.windows.net",
        ),
        (
            "dns://_sip._tcp.example.org?type=srv",
            "dns://_sip._tcp.example.org?type=SRV",
        ),
        (
            "tcp://loopsql.database.windows.net:1433",
            "tcp://loopsql.database.windows.net:1433",
        ),
        ("tcp://127.0.0.1:80", "tcp://127.0.0.1:80"),
        ("tcp://[::1]:443", "tcp://[::1]:443"),
        ("tls://kv.vault.azure.net", "tls://kv.vault.azure.net:443"),
        (
            "tls://10.1.2.4:443?sni=kv.vault.azure.net",
            "tls://10.1.2.4:443?sni=kv.vault.azure.net",
        ),
        ("https://api.internal/health", "https://api.internal/health"),
        ("http://api.internal:8080/", "http://api.internal:8080/"),
        (
            "sqlserver://db.database.windows.net",
            "sqlserver://db.database.windows.net:1433",
        ),
        (
            "sqlserver://db.database.windows.net:11001/orders",
            "sqlserver://db.database.windows.net:11001/orders",
        ),
    ];
    for (input, shown) in cases {
        let t = parse(input, &no_env).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(t.to_string(), *shown, "{input}");
    }
}

#[test]
fn bad_uris_name_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("myserver:1433", "is not a target URI"),
        ("ftp://x:21", "unknown scheme `ftp`"),
        ("tcp://host", "tcp:// needs a port"),
        ("tcp://host:0", "port 0"),
        ("tcp://host:99999", "invalid URI"),
        ("tcp://host:80/path", "unexpected path"),
        ("tcp://host:80?x=1", "unknown query parameter `x`"),
        ("tcp://bad_-.name-:80", "bad label"),
        ("tcp://a..b:80", "bad label"),
        ("tcp://999.1.1.1:80", "looks like an IPv4 address"),
        ("dns://x.org?type=PTR", "unsupported DNS type `PTR`"),
        ("dns://x.org:53", "takes a name, not a port"),
        ("dns://10.0.0.1", "needs a name to resolve"),
        ("tls://h:443?sni=bad..name", "bad label"),
        ("sqlserver://h/db/extra", "at most one path segment"),
        ("env:", "app setting name"),
        (
            "env:NOT_SET_ANYWHERE",
            "app setting `NOT_SET_ANYWHERE` is not set",
        ),
    ];
    for (input, want) in cases {
        let e = parse(input, &no_env).expect_err(input);
        assert!(e.0.contains(want), "{input}: got `{e}`, want `{want}`");
    }
}

#[test]
fn env_targets_and_ado_strings() {
    let env = |k: &str| {
        match k {
        "SqlConnectionString" => Some(
            "Server=tcp:myserver.database.windows.net,1433;Initial Catalog=orders;User ID=app;Password='p;a''ss-PLANTED';Encrypt=True".to_string(),
        ),
        "ApiUrl" => Some("https://api.internal/health?code=fnkey-PLANTED".to_string()),
        "Broken" => Some("Server=tcp:h,abc;Password=PLANTED".to_string()),
        "Unclosed" => Some("Server=h;Password='PLANTED".to_string()),
        _ => None,
    }
    };
    let t = parse("env:SqlConnectionString", &env).unwrap();
    match &t {
        TargetSpec::Sql {
            host,
            port,
            database,
            auth,
        } => {
            assert_eq!(host, &Host::Name("myserver.database.windows.net".into()));
            assert_eq!(*port, 1433);
            assert_eq!(database.as_deref(), Some("orders"));
            assert_eq!(auth.user.as_deref(), Some("app"));
            assert_eq!(auth.password.as_ref().unwrap().expose(), "p;a'ss-PLANTED");
        }
        other => panic!("{other:?}"),
    }
    assert!(!t.to_string().contains("PLANTED"));
    assert!(!format!("{t:?}").contains("PLANTED"));
    let api = parse("env:ApiUrl", &env).unwrap();
    assert!(!api.to_string().contains("PLANTED"), "{api}");
    for bad in ["env:Broken", "env:Unclosed"] {
        let e = parse(bad, &env).unwrap_err();
        assert!(!e.0.contains("PLANTED"), "{e}");
    }
    assert!(
        parse("env:Broken", &env)
            .unwrap_err()
            .0
            .contains("`abc` is not a number")
    );
    assert!(
        parse("env:Unclosed", &env)
            .unwrap_err()
            .0
            .contains("unclosed quote")
    );
}

#[test]
fn layer_plans() {
    use Layer::*;
    let plan = |s: &str| parse(s, &no_env).unwrap().layers();
    assert_eq!(plan("dns://a.b"), vec![Dns]);
    assert_eq!(plan("tcp://a.b:1"), vec![Dns, Tcp]);
    assert_eq!(plan("tcp://127.0.0.1:1"), vec![Tcp]);
    assert_eq!(plan("https://a.b/"), vec![Dns, Tcp, Tls, Http]);
    assert_eq!(plan("http://a.b/"), vec![Dns, Tcp, Http]);
    assert_eq!(plan("sqlserver://a.b"), vec![Dns, Tcp, Tds]);
}
