//! `routeproof serve`: the process the Functions host starts. It finds its port, config
//! (a file, or the compiled-in default when the package has none) and budgets, then
//! serves until killed.
//!
//! Exit codes matter to the host (docs/host-contract.md §1.6): exit 0 is never restarted, so
//! this never exits 0 while it should be serving; a bad start-up exits 2 with one line on
//! stderr (the host shows the last three stderr lines as the crash message).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets, filter_fn};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::{self, process_env};

use super::startup::{build, check};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Listen address, e.g. 0.0.0.0:8080 in a container. The Functions host always
    /// connects to 127.0.0.1, so under the host leave this unset.
    #[arg(long, value_name = "IP:PORT", conflicts_with = "port")]
    pub listen: Option<SocketAddr>,
    /// Port on 127.0.0.1. Default: FUNCTIONS_CUSTOMHANDLER_PORT, which the host sets.
    #[arg(long)]
    pub port: Option<u16>,
    /// Config file. Default: config/default.toml next to the binary, then under
    /// FUNCTIONS_APP_ROOT_PATH, then the default compiled into the binary.
    #[arg(long, env = "ROUTEPROOF_CONFIG")]
    pub config: Option<PathBuf>,
    /// Budget of a run started by /api/probe (kept under the 230 s front-end limit).
    #[arg(
        long,
        env = "ROUTEPROOF_HTTP_DEADLINE",
        default_value = HTTP_DEADLINE,
        value_name = "DURATION"
    )]
    pub http_deadline: String,
    /// Budget of a timer run (kept under host.json's functionTimeout).
    #[arg(
        long,
        env = "ROUTEPROOF_TIMER_DEADLINE",
        default_value = TIMER_DEADLINE,
        value_name = "DURATION"
    )]
    pub timer_deadline: String,
}

/// The budgets' defaults, in clap's definition above and in `bare`.
const HTTP_DEADLINE: &str = "20s";
const TIMER_DEADLINE: &str = "4m";

/// The arguments of a bare `routeproof serve` (how the Functions host starts us:
/// host.json's `defaultExecutablePath` plus `arguments`), read from the environment
/// (`env`: the process's, `std::env::var_os`) by the rules clap applies to the three
/// settings `ServeArgs` takes from it: a variable that is set is the value, even empty.
/// Two cases clap reports as errors, an empty `ROUTEPROOF_CONFIG` and a budget that is
/// not UTF-8, are `None` here, as is any other command line: the full parser then reads
/// it and reports. Not clap, because building even this one subcommand's parser was
/// 75 µs of the 0.44 ms between `main` and the first answer (docs/benchmarks.md, "Cold
/// start"); a process test checks that both read the same settings.
pub fn bare(
    argv: impl IntoIterator<Item = std::ffi::OsString>,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<ServeArgs> {
    let mut argv = argv.into_iter();
    let (_, sub, rest) = (argv.next()?, argv.next()?, argv.next());
    if sub != "serve" || rest.is_some() {
        return None;
    }
    let budget = |key: &str, default: &str| match env(key) {
        None => Some(default.to_string()),
        Some(v) => v.into_string().ok(),
    };
    let config = match env("ROUTEPROOF_CONFIG") {
        None => None,
        Some(v) if v.is_empty() => return None,
        Some(v) => Some(PathBuf::from(v)),
    };
    Some(ServeArgs {
        listen: None,
        port: None,
        config,
        http_deadline: budget("ROUTEPROOF_HTTP_DEADLINE", HTTP_DEADLINE)?,
        timer_deadline: budget("ROUTEPROOF_TIMER_DEADLINE", TIMER_DEADLINE)?,
    })
}

/// Runs the server; returns only on a fatal error or a signal.
pub fn main(args: ServeArgs) -> ExitCode {
    let under_host = process_env("FUNCTIONS_CUSTOMHANDLER_PORT").is_some();
    // Listen before anything else: the host's readiness poll (and any early request)
    // then waits in the backlog and is answered the moment the server runs, instead of
    // being refused and retried a poll interval later (docs/benchmarks.md, "Cold start").
    let early =
        listen_addr(&args, &process_env).and_then(|addr| listen_now(addr).map(|l| (addr, l)));
    let (addr, std_listener) = match early {
        Ok(v) => v,
        Err(msg) => return fatal(&msg),
    };
    let checked = match check(
        args.config.as_deref(),
        &args.http_deadline,
        &args.timer_deadline,
        addr,
    ) {
        Ok(v) => v,
        Err(msg) => return fatal(&msg),
    };
    // The config is valid, so we are ready: a poll already waiting is answered now, before
    // the runtime's thread is started. The runtime and its workers then start on that
    // thread; meanwhile, and until the first poll is answered, this one answers the host's
    // readiness polls from the socket (`super::early`), and the host need not wait for
    // threads, hyper and axum.
    let waiting = super::early::answer_waiting(&std_listener);
    let building = std::thread::spawn(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    });
    let early = super::early::continue_until(&std_listener, waiting, || building.is_finished());
    // After the early loop (which ends once a poll is answered, a request for the real
    // server arrives, or a poll interval passes), what cannot fail on the config and the
    // readiness answer does not wait for: logging, then the engine, exporters and store.
    // Nothing before this point logs (`check`).
    init_logging();
    if under_host && process_env("ROUTEPROOF_SCHEDULE").is_none_or(|s| s.trim().is_empty()) {
        // "warn" in the line makes the host log it as a warning, not an error.
        eprintln!(
            "routeproof serve: warning: app setting ROUTEPROOF_SCHEDULE is not set, so the host cannot \
             index the `scheduled` function; set it (default 0 */5 * * * *)"
        );
    }
    let (state, config_path) = match build(checked) {
        Ok(v) => v,
        Err(msg) => return fatal(&msg),
    };
    let rt = match building.join() {
        Ok(Ok(rt)) => rt,
        Ok(Err(e)) => return fatal(&format!("cannot start the runtime: {e}")),
        Err(_) => return fatal("cannot start the runtime: its thread panicked"),
    };
    let signalled = Arc::new(AtomicBool::new(false));
    let result = rt.block_on(async {
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!(
            listen = %addr,
            config = %config_path,
            targets = state.targets().len(),
            adhoc = state.adhoc().is_some(),
            http_deadline_ms = state.http_deadline().as_millis() as u64,
            timer_deadline_ms = state.timer_deadline().as_millis() as u64,
            version = env!("CARGO_PKG_VERSION"),
            "routeproof serving"
        );
        let flag = Arc::clone(&signalled);
        let stop = shutdown_signal();
        // The accept loop runs on a worker, the thread that also polls the sockets, so
        // an accepted connection is not handed across threads before it is served.
        let server = tokio::spawn(super::server::run_with(
            listener,
            early,
            state,
            async move {
                stop.await;
                flag.store(true, Ordering::SeqCst);
                tracing::info!("signal received, finishing in-flight requests");
            },
        ));
        match server.await {
            Ok(res) => res.map_err(|e| format!("server stopped: {e}")),
            Err(e) => Err(format!("server stopped: {e}")),
        }
    });
    match result {
        Err(msg) => fatal(&msg),
        // A signal outside the host is an ordinary stop; under the host any exit is a
        // failure it must see (143 = terminated by SIGTERM), so it restarts us.
        Ok(()) if signalled.load(Ordering::SeqCst) && !under_host => ExitCode::SUCCESS,
        Ok(()) if signalled.load(Ordering::SeqCst) => ExitCode::from(143),
        Ok(()) => fatal("server stopped without a signal"),
    }
}

fn fatal(msg: &str) -> ExitCode {
    // One line: the host keeps the last three stderr lines as the crash message.
    let line: String = msg
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    eprintln!("routeproof serve: {line}");
    ExitCode::from(2)
}

/// A listening socket, outside any runtime (the runtime adopts it later). Address reuse
/// as tokio's own `bind` sets it, so a restarted handler can take the port back at once.
fn listen_now(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    use socket2::{Domain, Socket, Type};
    let bind = || -> std::io::Result<std::net::TcpListener> {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        Ok(s.into())
    };
    bind().map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// `--listen`, else `127.0.0.1:--port`, else the port the host hands over. Never
/// "localhost": it may resolve to ::1, which the host does not try.
pub fn listen_addr(args: &ServeArgs, env: config::EnvLookup) -> Result<SocketAddr, String> {
    if let Some(a) = args.listen {
        return Ok(a);
    }
    let port = match args.port {
        Some(p) => p,
        None => {
            let (key, raw) = ["FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT"]
                .iter()
                .find_map(|k| env(k).map(|v| (*k, v)))
                .ok_or("no port: the Functions host sets FUNCTIONS_CUSTOMHANDLER_PORT; standalone, pass --port N or --listen IP:PORT")?;
            raw.trim()
                .parse::<u16>()
                .map_err(|_| format!("{key}=`{raw}` is not a port number"))?
        }
    };
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// JSON lines on stdout (the host logs each as Information under Host.Function.Console);
/// errors, and only errors, on stderr (the host logs those as Error).
fn init_logging() {
    let filter = log_filter(EnvFilter::try_from_env("ROUTEPROOF_LOG").ok());
    let stdout = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_writer(std::io::stdout)
        .with_filter(filter)
        .with_filter(filter_fn(|m| *m.level() != tracing::Level::ERROR));
    let stderr = fmt::layer()
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_filter(LevelFilter::ERROR);
    let _ = tracing_subscriber::registry()
        .with(stdout)
        .with(stderr)
        .try_init();
}

/// `ROUTEPROOF_LOG` when it is set and valid (any `EnvFilter` directive), else the default:
/// info, with the resolver's and exporters' own logs off. The default is a plain per-target
/// filter (`Targets`), which is all it needs: building an `EnvFilter` was 33 k instructions
/// before the first answer (docs/benchmarks.md, "Cold start").
fn log_filter<S: tracing::Subscriber>(
    configured: Option<EnvFilter>,
) -> Box<dyn tracing_subscriber::layer::Filter<S> + Send + Sync> {
    match configured {
        Some(f) => FilterExt::boxed(f),
        None => FilterExt::boxed(
            crate::telemetry::quiet_filter(DEFAULT_LOG)
                .parse::<Targets>()
                .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO)),
        ),
    }
}

const DEFAULT_LOG: &str = "info,hickory_net=off,hickory_resolver=off,hickory_proto=off";

/// SIGTERM (the host's stop) or SIGINT, registered when this is called, inside the
/// runtime and before the server takes a connection: a stop that comes right after the
/// first request is a graceful one, not the default action (axum polls the returned
/// future on a task of its own, which may first run later).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        let wait = |s: Option<Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        async move {
            tokio::select! {
                _ = wait(term) => {},
                _ = wait(int) => {},
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        ServeArgs {
            listen: None,
            port: None,
            config: None,
            http_deadline: HTTP_DEADLINE.into(),
            timer_deadline: TIMER_DEADLINE.into(),
        }
    }

    #[test]
    fn the_default_log_filter_keeps_info_and_silences_the_resolver_and_exporters() {
        use tracing_subscriber::layer::Filter;
        let targets: Targets = crate::telemetry::quiet_filter(DEFAULT_LOG).parse().unwrap();
        for (target, level, on) in [
            ("routeproof::handler", tracing::Level::INFO, true),
            ("routeproof::handler", tracing::Level::DEBUG, false),
            ("hickory_resolver::lookup", tracing::Level::WARN, false),
            ("hickory_proto::udp", tracing::Level::ERROR, false),
            ("opentelemetry_sdk", tracing::Level::WARN, false),
            (
                "opentelemetry_application_insights",
                tracing::Level::ERROR,
                false,
            ),
            ("tokio", tracing::Level::WARN, true),
        ] {
            assert_eq!(targets.would_enable(target, &level), on, "{target} {level}");
        }
        let boxed = log_filter::<tracing_subscriber::Registry>(None);
        assert_eq!(boxed.max_level_hint(), Some(LevelFilter::INFO));
        let configured = log_filter::<tracing_subscriber::Registry>(Some(EnvFilter::new("debug")));
        assert_eq!(configured.max_level_hint(), Some(LevelFilter::DEBUG));
    }

    #[test]
    fn a_bare_serve_parses_as_the_full_command_line_does() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: Cmd,
        }
        #[derive(clap::Subcommand)]
        enum Cmd {
            Serve(ServeArgs),
        }
        let argv = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        let process = |k: &str| std::env::var_os(k);
        let Cmd::Serve(full) = Cli::try_parse_from(["routeproof", "serve"]).unwrap().cmd;
        let fast = bare(argv(&["routeproof", "serve"]), &process).expect("a bare serve");
        // The same environment: the same arguments, env defaults included (settings the
        // test process has set included; tests/handler/process.rs sets them).
        assert_eq!(format!("{fast:?}"), format!("{full:?}"));
        // Anything else goes to the full parser, which reports its own errors and help.
        for other in [
            &["routeproof"][..],
            &["routeproof", "probe"],
            &["routeproof", "serve", "--port", "8080"],
            &["routeproof", "serve", "--help"],
            &["routeproof", "servee"],
        ] {
            assert!(bare(argv(other), &process).is_none(), "{other:?}");
        }
    }

    #[test]
    fn a_bare_serve_reads_its_three_settings_and_leaves_what_clap_rejects_to_clap() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        let serve = || ["routeproof", "serve"].map(OsString::from);
        let unset = bare(serve(), &|_| None).unwrap();
        assert_eq!(format!("{unset:?}"), format!("{:?}", args()));
        let set = |k: &str| {
            Some(OsString::from(match k {
                "ROUTEPROOF_CONFIG" => "/home/site/wwwroot/routeproof.toml",
                "ROUTEPROOF_HTTP_DEADLINE" => "7s",
                "ROUTEPROOF_TIMER_DEADLINE" => "",
                _ => return None,
            }))
        };
        let a = bare(serve(), &set).unwrap();
        assert_eq!(
            a.config.as_deref(),
            Some(std::path::Path::new("/home/site/wwwroot/routeproof.toml"))
        );
        assert_eq!(a.http_deadline, "7s");
        assert_eq!(
            a.timer_deadline, "",
            "set but empty is the value (then rejected as a duration), as clap has it"
        );
        let empty_config = |k: &str| (k == "ROUTEPROOF_CONFIG").then(OsString::new);
        assert!(bare(serve(), &empty_config).is_none(), "clap's usage error");
        let not_utf8 = |k: &str| {
            (k == "ROUTEPROOF_HTTP_DEADLINE").then(|| OsString::from_vec(vec![b'2', 0xff]))
        };
        assert!(bare(serve(), &not_utf8).is_none(), "clap's parse error");
    }

    #[test]
    fn listen_address_sources() {
        let env = |k: &str| (k == "FUNCTIONS_CUSTOMHANDLER_PORT").then(|| "41234".to_string());
        assert_eq!(
            listen_addr(&args(), &env).unwrap(),
            "127.0.0.1:41234".parse().unwrap()
        );
        let legacy = |k: &str| (k == "FUNCTIONS_HTTPWORKER_PORT").then(|| "5000".to_string());
        assert_eq!(
            listen_addr(&args(), &legacy).unwrap(),
            "127.0.0.1:5000".parse().unwrap()
        );
        let a = ServeArgs {
            port: Some(8080),
            ..args()
        };
        assert_eq!(
            listen_addr(&a, &env).unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        let a = ServeArgs {
            listen: Some("0.0.0.0:80".parse().unwrap()),
            ..args()
        };
        assert_eq!(
            listen_addr(&a, &env).unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert!(
            listen_addr(&args(), &|_| None)
                .unwrap_err()
                .contains("FUNCTIONS_CUSTOMHANDLER_PORT")
        );
        let bad = |k: &str| (k == "FUNCTIONS_CUSTOMHANDLER_PORT").then(|| "http".to_string());
        assert!(
            listen_addr(&args(), &bad)
                .unwrap_err()
                .contains("not a port")
        );
    }
}
