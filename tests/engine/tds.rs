//! TDS layer against the TDS test server (tests/support/tds, validated separately with
//! python-tds and FreeTDS): prelogin-only evidence, SQL and managed-identity logins,
//! 18456 as a reached route, routing redirects followed and blocked, fault modes, and a
//! planted password that must appear nowhere. Loopback only.

use crate::support;

use routeproof::report::{FailureClass, Layer, Report};
use support::certs::{self, Ca, LeafSpec, PemFiles};
use support::dns::{DnsServer, Zone};
use support::engine::{class, env_of, tcp_ev, tds_ev as ev};
use support::tds::{Encryption, Fault, TdsConfig, TdsServer};

use super::tds_login::{fedauth_pair, identity_env, through_gateway};

pub(crate) const NAME: &str = "loopsql.database.windows.net";
pub(crate) const PASSWORD: &str = "Pa55-PLANTED-tds-0413";

pub(crate) struct Fx {
    dns: DnsServer,
    pub(crate) ca: Ca,
    pem: PemFiles,
    leaf: certs::Material,
}

pub(crate) async fn fx() -> Fx {
    certs::install_crypto_provider();
    let ca = Ca::new("routeproof TDS test CA");
    let leaf = ca.issue(&LeafSpec::new([
        NAME,
        "*.database.windows.net",
        "localhost",
    ]));
    let pem = PemFiles::write(&ca, &leaf);
    Fx {
        dns: DnsServer::start(Zone::privatelink_fixture().a(
            "node1.worker.database.windows.net",
            "127.0.0.1",
            60,
        ))
        .await,
        ca,
        pem,
        leaf,
    }
}

pub(crate) fn server_cfg(f: &Fx) -> TdsConfig {
    TdsConfig::default()
        .encrypted(Encryption::Required, f.leaf.clone())
        .user("app", PASSWORD)
}

pub(crate) async fn run(f: &Fx, target: &str, extra: &str, env: &[(&str, &str)]) -> Report {
    let text = format!(
        "[engine]\ndns_servers = [\"{}\"]\nca_file = \"{}\"\n[engine.timeouts]\ndns = \"1s\"\ntcp = \"1s\"\ntls = \"1s\"\nlogin = \"700ms\"\nquery = \"700ms\"\n[[targets]]\nname = \"sql\"\ntarget = \"{target}\"\n{extra}\n",
        f.dns.addr,
        f.pem.ca.display()
    );
    support::engine::run(&text, &env_of(env), None).await
}

pub(crate) fn uri(srv: &TdsServer) -> String {
    format!("sqlserver://{NAME}:{}/orders", srv.port())
}

#[tokio::test]
async fn without_credentials_prelogin_and_tls_prove_the_route() {
    let f = fx().await;
    let srv = TdsServer::start(server_cfg(&f)).await;
    let r = run(&f, &uri(&srv), "", &[]).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Tds));
    assert_eq!(
        t.layers.iter().map(|l| l.layer).collect::<Vec<_>>(),
        [Layer::Dns, Layer::Tcp, Layer::Tds]
    );
    let e = ev(t);
    assert_eq!(e.server_version.as_deref(), Some("16.0.1000"));
    assert_eq!(e.encryption_server.as_deref(), Some("required"));
    assert_eq!(e.encryption_client.as_deref(), Some("on"));
    let tls = e
        .tls
        .as_ref()
        .expect("TLS evidence from the handshake inside PRELOGIN");
    assert_eq!(tls.chain[0].subject, format!("CN={NAME}"));
    assert!(tls.verified);
    assert!(e.prelogin_ms.is_some() && e.tls_ms.is_some());
    assert!(
        e.login_ms.is_none() && !e.logged_in,
        "no credentials, no login"
    );
    assert_eq!(srv.stats().logins_attempted, 0);
    assert_eq!(srv.stats().tls_handshakes, 1);
}

#[tokio::test]
async fn sql_login_and_query() {
    let f = fx().await;
    let srv = TdsServer::start(server_cfg(&f)).await;
    let r = run(
        &f,
        &uri(&srv),
        "user = \"app\"\npassword = \"env:SQL_PASSWORD\"",
        &[("SQL_PASSWORD", PASSWORD)],
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let e = ev(t);
    assert!(e.logged_in);
    assert_eq!(e.login_method.as_deref(), Some("sql"));
    assert_eq!(e.login_user.as_deref(), Some("app"));
    assert_eq!(e.database.as_deref(), Some("orders"));
    assert_eq!(
        e.result.as_deref(),
        Some("1 row(s), first value 1"),
        "{e:#?}"
    );
    assert!(e.login_ms.is_some() && e.query_ms.is_some());
    // The login ran on the connection the TCP layer proved: its addresses, and the
    // server saw one connection for PRELOGIN, TLS, LOGIN7 and the query.
    let conn = e.login_connection.as_ref().unwrap();
    let tcp = tcp_ev(t);
    assert_eq!((conn.peer, conn.local), (tcp.peer, tcp.local), "{e:#?}");
    assert_eq!(conn.peer.map(|p| p.port()), Some(srv.port()));
    assert!(conn.local.is_some());
    let s = srv.stats();
    assert_eq!(s.connections, 1, "one connection for the whole probe");
    assert_eq!((s.prelogins, s.tls_handshakes), (1, 1));
    assert_eq!(s.last_app.as_deref(), Some("routeproof"));
    assert_eq!(s.last_client_tds_version, Some(0x7400_0004));
    assert_eq!(
        s.last_login_transport,
        Some(support::tds::LoginTransport::Tls)
    );
    assert_eq!(s.logins_succeeded, 1);
    assert_eq!(s.last_database.as_deref(), Some("orders"));
    assert_eq!(s.last_sql.as_deref(), Some("SELECT 1"));
    // The password reached the server and nothing else.
    let json = serde_json::to_string(&r).unwrap();
    let text = routeproof::render::text::render(&r);
    assert!(!json.contains(PASSWORD) && !text.contains(PASSWORD));
}

#[tokio::test]
async fn wrong_password_is_18456_a_reached_route() {
    let f = fx().await;
    let srv = TdsServer::start(server_cfg(&f)).await;
    let r = run(
        &f,
        &uri(&srv),
        "user = \"app\"\npassword = \"wrong-PLANTED\"",
        &[],
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TdsLoginFailed), "{t:#?}");
    assert_eq!(t.reached, Some(Layer::Tds), "the server answered the login");
    let e = ev(t);
    assert_eq!(e.sql_error.as_ref().map(|s| s.number), Some(18456));
    let hint = &t.failure.as_ref().unwrap().hint;
    assert!(hint.contains("route to SQL Server works"), "{hint}");
    assert!(!serde_json::to_string(&r).unwrap().contains("wrong-PLANTED"));
}

#[tokio::test]
async fn azure_login_errors_carry_their_fix() {
    let f = fx().await;
    for (number, needle) in [
        (40615, "firewall"),
        (47073, "private endpoint"),
        (40914, "virtual network rule"),
    ] {
        let mut cfg = server_cfg(&f);
        cfg.login_error = Some((number, 1, format!("simulated error {number}")));
        let srv = TdsServer::start(cfg).await;
        let r = run(&f, &uri(&srv), "user = \"app\"\npassword = \"x\"", &[]).await;
        let t = &r.targets[0];
        assert_eq!(
            class(t),
            Some(FailureClass::TdsLoginFailed),
            "{number}: {t:#?}"
        );
        assert_eq!(ev(t).sql_error.as_ref().unwrap().number, number);
        let hint = &t.failure.as_ref().unwrap().hint;
        assert!(hint.contains(needle), "{number}: {hint}");
    }
}

#[tokio::test]
async fn managed_identity_login_uses_the_app_service_identity_endpoint() {
    const TOKEN: &str = "eyJ-token-PLANTED";
    let f = fx().await;
    // The user-assigned client id is the connection string's, below.
    let (srv, idp) = fedauth_pair(&f, TOKEN, &["11111111-2222"]).await;
    let env = identity_env(&idp);
    let r = run(
        &f,
        &uri(&srv),
        "authentication = \"managed_identity\"",
        &env,
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let e = ev(t);
    assert_eq!(
        e.login_method.as_deref(),
        Some("managed_identity (system-assigned)")
    );
    assert_eq!(e.fedauth_required, Some(true));
    assert!(e.token_ms.is_some());
    let id = e.identity.as_ref().expect("identity evidence");
    assert_eq!(id.resource, "https://database.windows.net/");
    assert_eq!(id.identity, "system-assigned");
    assert!(id.ok);
    assert_eq!(srv.stats().fedauth_logins, 1);
    assert_eq!(srv.stats().connections, 1);
    let json = serde_json::to_string(&r).unwrap();
    assert!(
        !json.contains(TOKEN) && !json.contains("idh-PLANTED"),
        "{json}"
    );

    // The same through an App Service connection string with a user-assigned identity.
    let conn = format!(
        "Server=tcp:{NAME},{};Authentication=Active Directory Managed Identity;User ID=11111111-2222",
        srv.port()
    );
    let env2 = [env[0], env[1], ("SQLAZURECONNSTR_orders", conn.as_str())];
    let r = run(&f, "env:SQLAZURECONNSTR_orders", "", &env2).await;
    assert!(r.targets[0].ok, "{:#?}", r.targets[0]);
    assert_eq!(
        ev(&r.targets[0]).login_method.as_deref(),
        Some("managed_identity (user-assigned 11111111-2222)")
    );

    // Without the identity endpoint the login cannot start, and says why: the shared
    // identity class (src/platform/identity.rs), after PRELOGIN and TLS proved the route.
    let r = run(&f, &uri(&srv), "authentication = \"managed_identity\"", &[]).await;
    let t = &r.targets[0];
    assert_eq!(
        class(t),
        Some(FailureClass::IdentityNotConfigured),
        "{t:#?}"
    );
    assert_eq!(t.reached, Some(Layer::Tds));
    let fl = t.failure.as_ref().unwrap();
    assert!(fl.message.contains("IDENTITY_ENDPOINT"), "{fl:?}");
    assert!(fl.hint.contains("Identity page"), "{}", fl.hint);
}

#[tokio::test]
async fn redirect_is_followed_through_dns_and_tcp() {
    let f = fx().await;
    let node = TdsServer::start(server_cfg(&f)).await;
    let (r, gateway) = through_gateway(&f, &node).await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let e = ev(t);
    let red = e.redirect.as_ref().expect("redirect evidence");
    assert_eq!(
        red.target,
        format!("node1.worker.database.windows.net:{}", node.port())
    );
    assert_eq!(
        red.layers
            .iter()
            .map(|l| (l.layer, l.ok))
            .collect::<Vec<_>>(),
        [(Layer::Dns, true), (Layer::Tcp, true)]
    );
    assert_eq!(gateway.stats().routed, 1);
    assert_eq!(node.stats().logins_succeeded, 1);
    // One connection per hop, each with its own PRELOGIN, TLS and LOGIN7.
    for (srv, name) in [(&gateway, "gateway"), (&node, "node")] {
        let s = srv.stats();
        assert_eq!(
            (
                s.connections,
                s.prelogins,
                s.tls_handshakes,
                s.logins_attempted
            ),
            (1, 1, 1, 1),
            "{name}"
        );
    }
    assert_eq!(node.stats().last_sql.as_deref(), Some("SELECT 1"));
    assert_eq!(gateway.stats().batches, 0);
    // login_connection is the hop's connection, the one its TCP layer opened.
    let hop_tcp = match &red.layers[1].evidence {
        routeproof::report::Evidence::Tcp(tcp) => tcp,
        other => panic!("{other:?}"),
    };
    let conn = e.login_connection.as_ref().unwrap();
    assert_eq!((conn.peer, conn.local), (hop_tcp.peer, hop_tcp.local));
    assert_eq!(conn.peer.map(|p| p.port()), Some(node.port()));
    // The report's TLS evidence stays the first connection's (the proven route); the
    // hop's own PRELOGIN and handshake go with the redirect.
    assert_eq!(
        e.tls.as_ref().unwrap().chain[0].subject,
        format!("CN={NAME}")
    );
    let hop = red.handshake.as_ref().expect("the hop's handshake");
    assert_eq!(hop.encryption, e.encryption);
    assert!(
        hop.server_version.is_some() && hop.prelogin_ms.is_some(),
        "{hop:?}"
    );
    let hop_tls = hop.tls.as_ref().expect("the hop's TLS evidence");
    assert_eq!(hop_tls.chain[0].subject, format!("CN={NAME}"));
    assert!(hop_tls.version.is_some(), "{hop_tls:?}");
}

#[tokio::test]
async fn blocked_redirect_is_tds_redirect_with_the_port_range_hint() {
    let f = fx().await;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut gw = server_cfg(&f);
    gw.route_to = Some(("node1.worker.database.windows.net".into(), dead.port()));
    let gateway = TdsServer::start(gw).await;
    let r = run(
        &f,
        &uri(&gateway),
        "user = \"app\"\npassword = \"env:P\"",
        &[("P", PASSWORD)],
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TdsRedirect), "{t:#?}");
    let f = t.failure.as_ref().unwrap();
    assert!(f.message.contains("tcp.refused"), "{}", f.message);
    assert!(f.hint.contains("11000-11999"), "{}", f.hint);
    assert!(!ev(t).redirect.as_ref().unwrap().layers[1].ok);
}

#[tokio::test]
async fn fault_modes_are_classified() {
    let f = fx().await;
    let cases = [
        (
            Fault::CloseDuringPrelogin,
            FailureClass::TdsPrelogin,
            "",
            Some(Layer::Tcp),
        ),
        (
            Fault::GarbageReply,
            FailureClass::TdsPrelogin,
            "",
            Some(Layer::Tcp),
        ),
        (
            Fault::StallDuringPrelogin,
            FailureClass::TdsTimeout,
            "prelogin",
            Some(Layer::Tcp),
        ),
        (
            Fault::CloseDuringTlsHandshake,
            FailureClass::TlsHandshake,
            "",
            Some(Layer::Tcp),
        ),
        (
            Fault::StallDuringLogin,
            FailureClass::TdsTimeout,
            "login",
            Some(Layer::Tcp),
        ),
        (
            Fault::StallDuringQuery,
            FailureClass::TdsTimeout,
            "query",
            Some(Layer::Tcp),
        ),
    ];
    for (fault, want, phase, reached) in cases {
        let mut cfg = server_cfg(&f);
        cfg.fault = Some(fault);
        let srv = TdsServer::start(cfg).await;
        let r = run(
            &f,
            &uri(&srv),
            "user = \"app\"\npassword = \"env:P\"",
            &[("P", PASSWORD)],
        )
        .await;
        let t = &r.targets[0];
        assert_eq!(class(t), Some(want), "{fault:?}: {t:#?}");
        assert!(
            t.failure.as_ref().unwrap().message.contains(phase),
            "{fault:?}: {}",
            t.failure.as_ref().unwrap().message
        );
        assert_eq!(t.reached, reached, "{fault:?}");
    }
}

#[tokio::test]
async fn encryption_and_certificate_failures() {
    let f = fx().await;
    let plain = TdsServer::start(TdsConfig::default().user("app", PASSWORD)).await;
    let r = run(&f, &uri(&plain), "", &[]).await;
    assert_eq!(
        class(&r.targets[0]),
        Some(FailureClass::TdsEncryption),
        "{:#?}",
        r.targets[0]
    );

    let wrong =
        f.ca.issue(&LeafSpec::new(["someone-else.database.example"]));
    let srv = TdsServer::start(TdsConfig::default().encrypted(Encryption::Required, wrong)).await;
    let r = run(&f, &uri(&srv), "", &[]).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TlsNameMismatch), "{t:#?}");
    assert!(t.failure.as_ref().unwrap().hint.contains("public FQDN"));
    // The certificate that failed is in the layer's evidence, not only in the message.
    let tls = ev(t).tls.as_ref().expect("the failed handshake's evidence");
    assert_eq!(tls.chain[0].sans, ["DNS:someone-else.database.example"]);
}

#[tokio::test]
async fn tds8_strict_mode() {
    let f = fx().await;
    let mut cfg = server_cfg(&f);
    cfg.strict = true;
    let srv = TdsServer::start(cfg).await;
    let r = run(
        &f,
        &uri(&srv),
        "strict = true\nuser = \"app\"\npassword = \"env:P\"",
        &[("P", PASSWORD)],
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let e = ev(t);
    assert!(e.strict);
    assert_eq!(e.tls.as_ref().unwrap().alpn.as_deref(), Some("tds/8.0"));
    assert!(e.logged_in);
    assert_eq!(e.result.as_deref(), Some("1 row(s), first value 1"));
    let s = srv.stats();
    assert_eq!(
        (s.connections, s.tls_handshakes, s.logins_succeeded),
        (1, 1, 1)
    );
    assert_eq!(
        s.last_login_transport,
        Some(support::tds::LoginTransport::Strict)
    );
}

#[tokio::test]
async fn query_error_is_tds_query() {
    let f = fx().await;
    let mut cfg = server_cfg(&f);
    cfg.query_error = Some((208, "Invalid object name 'nope'.".into()));
    let srv = TdsServer::start(cfg).await;
    let r = run(
        &f,
        &uri(&srv),
        "user = \"app\"\npassword = \"env:P\"\nquery = \"SELECT * FROM nope\"",
        &[("P", PASSWORD)],
    )
    .await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TdsQuery), "{t:#?}");
    assert_eq!(ev(t).sql_error.as_ref().unwrap().number, 208);
    assert!(ev(t).logged_in);
}
