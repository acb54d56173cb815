//! The independent clients (python-tds, FreeTDS `tsql`, pymssql, tedious) against the
//! TDS test server in every encryption mode.

use super::*;

// ------------------------------------------------------------------ python-tds

#[tokio::test]
async fn pytds_reads_select_1_without_encryption() {
    let server = TdsServer::start(config()).await;
    let Some(o) = present(
        "pytds_plain",
        clients::pytds(&Connect::new(server.port(), USER, PASSWORD)).await,
    ) else {
        return;
    };
    assert_select_1(&o);
    let s = server.stats();
    assert_eq!(s.last_login_transport, Some(LoginTransport::Plain));
    assert_eq!(
        (s.last_user.as_deref(), s.logins_succeeded),
        (Some(USER), 1)
    );
}

#[tokio::test]
async fn pytds_reads_select_1_over_tls_in_prelogin_packets() {
    let tls = tls();
    for setting in [Encryption::Required, Encryption::On, Encryption::Off] {
        let server = server(setting, &tls).await;
        let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
        let Some(o) = present("pytds_tls", clients::pytds(&c).await) else {
            return;
        };
        assert_select_1(&o);
        let s = server.stats();
        assert_eq!(
            s.last_login_transport,
            Some(LoginTransport::Tls),
            "{setting:?}"
        );
        let seen = s.last_tls.unwrap();
        assert_eq!(
            (seen.version.as_str(), seen.sni.as_deref()),
            ("TLSv1_2", Some("sql.routeproof.test"))
        );
    }
}

#[tokio::test]
async fn pytds_encrypts_only_the_login_when_both_sides_say_off() {
    let tls = tls();
    let server = server(Encryption::Off, &tls).await;
    let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::LoginOnly, &tls.pem.ca);
    let Some(o) = present("pytds_login_only", clients::pytds(&c).await) else {
        return;
    };
    assert_select_1(&o);
    let s = server.stats();
    assert_eq!(s.last_client_encryption, Some(enc::OFF));
    assert_eq!(s.last_login_transport, Some(LoginTransport::LoginOnlyTls));
}

#[tokio::test]
async fn pytds_sees_18456_for_a_wrong_password() {
    let server = TdsServer::start(config()).await;
    let Some(o) = present(
        "pytds_18456",
        clients::pytds(&Connect::new(server.port(), USER, "wrong")).await,
    ) else {
        return;
    };
    assert_refused(&o, 18456);
    assert_eq!(
        (
            server.stats().logins_attempted,
            server.stats().logins_succeeded
        ),
        (1, 0)
    );
}

#[tokio::test]
async fn pytds_follows_a_routing_envchange() {
    let target = TdsServer::start(config()).await;
    let gateway = TdsServer::start(TdsConfig {
        route_to: Some(("127.0.0.1".into(), target.port())),
        ..config()
    })
    .await;
    let Some(o) = present(
        "pytds_routing",
        clients::pytds(&Connect::new(gateway.port(), USER, PASSWORD)).await,
    ) else {
        return;
    };
    assert_select_1(&o);
    assert_eq!(gateway.stats().routed, 1);
    assert_eq!(target.stats().logins_succeeded, 1);
}

#[tokio::test]
async fn pytds_logs_in_with_a_fedauth_access_token() {
    let tls = tls();
    let server = TdsServer::start(TdsConfig {
        fedauth_token: Some(TOKEN.into()),
        ..config().encrypted(Encryption::Required, tls.leaf.clone())
    })
    .await;
    let mut c = Connect::new(server.port(), "", "").tls(ClientTls::Required, &tls.pem.ca);
    c.token = Some(TOKEN.into());
    let Some(o) = present("pytds_fedauth", clients::pytds(&c).await) else {
        return;
    };
    assert_select_1(&o);
    assert_eq!(server.stats().fedauth_logins, 1);
    c.token = Some("not-the-token".into());
    assert_refused(&clients::pytds(&c).await.unwrap(), 18456);
}

#[tokio::test]
async fn pytds_gets_the_configured_query_error() {
    let server = TdsServer::start(TdsConfig {
        query_error: Some((208, "Invalid object name 'nope'.".into())),
        ..config()
    })
    .await;
    let Some(o) = present(
        "pytds_query_error",
        clients::pytds(&Connect::new(server.port(), USER, PASSWORD)).await,
    ) else {
        return;
    };
    assert_refused(&o, 208);
    assert_eq!(server.stats().logins_succeeded, 1);
}

// ------------------------------------------------------------------ FreeTDS tsql

#[tokio::test]
async fn tsql_reads_select_1_without_encryption() {
    let server = TdsServer::start(config()).await;
    let Some(o) = present(
        "tsql_plain",
        clients::tsql_login(&Connect::new(server.port(), USER, PASSWORD)).await,
    ) else {
        return;
    };
    assert_select_1(&o);
    let s = server.stats();
    assert_eq!(s.last_login_transport, Some(LoginTransport::Plain));
    assert_eq!(s.last_client_encryption, Some(enc::NOT_SUP));
}

#[tokio::test]
async fn tsql_reads_select_1_over_tls_in_prelogin_packets() {
    let tls = tls();
    for setting in [Encryption::Required, Encryption::On, Encryption::Off] {
        let server = server(setting, &tls).await;
        let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
        let Some(o) = present("tsql_tls", clients::tsql_login(&c).await) else {
            return;
        };
        assert_select_1(&o);
        assert_eq!(
            server.stats().last_login_transport,
            Some(LoginTransport::Tls),
            "{setting:?}"
        );
    }
}

#[tokio::test]
async fn tsql_encrypts_only_the_login_when_both_sides_say_off() {
    let tls = tls();
    let server = server(Encryption::Off, &tls).await;
    let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::LoginOnly, &tls.pem.ca);
    let Some(o) = present("tsql_login_only", clients::tsql_login(&c).await) else {
        return;
    };
    assert_select_1(&o);
    let s = server.stats();
    assert_eq!(s.last_client_encryption, Some(enc::OFF));
    assert_eq!(s.last_login_transport, Some(LoginTransport::LoginOnlyTls));
}

#[tokio::test]
async fn tsql_sees_18456_for_a_wrong_password() {
    let tls = tls();
    let server = server(Encryption::Required, &tls).await;
    let c = Connect::new(server.port(), USER, "wrong").tls(ClientTls::Required, &tls.pem.ca);
    let Some(o) = present("tsql_18456", clients::tsql_login(&c).await) else {
        return;
    };
    assert_refused(&o, 18456);

    // python-tds retries any other login error until its login timeout and then
    // reports a TimeoutError, so Azure's gateway errors are checked with FreeTDS.
    let firewall = TdsServer::start(TdsConfig {
        login_error: Some((40615, 1, "Cannot open server 'x' requested by the login. Client with IP address '10.1.2.3' is not allowed to access the server.".into())),
        ..config()
    })
    .await;
    let o = clients::tsql_login(&Connect::new(firewall.port(), USER, PASSWORD))
        .await
        .unwrap();
    assert_refused(&o, 40615);
}

#[tokio::test]
async fn tsql_refuses_a_certificate_it_cannot_trust() {
    let tls = tls();
    let rogue = certs::self_signed(&LeafSpec::new(["sql.routeproof.test", "127.0.0.1"]));
    let server = TdsServer::start(config().encrypted(Encryption::Required, rogue)).await;
    let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
    let Some(o) = present("tsql_untrusted", clients::tsql_login(&c).await) else {
        return;
    };
    assert!(!o.ok, "{}", o.output);
    assert_eq!(
        server.stats().logins_attempted,
        0,
        "no LOGIN7 may follow a failed handshake"
    );
}

/// Plain TDS: FreeTDS 1.3 reuses the gateway's TLS session on the rerouted socket
/// (fixed in FreeTDS 1.5, see the pymssql test), so routing over TLS cannot pass.
#[tokio::test]
async fn tsql_follows_a_routing_envchange() {
    let target = TdsServer::start(config()).await;
    let gateway = TdsServer::start(TdsConfig {
        route_to: Some(("127.0.0.1".into(), target.port())),
        ..config()
    })
    .await;
    let c = Connect::new(gateway.port(), USER, PASSWORD);
    let Some(o) = present("tsql_routing", clients::tsql_login(&c).await) else {
        return;
    };
    assert_select_1(&o);
    assert_eq!(gateway.stats().routed, 1);
    assert_eq!(target.stats().logins_succeeded, 1);
}

// ------------------------------------------------------------------ faults

const FAULTS: [Fault; 7] = [
    Fault::StallDuringPrelogin,
    Fault::CloseDuringPrelogin,
    Fault::GarbageReply,
    Fault::CloseDuringTlsHandshake,
    Fault::StallDuringLogin,
    Fault::CloseAfterLogin,
    Fault::StallDuringQuery,
];

/// Each fault makes the client fail (by its own timeout for the stalls), never
/// hang; the server's counters show where the conversation stopped.
async fn faults_fail_the_client(test: &str, run: fn(Connect) -> clients::Pending) {
    let tls = tls();
    let mut runs = tokio::task::JoinSet::new();
    for fault in FAULTS {
        let cfg = TdsConfig {
            fault: Some(fault),
            ..config().encrypted(Encryption::Required, tls.leaf.clone())
        };
        let server = TdsServer::start(cfg).await;
        let mut c =
            Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
        // Long enough for a loaded 2-core machine to finish TLS before the stall faults
        // make the client give up (a stall must be reached, not raced).
        c.timeout_secs = 6;
        runs.spawn(async move { (fault, run(c).await, server.stats()) });
    }
    while let Some(done) = runs.join_next().await {
        let (fault, outcome, stats) = done.unwrap();
        let Some(o) = present(test, outcome) else {
            return;
        };
        assert!(!o.hung, "{fault:?}: client hung\n{}", o.output);
        assert!(!o.ok, "{fault:?}: client succeeded\n{}", o.output);
        let reached_login = stats.logins_attempted == 1;
        let logged_in = stats.logins_succeeded == 1;
        match fault {
            Fault::StallDuringLogin => assert!(
                reached_login && !logged_in,
                "{fault:?} {stats:?}\n{}",
                o.output
            ),
            Fault::CloseAfterLogin | Fault::StallDuringQuery => {
                assert!(logged_in, "{fault:?} {stats:?}")
            }
            _ => assert!(!reached_login, "{fault:?} {stats:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytds_fails_cleanly_on_every_fault() {
    faults_fail_the_client("pytds_faults", |c| {
        Box::pin(async move { clients::pytds(&c).await })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsql_fails_cleanly_on_every_fault() {
    faults_fail_the_client("tsql_faults", |c| {
        Box::pin(async move { clients::tsql_login(&c).await })
    })
    .await;
}

// ------------------------------------------------------------------ pymssql, tedious

#[tokio::test]
async fn pymssql_reads_select_1_over_tls_and_tds_8_strict() {
    let tls = tls();
    let server = server(Encryption::Required, &tls).await;
    let c = Connect::new(server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
    let Some(o) = present("pymssql_tls", clients::pymssql(&c).await) else {
        return;
    };
    assert_select_1(&o);
    let wrong = Connect {
        password: "wrong".into(),
        ..c.clone()
    };
    assert_refused(&clients::pymssql(&wrong).await.unwrap(), 18456);

    let strict = TdsServer::start(TdsConfig {
        strict: true,
        ..config().encrypted(Encryption::Off, tls.leaf.clone())
    })
    .await;
    let c = Connect::new(strict.port(), USER, PASSWORD).tls(ClientTls::Strict, &tls.pem.ca);
    assert_select_1(&clients::pymssql(&c).await.unwrap());
    let s = strict.stats();
    assert_eq!(s.last_login_transport, Some(LoginTransport::Strict));
    let seen = s.last_tls.unwrap();
    assert_eq!(
        (seen.version.as_str(), seen.alpn.as_deref()),
        ("TLSv1_3", Some("tds/8.0"))
    );
}

#[tokio::test]
async fn pymssql_follows_a_routing_envchange_over_tls() {
    let tls = tls();
    let target = server(Encryption::Required, &tls).await;
    let gateway = TdsServer::start(TdsConfig {
        route_to: Some(("127.0.0.1".into(), target.port())),
        ..config().encrypted(Encryption::Required, tls.leaf.clone())
    })
    .await;
    let c = Connect::new(gateway.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
    let Some(o) = present("pymssql_routing", clients::pymssql(&c).await) else {
        return;
    };
    assert_select_1(&o);
    assert_eq!(gateway.stats().routed, 1);
    assert_eq!(
        target.stats().last_login_transport,
        Some(LoginTransport::Tls)
    );
}

#[tokio::test]
async fn tedious_reads_select_1_in_every_mode_it_has() {
    let tls = tls();
    let plain = TdsServer::start(config()).await;
    let Some(o) = present(
        "tedious",
        clients::tedious_login(&Connect::new(plain.port(), USER, PASSWORD)).await,
    ) else {
        return;
    };
    assert_select_1(&o);
    // tedious sends SQL as sp_executesql, so this also covers RPC requests.
    assert_eq!(plain.stats().last_sql.as_deref(), Some("SELECT 1"));

    let tls_server = server(Encryption::Required, &tls).await;
    let c = Connect::new(tls_server.port(), USER, PASSWORD).tls(ClientTls::Required, &tls.pem.ca);
    assert_select_1(&clients::tedious_login(&c).await.unwrap());
    assert_eq!(
        tls_server.stats().last_login_transport,
        Some(LoginTransport::Tls)
    );

    let strict = TdsServer::start(TdsConfig {
        strict: true,
        ..config().encrypted(Encryption::Off, tls.leaf.clone())
    })
    .await;
    let c = Connect::new(strict.port(), USER, PASSWORD).tls(ClientTls::Strict, &tls.pem.ca);
    assert_select_1(&clients::tedious_login(&c).await.unwrap());
    assert_eq!(
        strict.stats().last_tls.unwrap().sni.as_deref(),
        Some("sql.routeproof.test")
    );

    let wrong = clients::tedious_login(&Connect::new(plain.port(), USER, "wrong"))
        .await
        .unwrap();
    assert!(
        !wrong.ok && wrong.message.contains("Login failed"),
        "{}",
        wrong.output
    );
}

#[tokio::test]
async fn tedious_logs_in_with_a_fedauth_access_token() {
    let tls = tls();
    let server = TdsServer::start(TdsConfig {
        fedauth_token: Some(TOKEN.into()),
        ..config().encrypted(Encryption::Required, tls.leaf.clone())
    })
    .await;
    let mut c = Connect::new(server.port(), "", "").tls(ClientTls::Required, &tls.pem.ca);
    c.token = Some(TOKEN.into());
    let Some(o) = present("tedious_fedauth", clients::tedious_login(&c).await) else {
        return;
    };
    assert_select_1(&o);
    assert_eq!(server.stats().fedauth_logins, 1);
}
