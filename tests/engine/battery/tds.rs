//! TDS faults from the TDS test server: a close, a stall or garbage in PRELOGIN, a close
//! in the TLS handshake, stalls in login and query, 18456, a redirect to a dead node and
//! a failed query.

use super::*;
use support::tds::{Fault, TdsServer};

async fn tds_case(
    case: &str,
    f: &TlsFx,
    srv: &TdsServer,
    extra: &str,
    layer: Layer,
    class: FailureClass,
) -> TargetReport {
    let uri = format!("sqlserver://{SQL}:{}/orders", srv.port());
    let r = probe(f.dns.addr, &f.ca_engine(), &one(&uri, extra), None).await;
    expect(case, &r, layer, class).clone()
}

const LOGIN: &str = "user = \"app\"\npassword = \"env:P\"";

async fn tds_fault(case: &str, fault: Fault, class: FailureClass, phase: &str, words: &[&str]) {
    let f = tls_fx().await;
    let mut cfg = tds_cfg(&f);
    cfg.fault = Some(fault);
    let srv = TdsServer::start(cfg).await;
    let t = tds_case(case, &f, &srv, LOGIN, Layer::Tds, class).await;
    let msg = &t.failure.as_ref().unwrap().message;
    assert!(msg.contains(phase), "{case}: {msg}");
    hint_has(case, &t, words);
}

#[tokio::test]
async fn tds_close_during_prelogin() {
    tds_fault(
        "tds_close_during_prelogin",
        Fault::CloseDuringPrelogin,
        FailureClass::TdsPrelogin,
        "",
        &["wrong port", "check the DNS layer"],
    )
    .await;
}

#[tokio::test]
async fn tds_stall_during_prelogin() {
    tds_fault(
        "tds_stall_during_prelogin",
        Fault::StallDuringPrelogin,
        FailureClass::TdsTimeout,
        "prelogin",
        &["holds the session"],
    )
    .await;
}

#[tokio::test]
async fn tds_garbage_reply() {
    tds_fault(
        "tds_garbage_reply",
        Fault::GarbageReply,
        FailureClass::TdsPrelogin,
        "",
        &["wrong port", "check the DNS layer"],
    )
    .await;
}

#[tokio::test]
async fn tds_close_during_tls_handshake() {
    tds_fault(
        "tds_close_during_tls_handshake",
        Fault::CloseDuringTlsHandshake,
        FailureClass::TlsHandshake,
        "",
        &["sqlserver:// target", "middlebox"],
    )
    .await;
}

#[tokio::test]
async fn tds_stall_during_login() {
    tds_fault(
        "tds_stall_during_login",
        Fault::StallDuringLogin,
        FailureClass::TdsTimeout,
        "login",
        &["holds the session"],
    )
    .await;
}

#[tokio::test]
async fn tds_stall_during_query() {
    tds_fault(
        "tds_stall_during_query",
        Fault::StallDuringQuery,
        FailureClass::TdsTimeout,
        "query",
        &["holds the session"],
    )
    .await;
}

#[tokio::test]
async fn tds_login_failed_18456() {
    let f = tls_fx().await;
    let srv = TdsServer::start(tds_cfg(&f)).await;
    let t = tds_case(
        "tds_login_failed_18456",
        &f,
        &srv,
        "user = \"app\"\npassword = \"wrong\"",
        Layer::Tds,
        FailureClass::TdsLoginFailed,
    )
    .await;
    assert_eq!(t.reached, Some(Layer::Tds), "18456 is an answer");
    hint_has(
        "tds_login_failed_18456",
        &t,
        &["user, password or database is wrong", "CREATE USER"],
    );
}

#[tokio::test]
async fn tds_redirect_to_a_dead_port() {
    let f = tls_fx().await;
    let mut cfg = tds_cfg(&f);
    let dead = dead_port().port();
    cfg.route_to = Some(("node1.worker.database.windows.net".into(), dead));
    let srv = TdsServer::start(cfg).await;
    let t = tds_case(
        "tds_redirect_to_a_dead_port",
        &f,
        &srv,
        LOGIN,
        Layer::Tds,
        FailureClass::TdsRedirect,
    )
    .await;
    assert!(t.failure.as_ref().unwrap().message.contains("tcp.refused"));
    // The hint names the node the gateway sent the login to.
    hint_has(
        "tds_redirect_to_a_dead_port",
        &t,
        &[&format!(
            "redirected the login to node1.worker.database.windows.net:{dead}"
        )],
    );
}

#[tokio::test]
async fn tds_query_error() {
    let f = tls_fx().await;
    let mut cfg = tds_cfg(&f);
    cfg.query_error = Some((208, "Invalid object name 'nope'.".into()));
    let srv = TdsServer::start(cfg).await;
    let t = tds_case(
        "tds_query_error",
        &f,
        &srv,
        "user = \"app\"\npassword = \"env:P\"\nquery = \"SELECT * FROM nope\"",
        Layer::Tds,
        FailureClass::TdsQuery,
    )
    .await;
    // 208 (invalid object) is not a permission error.
    hint_has("tds_query_error", &t, &["check the query"]);
    hint_lacks("tds_query_error", &t, &["lacks permission"]);
}
