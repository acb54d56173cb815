//! The TDS login on the one proven connection, beyond tests/engine/tds.rs (and the
//! managed-identity and redirect fixtures both files use): a LOGIN7
//! longer than a packet (a long managed-identity token) with a text result, and a TLS
//! failure at a redirect hop, which runs its own PRELOGIN and handshake. Loopback only.

use crate::support;

use routeproof::report::FailureClass;
use support::certs::LeafSpec;
use support::engine::{class, tds_ev as ev};
use support::tds::{Encryption, TdsConfig, TdsServer};

use routeproof::report::Report;

use super::tds::{Fx, PASSWORD, fx, run, server_cfg, uri};

#[tokio::test]
async fn text_result_and_a_token_longer_than_a_packet() {
    // A token of 3,000 characters is 6,000 bytes of UTF-16 in LOGIN7: the request
    // spans two 4,096-byte packets, inside TLS, on the one connection.
    let token = format!("eyJ-{}-PLANTED", "x".repeat(3000));
    let f = fx().await;
    let (srv, idp) = fedauth_pair(&f, &token, &[]).await;
    let env = identity_env(&idp);
    let r = run(
        &f,
        &uri(&srv),
        "authentication = \"managed_identity\"\nquery = \"SELECT @@VERSION\"",
        &env,
    )
    .await;
    let t = &r.targets[0];
    assert!(t.ok, "{t:#?}");
    let e = ev(t);
    let result = e.result.as_deref().unwrap();
    assert!(
        result.starts_with("1 row(s), first value Microsoft SQL Server"),
        "{result}"
    );
    let s = srv.stats();
    assert_eq!((s.connections, s.fedauth_logins), (1, 1));
    assert_eq!(s.last_sql.as_deref(), Some("SELECT @@VERSION"));
    assert!(!serde_json::to_string(&r).unwrap().contains(&token));
}

#[tokio::test]
async fn tls_failure_at_the_redirect_target_keeps_its_class() {
    let f = fx().await;
    let wrong =
        f.ca.issue(&LeafSpec::new(["someone-else.database.example"]));
    let node = TdsServer::start(TdsConfig::default().encrypted(Encryption::Required, wrong)).await;
    let (r, gateway) = through_gateway(&f, &node).await;
    let t = &r.targets[0];
    assert_eq!(class(t), Some(FailureClass::TlsNameMismatch), "{t:#?}");
    let msg = &t.failure.as_ref().unwrap().message;
    assert!(
        msg.contains(&format!(
            "at the redirect target node1.worker.database.windows.net:{}",
            node.port()
        )),
        "{msg}"
    );
    assert_eq!(node.stats().logins_attempted, 0);
    assert_eq!(gateway.stats().connections, 1);
    // The certificate the hop presented is evidence in the report: in the redirect's own
    // handshake, while the layer's TLS fields stay the gateway's (the proven route).
    let e = ev(t);
    let hop = e
        .redirect
        .as_ref()
        .unwrap()
        .handshake
        .as_ref()
        .expect("hop handshake");
    let chain = &hop.tls.as_ref().expect("the hop's TLS evidence").chain;
    assert_eq!(chain[0].sans, ["DNS:someone-else.database.example"]);
    assert!(hop.prelogin_ms.is_some() && hop.tls_ms.is_some(), "{hop:?}");
    assert_ne!(e.tls.as_ref().unwrap().chain[0].sans, chain[0].sans);
    let text = routeproof::render::text::render(&r);
    assert!(text.contains("someone-else.database.example"), "{text}");
}

/// A server that takes `token` as its FEDAUTH login, and the App Service identity endpoint
/// (support/identity.rs: X-IDENTITY-HEADER, resource, api-version 2019-08-01) that issues
/// it for Azure SQL to the system identity and to `client_ids`.
pub(crate) async fn fedauth_pair(
    f: &Fx,
    token: &str,
    client_ids: &[&str],
) -> (TdsServer, support::identity::IdentityEndpoint) {
    let mut cfg = server_cfg(f);
    cfg.fedauth_token = Some(token.into());
    let srv = TdsServer::start(cfg).await;
    let idp = support::identity::IdentityEndpoint::start(
        "idh-PLANTED",
        &[("https://database.windows.net/", token)],
        client_ids,
    )
    .await;
    (srv, idp)
}

/// The app settings that point a run at `idp`.
pub(crate) fn identity_env(idp: &support::identity::IdentityEndpoint) -> [(&str, &str); 2] {
    [
        ("IDENTITY_ENDPOINT", idp.url.as_str()),
        ("IDENTITY_HEADER", "idh-PLANTED"),
    ]
}

/// A gateway that routes every login to `node` (Azure SQL's Redirect policy), and a SQL
/// login run through it.
pub(crate) async fn through_gateway(f: &Fx, node: &TdsServer) -> (Report, TdsServer) {
    let mut gw = server_cfg(f);
    gw.route_to = Some(("node1.worker.database.windows.net".into(), node.port()));
    let gateway = TdsServer::start(gw).await;
    let r = run(
        f,
        &uri(&gateway),
        "user = \"app\"\npassword = \"env:P\"",
        &[("P", PASSWORD)],
    )
    .await;
    (r, gateway)
}
