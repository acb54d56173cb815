//! The deployable layout: host.json, function_app/*/function.json, the default config
//! and local.settings.json.example agree with what the handler serves and with the
//! host's rules (docs/host-contract.md: Which shape each function gets, Function layout).

use std::path::Path;
use std::time::Duration;

use routeproof::handler::Settings;
use routeproof::handler::state::parse_function_timeout;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn json(rel: &str) -> Value {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn bindings(function: &str) -> Vec<Value> {
    json(&format!("function_app/{function}/function.json"))["bindings"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn host_json_selects_the_custom_handler() {
    let h = json("host.json");
    assert_eq!(h["version"], "2.0");
    let ch = &h["customHandler"];
    assert_eq!(ch["description"]["defaultExecutablePath"], "routeproof");
    assert_eq!(ch["description"]["arguments"], serde_json::json!(["serve"]));
    assert_eq!(ch["enableForwardingHttpRequest"], true);
    assert_eq!(h["extensions"]["http"]["routePrefix"], "api");
    // HTTP and timer bindings are built into the host: no bundle download at start-up.
    assert!(h.get("extensionBundle").is_none());

    let ft =
        parse_function_timeout(h["functionTimeout"].as_str().unwrap()).expect("functionTimeout");
    assert!(
        ft <= Duration::from_secs(600),
        "valid on classic Consumption too"
    );
    let s = Settings {
        function_timeout: Some(ft),
        ..Settings::default()
    };
    assert!(s.timer_run_deadline() < ft && s.http_run_deadline() < Duration::from_secs(230));
}

#[test]
fn probe_is_http_in_and_out_only_so_the_host_forwards_it() {
    let b = bindings("probe");
    assert_eq!(
        b.len(),
        2,
        "any extra binding switches the host to payload mode"
    );
    let t = b
        .iter()
        .find(|x| x["type"] == "httpTrigger")
        .expect("httpTrigger");
    assert_eq!(t["direction"], "in");
    assert_eq!(t["name"], "req");
    assert_eq!(t["authLevel"], "function");
    assert_eq!(t["route"], "probe");
    assert_eq!(t["methods"], serde_json::json!(["get", "post"]));
    let o = b.iter().find(|x| x["type"] == "http").expect("http out");
    assert_eq!(o["direction"], "out");
    assert_eq!(o["name"], routeproof::handler::payload::HTTP_OUTPUT);
}

#[test]
fn health_is_anonymous_get() {
    let b = bindings("health");
    assert_eq!(b.len(), 2);
    let t = b.iter().find(|x| x["type"] == "httpTrigger").unwrap();
    assert_eq!(t["authLevel"], "anonymous");
    assert_eq!(t["methods"], serde_json::json!(["get"]));
    assert_eq!(t["route"], "health");
    assert!(
        b.iter()
            .any(|x| x["type"] == "http" && x["direction"] == "out")
    );
}

#[test]
fn the_timer_schedule_is_an_app_setting_with_a_documented_default() {
    let b = bindings("scheduled");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["type"], "timerTrigger");
    assert_eq!(b[0]["schedule"], "%ROUTEPROOF_SCHEDULE%");
    assert_eq!(
        b[0]["runOnStartup"], false,
        "true would probe on every start and scale-out"
    );
    let local = json("local.settings.json.example");
    assert_eq!(local["Values"]["FUNCTIONS_WORKER_RUNTIME"], "custom");
    let schedule = local["Values"]["ROUTEPROOF_SCHEDULE"].as_str().unwrap();
    assert_eq!(schedule, "0 */5 * * * *");
    assert_eq!(
        schedule.split_whitespace().count(),
        6,
        "NCRONTAB has six fields"
    );
    // The host cannot index the function while the setting is unset: deploy.sh sets
    // the same default when it is missing.
    let deploy = std::fs::read_to_string(root().join("scripts/deploy.sh")).unwrap();
    assert!(deploy.contains(&format!("default_schedule=\"{schedule}\"")));
}

#[test]
fn every_function_folder_is_one_the_handler_serves() {
    let mut names: Vec<String> = std::fs::read_dir(root().join("function_app"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["health", "metrics", "probe", "scheduled"]);
}

#[test]
fn the_default_config_loads_and_ships_no_targets() {
    let text = std::fs::read_to_string(root().join("config/default.toml")).unwrap();
    let cfg = routeproof::config::parse(&text, &|_| None).expect("config/default.toml");
    assert!(cfg.targets.is_empty());
    assert!(
        cfg.engine.dns_servers.is_empty(),
        "on Azure, use the app's own resolvers"
    );
}
