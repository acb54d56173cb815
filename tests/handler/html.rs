//! The HTML status page: served through the host emulator (forward mode, function key in
//! the query), escaped, self-contained; and, with `ROUTEPROOF_BROWSER_TESTS=1`, rendered
//! by headless Chromium with screenshots saved under `target/artifacts/`.

use crate::support;

use support::chromium;
use support::host::{App, Caller, TARGETS_MIXED, TimerStatus};
use support::web;

const IID: &str = "5b7c0e5d-1a7b-4e0c-9f1e-0d2c3b4a5f60";
const EVIL: &str = "<script>alert('x')</script>";

async fn app_after_a_scheduled_run() -> (App, web::Server) {
    let http = web::http().await;
    let targets = format!(
        "{TARGETS_MIXED}\n[[targets]]\nname = \"status-500\"\ntarget = \"http://127.0.0.1:{}/500\"\n\n\
         [[targets]]\nname = \"{EVIL}\"\ntarget = \"tcp://127.0.0.1:{{open}}\"\n",
        http.addr.port()
    );
    let app = App::start(&targets).await;
    let (resp, _) = app
        .host
        .timer("TimerProbe", "myTimer", TimerStatus::Steady, IID)
        .await;
    assert_eq!(resp.status, 200);
    (app, http)
}

#[tokio::test]
async fn the_page_has_rows_waterfall_environment_and_is_escaped() {
    let (app, _http) = app_after_a_scheduled_run().await;
    let resp = app
        .host
        .forward(
            &Caller::get("/api/probe?last&format=html&code=KEY"),
            IID,
            None,
        )
        .await;
    assert_eq!(resp.status, 503, "one target fails");
    assert_eq!(
        resp.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        resp.header("content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'")
    );
    let page = resp.text();
    assert!(
        !page.contains("<script"),
        "markup from a target name leaked"
    );
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    // No external assets: nothing to fetch behind the function key (target URLs
    // appear as text only).
    for needle in ["src=", "href=", "url(", "@import", "<link", "<img"] {
        assert!(!page.contains(needle), "{needle} in the page");
    }
    assert!(page.contains("<meta name=\"viewport\""));
    assert_eq!(page.matches("<section class=\"row").count(), 6);
    assert_eq!(page.matches("<section class=\"row fail\"").count(), 2);
    assert!(page.contains("<span class=\"class\">tcp.refused</span> at tcp"));
    assert!(page.contains("<span class=\"class\">http.status</span> at http"));
    assert!(
        page.contains("class=\"bar l-dns\""),
        "waterfall lane for DNS"
    );
    assert!(
        page.contains("class=\"bar l-tcp bad\""),
        "failed layer in red"
    );
    assert!(page.contains("Last scheduled run: finished"));
    assert!(page.contains(&format!("invocation <code>{IID}</code>")));
    assert!(page.contains("<h2>Environment</h2>"));
    assert!(page.contains("<dt>resolvers</dt>"));

    // Accept: text/html picks the page too (a fresh run).
    let fresh = app
        .host
        .forward(
            &Caller::get("/api/probe?name=api&code=KEY").header("Accept", "text/html"),
            IID,
            None,
        )
        .await;
    assert_eq!(fresh.status, 200);
    assert!(
        fresh
            .text()
            .contains("<span class=\"verdict v-ok\">ALL OK</span>")
    );
}

/// `data-start-ms` / `data-ms` of every waterfall lane in `row` (one target's section).
fn lanes(row: &str) -> Vec<(String, String)> {
    let attr = |s: &str, name: &str| {
        let at = s.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        s[at..at + s[at..].find('"').unwrap()].to_string()
    };
    row.split("<div class=\"lane\" ")
        .skip(1)
        .map(|l| (attr(l, "data-start-ms"), attr(l, "data-ms")))
        .collect()
}

#[tokio::test]
async fn the_waterfall_draws_each_layer_from_its_start_in_the_report() {
    support::certs::install_crypto_provider();
    let ca = support::certs::Ca::new("routeproof test CA");
    let leaf = ca.issue(&support::certs::LeafSpec::new([
        "loopsql.database.windows.net",
    ]));
    let pem = support::certs::PemFiles::write(&ca, &leaf);
    let tls = web::https(leaf.server_config(&[], &[b"http/1.1"])).await;
    // dns (through the privatelink CNAME), tcp, tls, http: four layers, one after another.
    let targets = format!(
        "[[targets]]\nname = \"web\"\ntarget = \"https://loopsql.database.windows.net:{}/\"\nca_file = \"{}\"\n",
        tls.addr.port(),
        pem.ca.display()
    );
    let app = App::start(&targets).await;
    let (resp, _) = app
        .host
        .timer("TimerProbe", "myTimer", TimerStatus::Steady, IID)
        .await;
    assert_eq!(resp.status, 200);
    let json = app
        .host
        .forward(&Caller::get("/api/probe?last&code=KEY"), IID, None)
        .await
        .json();
    let t = &json["targets"][0];
    assert_eq!(t["ok"], true, "{t:#}");
    let layers = t["layers"].as_array().unwrap();
    let names: Vec<&str> = layers
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dns", "tcp", "tls", "http"], "{t:#}");
    let total = t["duration_ms"].as_f64().unwrap();
    let mut last = 0.0;
    for l in layers {
        let (start, dur) = (
            l["start_ms"].as_f64().unwrap(),
            l["duration_ms"].as_f64().unwrap(),
        );
        assert!(start >= last, "start_ms goes back: {t:#}");
        // ms() rounds each value to the microsecond.
        assert!(
            start + dur <= total + 0.002,
            "a layer ends after its target: {t:#}"
        );
        last = start + dur - 0.002;
    }
    assert!(
        layers[3]["start_ms"].as_f64().unwrap() > 0.0,
        "the HTTP layer starts after the three below it: {t:#}"
    );

    let page = app
        .host
        .forward(
            &Caller::get("/api/probe?last&format=html&code=KEY"),
            IID,
            None,
        )
        .await
        .text();
    let row = &page[page.find("<section class=\"row").unwrap()..];
    let row = &row[..row.find("</section>").unwrap()];
    let want: Vec<(String, String)> = layers
        .iter()
        .map(|l| {
            (
                format!("{:.3}", l["start_ms"].as_f64().unwrap()),
                format!("{:.3}", l["duration_ms"].as_f64().unwrap()),
            )
        })
        .collect();
    assert_eq!(lanes(row), want, "the page's lanes are the report's layers");

    // The environment block is labelled rows, never a JSON object.
    let env = &page[page.find("<h2>Environment</h2>").unwrap()..];
    let env = &env[..env.find("</dl>").unwrap()];
    assert!(env.contains("<dt>resolvers</dt>"), "{env}");
    assert!(
        !env.contains('{') && !env.contains('}'),
        "JSON in the environment block: {env}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_a_readable_page() {
    let Some(bin) = chromium::for_test("chromium_renders_a_readable_page") else {
        return;
    };
    let (app, _http) = app_after_a_scheduled_run().await;
    let url = format!(
        "http://{}/api/probe?last&format=html&code=KEY",
        app.host.addr
    );
    let dir = chromium::artifacts();
    for (file, size) in [
        ("status-page.png", "1280,1400"),
        ("status-page-phone.png", "390,1600"),
    ] {
        let path = dir.join(file);
        let _ = std::fs::remove_file(&path);
        chromium::run(
            &bin,
            &url,
            &[
                format!("--screenshot={}", path.display()),
                format!("--window-size={size}"),
            ],
        )
        .await;
        let png = std::fs::read(&path).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG"), "{file} is a PNG");
        assert!(
            png.len() > 10_000,
            "{file} is not blank ({} bytes)",
            png.len()
        );
        eprintln!("screenshot: {}", path.display());
    }
    let dom = chromium::run(&bin, &url, &["--dump-dom".to_string()]).await;
    for visible in [
        "FAILED",
        "PASS",
        "FAIL",
        "tcp.refused",
        "http.status",
        "reached",
        "Last scheduled run",
        "Environment",
        "&lt;script&gt;alert('x')&lt;/script&gt;",
    ] {
        assert!(dom.contains(visible), "{visible:?} not in the rendered DOM");
    }
    assert!(!dom.contains("<script>"), "no script element may exist");
}
