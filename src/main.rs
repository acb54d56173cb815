//! The `routeproof` command: `probe`, `check`, `demo`. Exit codes: 0 every target ok,
//! 1 a target failed, 2 usage or config error (clap's own usage errors are 2 as well).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use routeproof::app::{self, ConfigSource};
use routeproof::config::{self, ConfigError, TargetConfig, process_env};
use routeproof::render;
use routeproof::target;
use routeproof::telemetry::{Exports, FLUSH_BOUND, Parent, Trigger};

// stdout may be a pipe whose reader has gone (`routeproof probe --json | head -1`): the
// output ends there, the process goes on to its exit code. std's print macros would panic
// on the closed pipe, so this file's `println!`/`print!` are these.
macro_rules! println {
    ($($t:tt)+) => { crate::out(format_args!("{}\n", format_args!($($t)+))) };
}
macro_rules! print {
    ($($t:tt)+) => { crate::out(format_args!($($t)+)) };
}

fn out(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args)
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("routeproof: cannot write the output: {e}");
    }
}

#[derive(Parser)]
#[command(
    name = "routeproof",
    version,
    about = "Proves, layer by layer, that this app's private network route works"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Probe targets from a config file and/or the command line.
    Probe(ProbeArgs),
    /// Validate a config file and print the plan, without sending anything.
    Check {
        #[arg(long, env = "ROUTEPROOF_CONFIG")]
        config: PathBuf,
    },
    /// Probe built-in loopback peers (a Private-Link-shaped DNS zone, open and closed
    /// ports): a complete report, offline.
    Demo {
        #[arg(long)]
        json: bool,
    },
    /// Serve the Azure Functions custom-handler API (the Functions host runs this).
    Serve(routeproof::handler::ServeArgs),
    /// Runs kept in the shared store (AzureWebJobsStorage or ROUTEPROOF_STORAGE;
    /// docs/storage.md), oldest first, with uptime per target.
    History(HistoryArgs),
}

#[derive(Args)]
struct HistoryArgs {
    /// Only this target (each run reduced to it).
    #[arg(long)]
    target: Option<String>,
    /// From (RFC 3339 or unix seconds); default: the retention window.
    #[arg(long)]
    from: Option<String>,
    /// To (RFC 3339 or unix seconds); default: now.
    #[arg(long)]
    to: Option<String>,
    /// At most this many runs (the newest).
    #[arg(long)]
    limit: Option<usize>,
    /// Print JSON (`{"history":…,"uptime":…}`) instead of lines.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ProbeArgs {
    /// Config file (TOML) with named targets and engine settings.
    #[arg(long, env = "ROUTEPROOF_CONFIG")]
    config: Option<PathBuf>,
    /// Print the JSON report instead of the text table.
    #[arg(long)]
    json: bool,
    /// DNS server to ask, IP[:PORT]; repeat for several (the first is the primary).
    /// Overrides the config, WEBSITE_DNS_SERVER and resolv.conf.
    #[arg(long = "dns-server", value_name = "IP[:PORT]")]
    dns_server: Vec<String>,
    /// Run deadline, e.g. 10s (shortens the config's engine.deadline).
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Targets probed at once.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Connect to every resolved address, not just the first that answers.
    #[arg(long)]
    all_addresses: bool,
    /// No progress line on stderr (it is drawn only when stderr is a terminal; errors
    /// and warnings still go there).
    #[arg(long, short)]
    quiet: bool,
    /// Write the run to the shared store (AzureWebJobsStorage or ROUTEPROOF_STORAGE),
    /// next to the app's own runs (docs/storage.md).
    #[arg(long)]
    record: bool,
    /// Target URIs: dns://NAME, tcp://HOST:PORT, tls://, http(s)://, sqlserver://, postgres://, mysql://, redis(s)://, amqp(s)://, amqpws(s)://, kafka://, env:VAR.
    targets: Vec<String>,
}

fn main() -> ExitCode {
    if let Some(args) =
        routeproof::handler::serve::bare(std::env::args_os(), &|k| std::env::var_os(k))
    {
        return routeproof::handler::serve::main(args);
    }
    cli()
}

/// Every command line but a bare `serve`. Not inlined into `main`: its frame holds the
/// commands' futures (about 28 KiB), and `main`'s stack pages are touched, one page
/// fault each, before the host's start reaches its first answer (docs/benchmarks.md,
/// "Cold start").
#[inline(never)]
fn cli() -> ExitCode {
    let cli = Cli::parse();
    // serve sets up its own logging (JSON on stdout) and runtime.
    let cli = match cli.cmd {
        Cmd::Serve(args) => return routeproof::handler::serve::main(args),
        cmd => Cli { cmd },
    };
    init_logging();
    // `probe` exports its run when the standard OTEL_* / App Insights variables are
    // set, as the timer does; built here, outside the runtime, and dropped after it.
    let exports = match &cli.cmd {
        Cmd::Probe(_) => app::telemetry(),
        _ => Default::default(),
    };
    // One thread: a one-shot run waits on the network, and without workers to wake it
    // spends 31 % less CPU per TCP probe (docs/benchmarks.md). `serve` keeps its workers.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("routeproof: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        match cli.cmd {
            Cmd::Probe(args) => probe(args, &exports).await,
            Cmd::Check { config } => check(&config),
            Cmd::Demo { json } => demo(json).await,
            Cmd::History(args) => history(args).await,
            Cmd::Serve(_) => unreachable!("dispatched above"),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("routeproof: {e}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr so stdout carries only the report (JSON pipes stay clean).
fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("ROUTEPROOF_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(routeproof::telemetry::quiet_filter(
                "warn,hickory_net=off,hickory_resolver=off",
            ))
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn probe(args: ProbeArgs, exports: &Exports) -> Result<ExitCode, ConfigError> {
    let source = match &args.config {
        Some(path) => ConfigSource::File(path),
        None => ConfigSource::Empty,
    };
    let composed = app::compose(source, &process_env, &app::process_vars)?;
    app::log_discovery(&composed.discovery);
    let mut cfg = composed.config;
    let mut source = "config";
    if !args.dns_server.is_empty() {
        cfg.engine.dns_servers = args
            .dns_server
            .iter()
            .map(|s| config::parse_dns_server(s).map_err(|m| ConfigError::new("--dns-server", m)))
            .collect::<Result<_, _>>()?;
        source = "cli";
    }
    if let Some(c) = args.concurrency {
        cfg.engine.concurrency = app::concurrency("--concurrency", c)?;
    }
    if args.all_addresses {
        cfg.engine.all_addresses = true;
    }
    let deadline = match &args.timeout {
        Some(t) => Some(config::duration("--timeout", t, Duration::from_secs(3600))?),
        None => None,
    };
    for (i, uri) in args.targets.iter().enumerate() {
        let spec = target::parse(uri, &process_env)
            .map_err(|e| ConfigError::new(format!("TARGET #{}", i + 1), e.0))?;
        cfg.targets.push(TargetConfig::adhoc(spec));
    }
    if cfg.targets.is_empty() {
        return Err(ConfigError::new(
            "TARGET",
            "nothing to probe: give target URIs or --config FILE (try `routeproof demo`)",
        ));
    }
    // A store named but unusable is a usage error before anything is probed.
    let store = match args.record {
        false => None,
        true => Some(open_store()?),
    };
    let engine = app::engine(cfg.engine, source, &process_env)?;
    // On a terminal, a progress line on stderr while the run goes on (stdout stays the
    // report only); erased before the report is printed.
    let report = if !args.quiet && std::io::stderr().is_terminal() {
        let line = Arc::new(render::progress::ProgressLine::stderr());
        let ticker = {
            let line = Arc::clone(&line);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(render::progress::MIN_REDRAW);
                loop {
                    every.tick().await;
                    line.tick_now();
                }
            })
        };
        let report = engine
            .run_observed(&cfg.targets, deadline, line.as_ref())
            .await;
        ticker.abort();
        line.clear();
        report
    } else {
        engine.run(&cfg.targets, deadline).await
    };
    print_report(&report, args.json);
    // A store that fails is said on stderr and never changes the exit code.
    if let Some(store) = &store {
        let scope = process_env("ROUTEPROOF_STORAGE_SCOPE")
            .unwrap_or_else(|| routeproof::store::settings::CLI_SCOPE.into());
        match store
            .record_in(&report, routeproof::store::Trigger::Cli, &scope)
            .await
        {
            Ok(w) => eprintln!("routeproof: recorded in {}", w.history_blob),
            Err(e) => eprintln!("routeproof: persistence failed: {}: {}", e.class, e.message),
        }
    }
    // After the report is out: a slow or dead collector delays the exit by at most
    // FLUSH_BOUND and never changes the exit code.
    // A pipeline that traces its steps hands its context down in TRACEPARENT (the
    // environment-variable carrier of W3C Trace Context).
    let traceparent = process_env("TRACEPARENT");
    exports
        .export_run(
            &report,
            Parent {
                traceparent: traceparent.as_deref(),
                invocation_id: None,
                trigger: Trigger::Cli,
            },
            FLUSH_BOUND,
        )
        .await;
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The shared store from the environment, or a usage error saying how to name one.
fn open_store() -> Result<routeproof::store::Store, ConfigError> {
    match routeproof::store::Store::from_env(&process_env) {
        None => Err(ConfigError::new(
            "ROUTEPROOF_STORAGE",
            "history is off: set AzureWebJobsStorage or ROUTEPROOF_STORAGE (docs/storage.md)",
        )),
        Some(Err(e)) => Err(ConfigError::new(
            "ROUTEPROOF_STORAGE",
            format!("{}: {}", e.class, e.message),
        )),
        Some(Ok(s)) => Ok(s),
    }
}

async fn history(args: HistoryArgs) -> Result<ExitCode, ConfigError> {
    use routeproof::handler::http_api::history::time_ms;
    let store = open_store()?;
    let filter = routeproof::store::HistoryFilter {
        target: args.target.clone(),
        from_ms: args
            .from
            .as_deref()
            .map(|v| time_ms("--from", v))
            .transpose()
            .map_err(|m| ConfigError::new("--from", m))?,
        to_ms: args
            .to
            .as_deref()
            .map(|v| time_ms("--to", v))
            .transpose()
            .map_err(|m| ConfigError::new("--to", m))?,
        scope: None,
        limit: args.limit,
    };
    let failed = |e: routeproof::store::StoreError| {
        eprintln!(
            "routeproof: the store could not be read: {}: {}",
            e.class, e.message
        );
        ExitCode::from(1)
    };
    let h = match store.history(&filter).await {
        Ok(h) => h,
        Err(e) => return Ok(failed(e)),
    };
    let uptime = match store.uptime().await {
        Ok(u) => u,
        Err(e) => return Ok(failed(e)),
    };
    let uptime: Vec<_> = uptime
        .into_iter()
        .filter(|u| args.target.as_ref().is_none_or(|t| *t == u.name))
        .collect();
    if args.json {
        let body = serde_json::json!({ "store": store.info(), "history": h, "uptime": uptime });
        match serde_json::to_string_pretty(&body) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("routeproof: cannot encode the history: {e}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", routeproof::render::history::lines(&h, &uptime));
    for s in &h.skipped {
        eprintln!("routeproof: skipped {}: {}", s.blob, s.reason);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &routeproof::report::Report, json: bool) {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("routeproof: cannot encode the report: {e}"),
        }
    } else {
        print!("{}", render::text::render(report));
    }
}

fn check(path: &std::path::Path) -> Result<ExitCode, ConfigError> {
    let app::Composed {
        config: cfg,
        discovery,
    } = app::compose(ConfigSource::File(path), &process_env, &app::process_vars)?;
    app::log_discovery(&discovery);
    let engine = routeproof::probe::Engine::check(cfg.engine.clone(), "config", &process_env)?;
    let e = &cfg.engine;
    println!(
        "config ok: {} target(s); deadline {}, concurrency {}, timeouts dns {} tcp {}",
        cfg.targets.len(),
        humantime::format_duration(e.deadline),
        e.concurrency,
        humantime::format_duration(e.timeouts.dns),
        humantime::format_duration(e.timeouts.tcp),
    );
    let rs: Vec<String> = engine
        .resolvers()
        .iter()
        .map(|r| format!("{} ({})", r.server, r.source))
        .collect();
    println!("dns servers: {}", rs.join(", "));
    println!(
        "discovery: {} ({}){}",
        if discovery.enabled { "on" } else { "off" },
        discovery.why,
        if discovery.enabled {
            format!(", {} target(s) added", discovery.added)
        } else {
            String::new()
        }
    );
    for n in &discovery.notes {
        println!("  note: {n}");
    }
    let p = &cfg.policy;
    if p.allow_adhoc {
        let mut allow: Vec<String> = p.nets.iter().map(|n| n.to_string()).collect();
        allow.extend(p.hosts.iter().map(|h| h.to_string()));
        println!(
            "ad-hoc targets: on (allow {}; at most {} per request, {} runs at once)",
            allow.join(", "),
            p.max_targets,
            p.max_concurrent
        );
    } else {
        println!("ad-hoc targets: off");
    }
    for t in &cfg.targets {
        let layers: Vec<&str> = t.spec.layers().iter().map(|l| l.as_str()).collect();
        let mut expect = Vec::new();
        if t.expect.private {
            expect.push("private".to_string());
        }
        if !t.expect.addresses.is_empty() {
            let a: Vec<String> = t.expect.addresses.iter().map(|n| n.to_string()).collect();
            expect.push(format!("addresses {}", a.join(",")));
        }
        if let Some(m) = t.expect.max_ms {
            expect.push(format!("max_ms {m}"));
        }
        println!(
            "  {}  {}  [{}]{}{}",
            t.name,
            t.spec,
            layers.join(" > "),
            t.source
                .as_deref()
                .map(|s| format!("  from {s}"))
                .unwrap_or_default(),
            if expect.is_empty() {
                String::new()
            } else {
                format!("  expect: {}", expect.join(", "))
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn demo(json: bool) -> Result<ExitCode, ConfigError> {
    let peers = routeproof::demo::DemoPeers::start()
        .await
        .map_err(|e| ConfigError::new("demo", format!("cannot start loopback peers: {e}")))?;
    let cfg = app::compose(
        ConfigSource::Text(&peers.config_toml()),
        &|_| None,
        &Vec::new,
    )?
    .config;
    let engine = app::engine(cfg.engine, "config", &|_| None)?;
    let report = engine.run(&cfg.targets, None).await;
    print_report(&report, json);
    if !json {
        println!(
            "\n(demo: every peer above ran inside this process on 127.0.0.1; three targets fail on purpose, to show classified failures)"
        );
    }
    // The demo's failures are the point of it: exit 0 when the report came out as designed.
    let as_designed = report.targets.iter().filter(|t| t.ok).count() == 1;
    Ok(if as_designed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
