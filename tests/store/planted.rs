//! A planted account key (in `AzureWebJobsStorage`) and a SAS signed with it (in
//! `ROUTEPROOF_STORAGE`) appear nowhere a door puts text: no HTTP answer of any endpoint
//! (before, during and after a storage outage), no CLI stdout or stderr, no log line of
//! either `serve` (everything down to TRACE, every crate), no exported span or metric
//! (a real OTLP receiver, rotel), and no blob Azurite holds afterwards (every one read).
//! Azurite runs with the planted key as its account key (`AZURITE_ACCOUNTS`), so the
//! key and the SAS are the working credentials, not decoys.

use crate::auth::account_sas;
use crate::azurite::{ACCOUNT, Azurite, free_port};
use crate::fixtures::skip;
use crate::serve::{Serve, command};
use crate::support::otel::{Rotel, rotel_agent};

/// base64 of `PLANTEDSTOREKEYrouteproofwstore0123456789abcdef`: a valid account key that
/// no code or fixture spells otherwise.
const PLANTED_KEY: &str = "UExBTlRFRFNUT1JFS0VZcm91dGVwcm9vZndzdG9yZTAxMjM0NTY3ODlhYmNkZWY=";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn env(
    az: &Azurite,
    instance: &str,
    sas_url: Option<&str>,
    otlp: &str,
) -> Vec<(&'static str, String)> {
    let mut e = vec![
        ("AzureWebJobsStorage", az.key_connection_string()),
        ("WEBSITE_INSTANCE_ID", instance.to_string()),
        ("ROUTEPROOF_STORAGE_CACHE_SECS", "0".into()),
        ("ROUTEPROOF_STORAGE_TIMEOUT_SECS", "2".into()),
        ("ROUTEPROOF_LOG", "trace".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.to_string()),
        ("OTEL_SERVICE_NAME", "routeproof-planted".into()),
    ];
    if let Some(u) = sas_url {
        e.push(("ROUTEPROOF_STORAGE", u.to_string()));
    }
    e
}

/// Every endpoint a caller can reach, each answer kept as `label: status body`.
async fn every_endpoint(s: &Serve, label: &str, out: &mut Vec<(String, String)>) {
    for path in [
        "/api/health",
        "/api/probe",
        "/api/probe?format=text",
        "/api/probe?format=html",
        "/api/probe?last",
        "/api/probe?last&format=text",
        "/api/probe?last&format=html",
        "/api/probe?last&name=api",
        "/api/probe?history",
        "/api/probe?history&target=api&limit=5",
        "/api/probe?history&from=yesterday",
        "/api/metrics",
        "/api/nothing-here",
    ] {
        let (status, body) = s.get(path).await;
        out.push((format!("{label} GET {path}"), format!("{status} {body}")));
    }
    let (status, reply) = s.timer().await;
    assert_eq!(status, 200, "{label}: the timer answers 2xx: {reply}");
    out.push((format!("{label} timer"), reply.to_string()));
}

fn cli(args: &[&str], env: &[(&'static str, String)], out: &mut Vec<(String, String)>) {
    let o = command(args, env).output().unwrap();
    out.push((
        format!("cli {}", args.join(" ")),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    ));
}

#[tokio::test]
async fn a_planted_key_and_sas_show_in_no_answer_log_span_or_blob() {
    const TEST: &str = "a_planted_key_and_sas_show_in_no_answer_log_span_or_blob";
    let Some(rotel_bin) = rotel_agent() else {
        skip(
            TEST,
            "rotel not found (pip install rotel, or set ROUTEPROOF_ROTEL)",
        );
        return;
    };
    let Some(mut az) = Azurite::start_with_key(None, PLANTED_KEY) else {
        skip(TEST, "azurite-blob not found");
        return;
    };
    let rotel = Rotel::start(&rotel_bin);
    let otlp = format!("http://{}", rotel.http);
    let sas = account_sas(ACCOUNT, PLANTED_KEY, "rwdlac");
    let sig_enc = sas.split("sig=").nth(1).unwrap().to_string();
    let sig: String = url::form_urlencoded::parse(format!("s={sig_enc}").as_bytes())
        .map(|(_, v)| v.into_owned())
        .collect();
    let sas_url = format!("{}?{sas}", az.http_endpoint());
    let needles = [
        ("the account key", PLANTED_KEY.to_string()),
        (
            "the key's first 20 characters",
            PLANTED_KEY[..20].to_string(),
        ),
        ("the account key, URL-encoded", enc(PLANTED_KEY)),
        ("the SAS signature", sig.clone()),
        (
            "the SAS signature's first 20 characters",
            sig[..20].to_string(),
        ),
        ("the SAS signature, URL-encoded", sig_enc.clone()),
    ];

    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = dir.path().join("routeproof.toml");
    std::fs::write(
        &config,
        format!(
            "[engine]\ndns_servers = [\"127.0.0.1:9\"]\ntcp_settle = \"0s\"\n\n\
             [[targets]]\nname = \"api\"\ntarget = \"tcp://{}\"\n\n\
             [[targets]]\nname = \"closed\"\ntarget = \"tcp://127.0.0.1:{}\"\n",
            open.local_addr().unwrap(),
            free_port()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let key_env = env(&az, "instance-key", None, &otlp);
    let sas_env = env(&az, "instance-sas", Some(&sas_url), &otlp);
    let a = Serve::start(&config, &key_env).await;
    let b = Serve::start(&config, &sas_env).await;
    let mut out: Vec<(String, String)> = Vec::new();

    let (_, reply) = a.timer().await;
    assert!(reply.to_string().contains("persisted: history/"), "{reply}");
    let (_, reply) = b.timer().await;
    assert!(
        reply.to_string().contains("persisted: history/"),
        "the SAS writes: {reply}"
    );
    every_endpoint(&a, "key", &mut out).await;
    every_endpoint(&b, "sas", &mut out).await;
    let cli_env: Vec<(&'static str, String)> = sas_env
        .iter()
        .filter(|(k, _)| !k.starts_with("OTEL_"))
        .cloned()
        .collect();
    cli(
        &[
            "probe",
            "--record",
            "--json",
            &format!("tcp://{}", open.local_addr().unwrap()),
        ],
        &cli_env,
        &mut out,
    );
    cli(&["history", "--json"], &cli_env, &mut out);

    // The outage: every error path quotes what the store said, so it is where a URL with
    // its SAS query would slip out.
    az.stop();
    every_endpoint(&a, "key, storage down", &mut out).await;
    every_endpoint(&b, "sas, storage down", &mut out).await;
    assert!(
        out.iter().any(|(l, o)| l == "sas, storage down timer"
            && o.contains("persistence failed: store.unreachable")),
        "the outage was seen"
    );
    cli(
        &[
            "probe",
            "--record",
            &format!("tcp://{}", open.local_addr().unwrap()),
        ],
        &cli_env,
        &mut out,
    );
    cli(&["history"], &cli_env, &mut out);
    az.restart();
    every_endpoint(&b, "sas, storage back", &mut out).await;

    out.push(("serve (key) log".into(), a.stop()));
    out.push(("serve (sas) log".into(), b.stop()));
    let log = rotel
        .wait_for(
            &["routeproof.run", "instance-sas"],
            std::time::Duration::from_secs(30),
        )
        .await;
    out.push(("rotel (spans, metrics)".into(), log));
    let blobs = crate::all_blobs(&az).await;
    assert!(
        blobs.iter().any(|(n, _)| n.starts_with("last/"))
            && blobs.iter().any(|(n, _)| n.starts_with("history/")),
        "{:?}",
        blobs.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (name, body) in blobs {
        out.push((format!("blob {name}"), body));
    }

    assert!(
        out.iter()
            .any(|(l, o)| l == "serve (sas) log" && o.contains("TRACE")),
        "the logs are at TRACE"
    );
    for (what, needle) in &needles {
        for (label, text) in &out {
            assert!(
                !text.contains(needle.as_str()),
                "{what} is in {label}:\n{text}"
            );
        }
    }
    drop(open);
}
