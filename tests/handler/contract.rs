//! The custom-handler edge against the host emulator: every exchange of the host
//! contract (docs/host-contract.md; labelled G1-G7 in tests/support/host.rs) is a test
//! here. All probes go to loopback peers.

use crate::support;

use serde_json::Value;
use support::host::{
    App, Caller, Host, Outcome, RawResponse, TARGETS_MIXED, TARGETS_OK, TimerStatus, judge,
};

pub(crate) const IID: &str = "5b7c0e5d-1a7b-4e0c-9f1e-0d2c3b4a5f60";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

pub(crate) fn names(report: &Value) -> Vec<String> {
    report["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn target<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no target {name} in {report}"))
}

// ------------------------------------------------------------------------ G1

#[tokio::test]
async fn g1_readiness_is_answered_at_once_without_side_effects() {
    let app = App::start(TARGETS_OK).await;
    for _ in 0..3 {
        let (resp, attempts) = app.host.wait_ready().await;
        assert_eq!(resp.status, 200);
        assert_eq!(attempts, 1);
        assert_eq!(resp.text(), "ready\n");
    }
    assert_eq!(app.state.runs_started(), 0, "GET / must not probe");
}

#[tokio::test]
async fn g1_readiness_poll_waits_through_refused_connections() {
    // The host picks a free port, frees it, starts us, then polls until we listen.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let poll = tokio::spawn(async move { Host::new(addr).wait_ready().await });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let cfg = routeproof::config::parse("", &|_| None).unwrap();
    let state = routeproof::handler::State::new(cfg, Default::default(), &|_| None).unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(routeproof::handler::run(
        listener,
        state,
        std::future::pending(),
    ));
    let (resp, attempts) = poll.await.unwrap();
    assert_eq!(resp.status, 200);
    assert!(attempts >= 1);
}

// ------------------------------------------------------------------------ G2, G3

#[test]
fn g2_emulator_sends_the_contract_bytes() {
    let want = r#"{"Data":{"myTimer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2025-01-15T10:00:00.0019273+00:00","Next":"2025-01-15T10:05:00+00:00","LastUpdated":"2025-01-15T10:00:00.0019273+00:00"},"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"TimerProbe","UtcNow":"2025-01-15T10:05:00.0031456Z","RandGuid":"3c9d1a52-7f0e-4b8e-9d61-0f2a5b7c8e14"}}}"#;
    assert_eq!(
        Host::timer_envelope("TimerProbe", "myTimer", TimerStatus::Steady, false),
        want
    );
}

#[tokio::test]
async fn g2_timer_steady_state_reply_matches_the_contract() {
    let app = App::start(TARGETS_OK).await;
    let (resp, outcome) = app
        .host
        .timer("TimerProbe", "myTimer", TimerStatus::Steady, IID)
        .await;
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let (logs, outputs, return_value, _) = outcome.succeeded();
    assert_eq!(logs[0], "routeproof timer: 3 targets, 3 ok, 0 failed");
    assert_eq!(
        logs.iter().filter(|l| l.starts_with("PASS ")).count(),
        3,
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("PASS sql (tcp://loopsql.database.windows.net:"))
    );
    assert!(outputs.is_empty());
    assert_eq!(return_value, "routeproof timer: 3 targets, 3 ok, 0 failed");
    assert_eq!(app.state.runs_started(), 1);

    // The report is kept: ?last answers it without probing again.
    let last = app
        .host
        .forward(
            &Caller::get("/api/probe?last&code=KEY"),
            "11111111-2222-3333-4444-555555555555",
            None,
        )
        .await;
    assert_eq!(last.status, 200);
    let body = last.json();
    assert_eq!(names(&body), ["sql", "api", "pe-dns"]);
    assert_eq!(body["scheduled"]["invocation"]["id"], IID);
    assert_eq!(body["scheduled"]["invocation"]["trigger"], "timer");
    assert_eq!(body["scheduled"]["invocation"]["function"], "TimerProbe");
    assert_eq!(body["scheduled"]["is_past_due"], false);
    assert_eq!(body["invocation"]["run"], "last");
    assert_eq!(
        body["invocation"]["id"],
        "11111111-2222-3333-4444-555555555555"
    );
    assert_eq!(app.state.runs_started(), 1, "?last must not probe");

    // A subset of the last report, by name.
    let sub = app
        .host
        .forward(
            &Caller::get("/api/probe?last=1&name=api&code=KEY"),
            IID,
            None,
        )
        .await;
    assert_eq!(sub.status, 200);
    let sub = sub.json();
    assert_eq!(names(&sub), ["api"]);
    assert_eq!(sub["summary"]["total"], 1);
}

#[tokio::test]
async fn g3_timer_variants_are_all_accepted() {
    let app = App::start(TARGETS_MIXED).await;
    let cases = [
        (
            TimerStatus::FirstRun,
            false,
            Some("first scheduled run on record"),
        ),
        (TimerStatus::Unmonitored, false, None),
        (TimerStatus::PastDue, false, Some("past due")),
        (TimerStatus::Steady, true, None),
    ];
    for (status, retry, note) in cases {
        let body = Host::timer_envelope("scheduled", "timer", status, retry);
        let resp = app.host.post_payload("scheduled", &body, IID).await;
        let (logs, _, rv, _) = judge(&resp, None).succeeded();
        assert_eq!(
            logs[0], "routeproof timer: 4 targets, 3 ok, 1 failed",
            "{status:?}"
        );
        assert_eq!(rv, "routeproof timer: 4 targets, 3 ok, 1 failed");
        let fail = logs
            .iter()
            .find(|l| l.starts_with("FAIL down "))
            .expect("a FAIL line for down");
        assert!(
            fail.contains("tcp.refused") && fail.contains("hint: "),
            "{fail}"
        );
        match note {
            Some(n) => assert!(logs[1].contains(n), "{status:?}: {logs:?}"),
            None => assert!(
                logs[1].starts_with("PASS ") || logs[1].starts_with("FAIL "),
                "{logs:?}"
            ),
        }
    }
    let last = app
        .host
        .forward(&Caller::get("/api/probe?last&code=KEY"), IID, None)
        .await;
    assert_eq!(last.status, 503, "the last report had a failure");
    assert_eq!(last.json()["scheduled"]["is_past_due"], false);
}

// ------------------------------------------------------------------------ G4

#[tokio::test]
async fn g4_payload_http_golden_request_gets_a_bindable_reply() {
    let app = App::start(TARGETS_MIXED).await;
    let caller = Caller::post(
        "/api/probe?target=sql1",
        "application/json",
        br#"{"timeoutMs":500}"#,
    );
    // The emulator double-encodes metadata strings as the host does.
    let env = app.host.http_envelope("probe", &caller);
    assert!(env.contains(r#""timeoutMs":"\"500\"""#), "{env}");
    assert!(env.contains(r#""target":"\"sql1\"""#), "{env}");
    assert!(env.contains(r#""Body":"{\"timeoutMs\":500}""#), "{env}");

    let (resp, outcome) = app
        .host
        .payload_http("probe", &caller, IID, Some(TRACEPARENT))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let raw = resp.json();
    assert!(
        raw["Outputs"]["res"]["statusCode"].is_u64(),
        "statusCode, never status: {raw}"
    );
    assert!(raw["Outputs"]["res"].get("status").is_none());
    let (logs, _, rv, caller_view) = outcome.succeeded();
    let c = caller_view.unwrap();
    assert_eq!(c.status, 403);
    assert_eq!(c.content_type(), Some("application/json"));
    let body = c.json();
    assert_eq!(body["error"]["class"], "policy.denied");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allow-list")
    );
    assert_eq!(body["invocation"]["mode"], "payload");
    assert_eq!(body["invocation"]["id"], IID);
    assert_eq!(body["invocation"]["trace_id"], TRACE_ID);
    assert!(logs[0].contains("403 policy.denied"), "{logs:?}");
    assert_eq!(rv, Value::Null);
    assert_eq!(
        app.state.runs_started(),
        0,
        "ad-hoc is refused before any probe"
    );
}

#[tokio::test]
async fn g4_payload_http_get_runs_configured_targets() {
    let app = App::start(TARGETS_MIXED).await;
    let (_, ok) = app
        .host
        .payload_http(
            "probe",
            &Caller::get("/api/probe?name=sql&name=api"),
            IID,
            None,
        )
        .await;
    let (logs, _, _, c) = ok.succeeded();
    let c = c.unwrap();
    assert_eq!(c.status, 200);
    let report = c.json();
    assert_eq!(names(&report), ["sql", "api"]);
    assert_eq!(report["ok"], true);
    assert_eq!(target(&report, "sql")["reached"], "tcp");
    assert_eq!(report["invocation"]["mode"], "payload");
    assert_eq!(logs[0], "routeproof probe: 2 targets, 2 ok, 0 failed");

    let (_, all) = app
        .host
        .payload_http("probe", &Caller::get("/api/probe"), IID, None)
        .await;
    let (logs, _, _, c) = all.succeeded();
    let c = c.unwrap();
    assert_eq!(c.status, 503, "one target failed");
    let report = c.json();
    assert_eq!(
        names(&report),
        ["sql", "api", "pe-dns", "down"],
        "the body still has the whole report"
    );
    assert_eq!(target(&report, "down")["failure"]["class"], "tcp.refused");
    assert_eq!(target(&report, "pe-dns")["reached"], "dns");
    assert_eq!(logs[0], "routeproof probe: 4 targets, 3 ok, 1 failed");
    assert!(logs.iter().any(|l| l.starts_with("FAIL down ")), "{logs:?}");
}

// ------------------------------------------------------------------------ G5

#[tokio::test]
async fn g5_forward_mode_text_with_code_kept_and_names_comma_joined() {
    let app = App::start(TARGETS_MIXED).await;
    let caller =
        Caller::get("/api/probe?name=sql&name=api&code=KEY").header("Accept", "text/plain");
    let resp = app.host.forward(&caller, IID, None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let text = resp.text();
    assert!(
        text.contains("PASS  sql  tcp://loopsql.database.windows.net:"),
        "{text}"
    );
    assert!(text.contains("PASS  api  tcp://127.0.0.1:"), "{text}");
    assert!(!text.contains("down"), "only the named targets: {text}");
    assert!(
        text.contains("\ninvocation: ") && text.contains(&format!(" id={IID} ")),
        "{text}"
    );
    assert!(text.contains("mode=forward"), "{text}");
    assert!(!text.contains("KEY"), "the function key is not echoed");

    let json = app
        .host
        .forward(
            &Caller::get("/api/probe?name=pe-dns&code=KEY"),
            IID,
            Some(TRACEPARENT),
        )
        .await;
    assert_eq!(json.status, 200);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let body = json.json();
    assert_eq!(body["invocation"]["mode"], "forward");
    assert_eq!(body["invocation"]["id"], IID);
    assert_eq!(body["invocation"]["traceparent"], TRACEPARENT);
    assert_eq!(body["invocation"]["trace_id"], TRACE_ID);
    assert_eq!(
        body["invocation"]["host_version"],
        support::host::HOST_VERSION
    );
    assert_eq!(body["invocation"]["run"], "new");
    assert_eq!(body["schema"], "routeproof.report/v1");
}

// ------------------------------------------------------------------------ G6

#[tokio::test]
async fn g6_proxy_mode_failure_is_503_with_the_full_report() {
    let app = App::start(TARGETS_MIXED).await;
    let resp = app
        .host
        .proxy(
            &Caller::get("/api/probe?name=down&name=sql&code=KEY"),
            IID,
            Some(TRACEPARENT),
        )
        .await;
    assert_eq!(resp.status, 503);
    let body = resp.json();
    assert_eq!(body["ok"], false);
    assert_eq!(body["summary"]["failed"], 1);
    assert_eq!(names(&body), ["sql", "down"], "config order");
    let down = target(&body, "down");
    assert_eq!(down["failure"]["class"], "tcp.refused");
    assert_eq!(down["failure"]["layer"], "tcp");
    assert!(!down["failure"]["hint"].as_str().unwrap().is_empty());
    assert_eq!(body["invocation"]["mode"], "proxy");
    assert_eq!(body["invocation"]["id"], IID);
    assert_eq!(body["invocation"]["trace_id"], TRACE_ID);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
}

// ------------------------------------------------------------------------ G7

#[tokio::test]
async fn g7_every_payload_reply_is_one_the_host_binds() {
    let app = App::start(TARGETS_MIXED).await;
    let http_cases: Vec<(&str, Caller, u16)> = vec![
        ("probe", Caller::get("/api/probe?name=sql"), 200),
        ("probe", Caller::get("/api/probe?name=down"), 503),
        ("probe", Caller::get("/api/probe?last"), 404),
        ("probe", Caller::get("/api/probe?name=nope"), 400),
        ("probe", Caller::get("/api/probe?bogus=1"), 400),
        (
            "probe",
            Caller::get("/api/probe?target=tcp://10.0.0.1:1433"),
            403,
        ),
        ("probe", Caller::post("/api/probe", "text/plain", b"x"), 415),
        (
            "probe",
            Caller::post("/api/probe", "application/json", b"{"),
            400,
        ),
        ("probe", Caller::get("/api/probe?format=html"), 503),
        ("health", Caller::get("/api/health"), 200),
    ];
    for (function, caller, want) in http_cases {
        let (resp, outcome) = app.host.payload_http(function, &caller, IID, None).await;
        let raw = resp.json();
        let res = &raw["Outputs"]["res"];
        assert!(
            res["statusCode"].is_u64() && res.get("status").is_none(),
            "{raw}"
        );
        assert!(res["headers"]["Content-Type"].is_string(), "{raw}");
        assert!(res["body"].is_string(), "{raw}");
        match outcome {
            Outcome::Succeeded {
                caller: Some(c),
                logs,
                ..
            } => {
                assert_eq!(c.status, want, "{}: {}", caller.path_and_query, c.body);
                assert!(!c.body.is_empty());
                assert!(!logs.is_empty());
            }
            other => panic!(
                "{}: the host would not bind this: {other:?}",
                caller.path_and_query
            ),
        }
    }
    let (_, timer) = app
        .host
        .timer("scheduled", "timer", TimerStatus::Steady, IID)
        .await;
    assert!(matches!(timer, Outcome::Succeeded { .. }), "{timer:?}");
}

/// The emulator judges replies by the G7 table, so the tests above would catch a handler
/// that broke the host's rules.
#[test]
fn g7_the_emulator_rejects_what_the_host_rejects() {
    let reply = |status: u16, ct: Option<&str>, body: &str| RawResponse {
        status,
        headers: ct
            .map(|c| vec![("Content-Type".to_string(), c.to_string())])
            .unwrap_or_default(),
        body: body.as_bytes().to_vec(),
    };
    let json = Some("application/json");
    let failed = |o: Outcome| matches!(o, Outcome::Failed(_));
    assert!(failed(judge(
        &reply(500, json, r#"{"Outputs":{}}"#),
        Some("res")
    )));
    assert!(failed(judge(
        &reply(200, Some("text/plain"), "{}"),
        Some("res")
    )));
    assert!(failed(judge(&reply(200, None, "{}"), Some("res"))));
    assert!(failed(judge(&reply(200, json, "Hello World"), Some("res"))));
    assert!(matches!(
        judge(&reply(200, json, ""), Some("res")),
        Outcome::Hangs
    ));
    assert!(matches!(
        judge(&reply(200, json, "null"), Some("res")),
        Outcome::Hangs
    ));
    assert!(failed(judge(
        &reply(200, json, r#"{"Outputs":{"res":"hello"}}"#),
        Some("res")
    )));
    let caller = |body: &str| {
        judge(&reply(200, json, body), Some("res"))
            .succeeded()
            .3
            .unwrap()
    };
    let ignored = caller(r#"{"Outputs":{"res":{"status":404,"body":"x"}}}"#);
    assert_eq!(
        (ignored.status, ignored.body.as_str()),
        (200, "x"),
        "status is ignored"
    );
    let missing = caller(r#"{"Outputs":{},"Logs":[]}"#);
    assert_eq!((missing.status, missing.body.as_str()), (200, "{}"));
    assert_eq!(
        caller(r#"{"Outputs":{"res":{"statusCode":"201"}}}"#).status,
        201
    );
    assert!(matches!(
        judge(&reply(200, json, "{}"), None),
        Outcome::Succeeded { .. }
    ));
}
