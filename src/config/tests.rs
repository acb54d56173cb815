use std::time::Duration;

use super::*;

fn env(k: &str) -> Option<String> {
    (k == "SqlConnectionString")
        .then(|| "Server=tcp:db.database.windows.net,1433;Password=x".to_string())
}

#[test]
fn full_config() {
    let c = parse(
        r#"
        [engine]
        dns_servers = ["127.0.0.53:5353", "10.0.0.4", "[::1]:53"]
        concurrency = 8
        deadline = "10s"
        tcp_settle = "0s"
        all_addresses = true
        [engine.timeouts]
        dns = "500ms"
        tcp = "1s"

        [[targets]]
        name = "sql"
        target = "tcp://loopsql.database.windows.net:1433"
        private = true
        addresses = ["127.0.0.1", "10.1.0.0/16"]
        max_ms = 250

        [[targets]]
        target = "env:SqlConnectionString"
        "#,
        &env,
    )
    .unwrap();
    assert_eq!(c.engine.dns_servers.len(), 3);
    assert_eq!(c.engine.dns_servers[1], "10.0.0.4:53".parse().unwrap());
    assert_eq!(c.engine.timeouts.dns, Duration::from_millis(500));
    assert_eq!(c.engine.concurrency, 8);
    assert!(c.engine.tcp_settle.is_zero());
    assert_eq!(c.targets[0].expect.addresses.len(), 2);
    assert_eq!(c.targets[0].expect.max_ms, Some(250));
    assert_eq!(
        c.targets[1].name,
        "sqlserver://db.database.windows.net:1433"
    );
}

#[test]
fn errors_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("[engine]\nbogus = 1", "line 2", "unknown field `bogus`"),
        (
            "[[targets]]\ntarget = \"tcp://a:1\"\nprivat = true",
            "line 3",
            "unknown field `privat`",
        ),
        (
            "[engine.timeouts]\ndns = \"fast\"",
            "engine.timeouts.dns",
            "not a duration",
        ),
        (
            "[engine.timeouts]\ntcp = \"0s\"",
            "engine.timeouts.tcp",
            "more than 0",
        ),
        (
            "[engine]\ndeadline = \"2h\"",
            "engine.deadline",
            "more than 1h",
        ),
        ("[engine]\nconcurrency = 0", "engine.concurrency", "outside"),
        (
            "[engine]\ndns_servers = [\"dns.google\"]",
            "engine.dns_servers[0]",
            "not IP or IP:PORT",
        ),
        ("[[targets]]\nname = \"x\"", "targets[0].target", "missing"),
        (
            "[[targets]]\ntarget = \"tcp://a\"",
            "targets[0].target",
            "needs a port",
        ),
        (
            "[[targets]]\ntarget = \"env:Nope\"",
            "targets[0].target",
            "`Nope` is not set",
        ),
        (
            "[[targets]]\ntarget = \"tcp://a:1\"\naddresses = [\"10.0.0.0/33\"]",
            "targets[0].addresses[0]",
            "not an IP address or CIDR",
        ),
        (
            "[[targets]]\ntarget = \"tcp://a:1\"\naddresses = []",
            "targets[0].addresses",
            "empty list",
        ),
        (
            "[[targets]]\ntarget = \"tcp://10.0.0.1:1\"\nprivate = true",
            "targets[0].private",
            "no DNS name",
        ),
        (
            "[[targets]]\ntarget = \"tcp://a:1\"\nmax_ms = -5",
            "targets[0].max_ms",
            "outside",
        ),
        (
            "[[targets]]\nname = \"a\"\ntarget = \"tcp://a:1\"\n[[targets]]\nname = \"a\"\ntarget = \"tcp://b:1\"",
            "targets[1].name",
            "duplicate target name `a`",
        ),
        ("[engine]\nconcurrency = \"many\"", "line 2", "invalid type"),
        (
            "[engine]\nca_file = \"/nonexistent.pem\"",
            "engine.ca_file",
            "cannot read",
        ),
        (
            "[[targets]]\ntarget = \"tcp://a:1\"\nsni = \"x\"",
            "targets[0].sni",
            "only for tls:// and https://",
        ),
        (
            "[[targets]]\ntarget = \"tls://a:1\"\nstatus = [200]",
            "targets[0].status",
            "only for http:// and https://",
        ),
        (
            "[[targets]]\ntarget = \"https://a/\"\nmethod = \"BREW\"",
            "targets[0].method",
            "`BREW` is not",
        ),
        (
            "[[targets]]\ntarget = \"https://a/\"\nstatus = [\"300-200\"]",
            "targets[0].status[0]",
            "backwards",
        ),
        (
            "[[targets]]\ntarget = \"https://a/\"\nstatus = [99]",
            "targets[0].status[0]",
            "not an HTTP status",
        ),
        (
            "[[targets]]\ntarget = \"https://a/\"\nbody_regex = \"(\"",
            "targets[0].body_regex",
            "unclosed",
        ),
        (
            "[[targets]]\ntarget = \"https://a/\"\nheaders = { \"x-key\" = \"env:Missing\" }",
            "targets[0].headers.x-key",
            "`Missing` is not set",
        ),
        (
            "[[targets]]\ntarget = \"https://a/\"\nheaders = { \"bad header\" = \"v\" }",
            "targets[0].headers.bad header",
            "not a valid header name",
        ),
        (
            "[[targets]]\ntarget = \"https://a/\"\nmax_body_bytes = -1",
            "targets[0].max_body_bytes",
            "outside",
        ),
        (
            "[[targets]]\ntarget = \"https://a/\"\ncert_days_left = 99999",
            "targets[0].cert_days_left",
            "outside",
        ),
        (
            "[[targets]]\ntarget = \"postgres://a\"\nauthentication = \"managed_identity\"",
            "targets[0].user",
            "Entra principal's name",
        ),
        (
            "[[targets]]\ntarget = \"postgres://a\"\nuser = \"u\"\npassword = \"p\"\nauthentication = \"managed_identity\"",
            "targets[0].password",
            "not a password",
        ),
        (
            "[[targets]]\ntarget = \"mysql://a\"\nuser = \"u\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"",
            "targets[0].client_id",
            "only with authentication",
        ),
        (
            "[[targets]]\ntarget = \"rediss://a\"\nauthentication = \"managed_identity\"\nclient_id = \"not a guid\"",
            "targets[0].client_id",
            "client id",
        ),
        (
            "[[targets]]\ntarget = \"https://a.blob.core.windows.net/\"\nauthentication = \"sharedkey\"",
            "targets[0].authentication",
            "not managed_identity or none",
        ),
        (
            "[[targets]]\ntarget = \"tcp://a:1\"\nauthentication = \"managed_identity\"",
            "targets[0].authentication",
            "https:// service and data-service",
        ),
        (
            "[[targets]]\ntarget = \"amqps://ns.servicebus.windows.net\"\nauthentication = \"managed_identity\"\nsas_key_name = \"k\"\nsas_key = \"v\"",
            "targets[0].sas_key",
            "one credential per target: authentication and sas_key",
        ),
        (
            "[[targets]]\ntarget = \"kafka://ns.servicebus.windows.net\"\nauthentication = \"managed_identity\"\npassword = \"p\"",
            "targets[0].password",
            "not a password",
        ),
    ];
    for (text, key, msg) in cases {
        let e = parse(text, &env).expect_err(text);
        assert_eq!(&e.key, key, "{text}: {e}");
        assert!(e.message.contains(msg), "{text}: got `{e}`, want `{msg}`");
        assert!(e.to_string().starts_with("config.invalid: "), "{e}");
    }
}

#[test]
fn dns_server_forms() {
    assert_eq!(
        parse_dns_server("1.2.3.4").unwrap(),
        "1.2.3.4:53".parse().unwrap()
    );
    assert_eq!(
        parse_dns_server("127.0.0.53:5353").unwrap(),
        "127.0.0.53:5353".parse().unwrap()
    );
    assert_eq!(
        parse_dns_server("::1").unwrap(),
        "[::1]:53".parse().unwrap()
    );
    assert!(parse_dns_server("[::1]:0").is_err());
    assert!(parse_dns_server("host:53").is_err());
}

#[test]
fn account_key_names_the_setting_never_the_key() {
    let env = |k: &str| (k == "Share").then(|| "AccountName=a;AccountKey=S2V5".to_string());
    let one = |extra: &str| {
        parse(
            &format!("[[targets]]\ntarget = \"https://a.file.core.windows.net/\"\n{extra}\n"),
            &env,
        )
    };
    let t = one("service = \"file\"\naccount_key = \"env:Share\"").unwrap();
    assert_eq!(t.targets[0].http.account_key.as_deref(), Some("Share"));
    assert!(!format!("{t:?}").contains("S2V5"), "the key is not copied");
    // An emulator over plain HTTP takes `service` too.
    let t = parse(
        "[[targets]]\ntarget = \"http://127.0.0.1:10000/devstoreaccount1\"\nservice = \"blob\"\nemulator = true\n",
        &env,
    )
    .unwrap();
    assert!(t.targets[0].http.emulator);
    for (extra, says) in [
        ("service = \"file\"\naccount_key = \"S2V5\"", "env:NAME"),
        (
            "service = \"file\"\naccount_key = \"env:Missing\"",
            "not set",
        ),
        (
            "service = \"file\"\naccount_key = \"env:a-b\"",
            "letters, digits",
        ),
        ("account_key = \"env:Share\"", "`service =`"),
        (
            "service = \"file\"\naccount_key = \"env:Share\"\nauthentication = \"managed_identity\"",
            "one authorised read",
        ),
    ] {
        let e = one(extra).unwrap_err();
        assert_eq!(e.key, "targets[0].account_key", "{extra}: {e}");
        assert!(e.message.contains(says), "{extra}: {e}");
        assert!(!e.to_string().contains("S2V5"), "{e}");
    }
}

#[test]
fn managed_identity_keys_for_services_and_data_services() {
    use crate::spec::ManagedIdentity;
    let env = |_: &str| None;
    let text = "[[targets]]\ntarget = \"https://kv1.vault.azure.net/\"\nauthentication = \"managed_identity\"\n\
                [[targets]]\ntarget = \"postgres://pg1.postgres.database.azure.com/app\"\nuser = \"orders-func\"\nauthentication = \"managed_identity\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\n\
                [[targets]]\ntarget = \"rediss://c1.redis.cache.windows.net:6380\"\nauthentication = \"Managed_Identity\"\n";
    let cfg = parse(text, &env).unwrap();
    assert_eq!(
        cfg.targets[0].http.identity,
        Some(ManagedIdentity::default())
    );
    assert_eq!(
        cfg.targets[1].db.identity,
        Some(ManagedIdentity {
            client_id: Some("11111111-2222-3333-4444-555555555555".into())
        })
    );
    assert_eq!(cfg.targets[1].db.user.as_deref(), Some("orders-func"));
    // Redis without `user`: the token's `oid` claim names the ACL user.
    assert_eq!(cfg.targets[2].db.identity, Some(ManagedIdentity::default()));
    assert_eq!(cfg.targets[2].db.user, None);
}

#[test]
fn messaging_keys() {
    use crate::spec::{DbTls, MsgAuth};
    let cs = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=PLANTEDkey";
    let env = move |k: &str| match k {
        "SB" => Some(cs.to_string()),
        "PW" => Some("PLANTEDpw".to_string()),
        "NotCs" => Some("Server=tcp:x;Password=PLANTEDx".to_string()),
        _ => None,
    };
    let c = parse(
        r#"
        [[targets]]
        target = "amqps://ns.servicebus.windows.net"
        sas_key_name = "RootManageSharedAccessKey"
        sas_key = "env:PW"
        tls = "require"

        [[targets]]
        name = "from-setting"
        target = "env:SB"

        [[targets]]
        target = "kafka://ns.servicebus.windows.net"
        connection_string = "env:SB"

        [[targets]]
        target = "amqp://127.0.0.1:5672"
        user = "guest"
        password = "env:PW"

        [[targets]]
        target = "kafka://127.0.0.1:9092"
        tls = "disable"

        [[targets]]
        target = "amqpwss://ns.servicebus.windows.net"
        authentication = "managed_identity"

        [[targets]]
        target = "kafka://eh.servicebus.windows.net"
        authentication = "managed_identity"
        client_id = "11111111-2222-3333-4444-555555555555"
        "#,
        &env,
    )
    .unwrap();
    let t = &c.targets;
    assert!(matches!(&t[0].msg.auth, MsgAuth::SasKey { key_name, key }
        if key_name == "RootManageSharedAccessKey" && key.expose() == "PLANTEDpw"));
    assert_eq!(t[0].db.tls, DbTls::Require);
    assert!(matches!(&t[1].msg.auth, MsgAuth::ConnectionString(s) if s.expose() == cs));
    assert!(matches!(&t[2].msg.auth, MsgAuth::ConnectionString(s) if s.expose() == cs));
    assert!(matches!(&t[3].msg.auth, MsgAuth::Plain { user, .. } if user == "guest"));
    assert_eq!(t[3].db.password, None, "the login holds the password, once");
    assert_eq!(t[4].msg.auth, MsgAuth::None);
    assert_eq!(t[4].db.tls, DbTls::Disable);
    use crate::spec::ManagedIdentity;
    assert_eq!(
        t[5].msg.auth,
        MsgAuth::ManagedIdentity(ManagedIdentity::default())
    );
    assert_eq!(t[5].db.identity, None, "the login holds the identity, once");
    assert_eq!(
        t[6].msg.auth,
        MsgAuth::ManagedIdentity(ManagedIdentity {
            client_id: Some("11111111-2222-3333-4444-555555555555".into())
        })
    );
    assert!(!format!("{c:?}").contains("PLANTED"));
    let scram = parse(
        "[[targets]]\ntarget = \"kafka://127.0.0.1:9092\"\nuser = \"alice\"\npassword = \"env:PW\"\nsasl_mechanism = \"SCRAM-SHA-512\"\n",
        &env,
    )
    .unwrap();
    assert!(
        matches!(&scram.targets[0].msg.auth, MsgAuth::Scram { mechanism: crate::spec::ScramHash::Sha512, user, password }
        if user == "alice" && password.expose() == "PLANTEDpw")
    );

    let cases = [
        (
            "target = \"kafka://a.b\"\nsas_key_name = \"k\"\nsas_key = \"x\"",
            "targets[0].sas_key",
            "only for amqp",
        ),
        (
            "target = \"amqps://a.b\"\nsas_key_name = \"k\"",
            "targets[0].sas_key",
            "needs `sas_key`",
        ),
        (
            "target = \"amqps://a.b\"\nuser = \"u\"",
            "targets[0].password",
            "needs a password",
        ),
        (
            "target = \"env:SB\"\nuser = \"u\"\npassword = \"env:PW\"",
            "targets[0].password",
            "one credential per target",
        ),
        (
            "target = \"amqps://a.b\"\nconnection_string = \"env:NotCs\"",
            "targets[0].connection_string",
            "not a Service Bus",
        ),
        (
            "target = \"amqps://a.b\"\nconnection_string = \"env:Missing\"",
            "targets[0].connection_string",
            "not set",
        ),
        (
            "target = \"tls://a.b\"\nconnection_string = \"env:SB\"",
            "targets[0].connection_string",
            "only for amqp",
        ),
        (
            "target = \"amqp://a.b\"\nca_file = \"/x\"",
            "targets[0].ca_file",
            "only for",
        ),
        (
            "target = \"amqps://a.b\"\nuser = \"u\"\npassword = \"p\"\nsasl_mechanism = \"scram-sha-256\"",
            "targets[0].sasl_mechanism",
            "only for kafka",
        ),
        (
            "target = \"kafka://a.b\"\nsasl_mechanism = \"scram-sha-512\"",
            "targets[0].sasl_mechanism",
            "needs `user` and `password`",
        ),
        (
            "target = \"kafka://a.b\"\nuser = \"u\"\npassword = \"p\"\nsasl_mechanism = \"gssapi\"",
            "targets[0].sasl_mechanism",
            "not plain, scram-sha-256 or scram-sha-512",
        ),
        (
            "target = \"tcp://a.b:1\"\nsasl_mechanism = \"plain\"",
            "targets[0].sasl_mechanism",
            "only for amqp",
        ),
    ];
    for (body, key, msg) in cases {
        let text = format!("[[targets]]\n{body}\n");
        let e = parse(&text, &env).expect_err(&text);
        assert_eq!(&e.key, key, "{text}: {e}");
        assert!(e.message.contains(msg), "{text}: got `{e}`, want `{msg}`");
        assert!(!e.to_string().contains("PLANTED"), "{e}");
    }
}
