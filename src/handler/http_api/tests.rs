use crate::config::TargetConfig;
use crate::target;

use super::request::{is_json_media_type, parse_query, select};

fn targets(names: &[&str]) -> Vec<TargetConfig> {
    names
        .iter()
        .map(|n| {
            let mut t = TargetConfig::adhoc(target::parse_uri("tcp://127.0.0.1:9").unwrap());
            t.name = n.to_string();
            t
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn name_selection() {
    let ts = targets(&["sql", "api", "odd,name"]);
    assert_eq!(select(&[], &ts), Ok(None));
    assert_eq!(select(&s(&["sql"]), &ts), Ok(Some(s(&["sql"]))));
    // Forward mode's comma-joined repeat, and a name that itself has a comma.
    assert_eq!(select(&s(&["sql,api"]), &ts), Ok(Some(s(&["sql", "api"]))));
    assert_eq!(select(&s(&["odd,name"]), &ts), Ok(Some(s(&["odd,name"]))));
    assert_eq!(select(&s(&["api", "api"]), &ts), Ok(Some(s(&["api"]))));
    let e = select(&s(&["sql", "nope"]), &ts).unwrap_err();
    assert!(
        e.contains("`nope`") && e.contains("configured: sql, api"),
        "{e}"
    );
}

#[test]
fn query_keys() {
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let q = parse_query(&pairs(&[("code", "KEY"), ("Name", "a"), ("last", "")])).unwrap();
    assert!(q.last && q.names == ["a"] && !q.adhoc);
    assert!(!parse_query(&pairs(&[("last", "false")])).unwrap().last);
    let e = parse_query(&pairs(&[("nmae", "a")])).err().unwrap();
    assert!(e.contains("`nmae`"), "{e}");
}

#[test]
fn json_media_types() {
    for ok in [
        "application/json",
        "application/json; charset=utf-8",
        "TEXT/JSON",
        "application/problem+json",
    ] {
        assert!(is_json_media_type(ok), "{ok}");
    }
    for bad in [
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
    ] {
        assert!(!is_json_media_type(bad), "{bad}");
    }
}
