//! What `routeproof serve` reads and builds at start-up, in two steps: `check`, before
//! the first readiness answer, finds every reason to refuse a start (the config, the
//! budgets, the ad-hoc switch, the DNS servers) and logs nothing; `build`, after it,
//! makes the state and sets up what can only warn (host.json's `functionTimeout`, the
//! exporters, the store). Where the config file and host.json are looked for is here too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::app::{self, ConfigSource};
use crate::config::{self, process_env};
use crate::setting;

use super::state::{Settings, State, parse_function_timeout};

/// What start-up checks before it answers a readiness poll: the config (a file, or
/// the compiled-in default) and every setting that can refuse it. A config file that
/// exists but is invalid fails here, with its one-line reason; no file at all is a bare
/// deployment, which still answers with the compiled-in default. Nothing here logs:
/// logging is set up after the first answer.
pub struct Checked {
    state: super::state::Checked,
    settings: Settings,
    discovery: crate::discover::Summary,
    shown: String,
}

/// `config`, `http_deadline` and `timer_deadline` as `ServeArgs` has them (the command
/// line, else the environment); `addr` is where the handler listens.
pub fn check(
    config: Option<&Path>,
    http_deadline: &str,
    timer_deadline: &str,
    addr: SocketAddr,
) -> Result<Checked, String> {
    let path = config_path(config, &process_env);
    let (source, shown) = match &path {
        Some(p) => (ConfigSource::File(p), p.display().to_string()),
        None => (
            ConfigSource::Text(app::DEFAULT_CONFIG),
            "(compiled-in default)".to_string(),
        ),
    };
    let composed =
        app::compose(source, &process_env, &app::process_vars).map_err(|e| e.to_string())?;
    let settings = Settings {
        http_deadline: config::duration(
            "ROUTEPROOF_HTTP_DEADLINE",
            http_deadline,
            Duration::from_secs(3600),
        )
        .map_err(|e| e.to_string())?,
        timer_deadline: config::duration(
            "ROUTEPROOF_TIMER_DEADLINE",
            timer_deadline,
            Duration::from_secs(3600),
        )
        .map_err(|e| e.to_string())?,
        allow_adhoc: setting::yes_no("ROUTEPROOF_ALLOW_ADHOC", &process_env)?,
        handler_port: Some(addr.port()),
        ..Settings::default()
    };
    let state = State::check(composed.config, settings.allow_adhoc, &process_env)
        .map_err(|e| e.to_string())?;
    Ok(Checked {
        state,
        settings,
        discovery: composed.discovery,
        shown,
    })
}

/// The state from a checked config, with what may only warn: host.json's
/// `functionTimeout`, the exporters and the shared store.
pub fn build(checked: Checked) -> Result<(Arc<State>, String), String> {
    let Checked {
        state,
        settings,
        discovery,
        shown,
    } = checked;
    app::log_discovery(&discovery);
    let settings = Settings {
        function_timeout: app_root(&process_env)
            .and_then(|root| function_timeout(&root.join("host.json"))),
        // OTel and App Insights export, only when their standard variables are set.
        telemetry: app::telemetry(),
        store: super::state::StoreHandle::from_env(&process_env),
        ..settings
    };
    let state = state
        .build(settings, &process_env)
        .map_err(|e| e.to_string())?;
    Ok((state, shown))
}

/// The config file: explicit, else `config/default.toml` next to the binary (where
/// scripts/package.sh puts it), else under the app root the host names; `None` when
/// there is none (the caller falls back to the compiled-in default).
pub fn config_path(explicit: Option<&Path>, env: config::EnvLookup) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    [exe_dir(), env("FUNCTIONS_APP_ROOT_PATH").map(PathBuf::from)]
        .into_iter()
        .flatten()
        .map(|dir| dir.join("config").join("default.toml"))
        .find(|p| p.is_file())
}

fn app_root(env: config::EnvLookup) -> Option<PathBuf> {
    env("FUNCTIONS_APP_ROOT_PATH")
        .map(PathBuf::from)
        .or_else(exe_dir)
}

/// The binary's directory, looked up once (`config_path` and `app_root` both ask).
fn exe_dir() -> Option<PathBuf> {
    static DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        std::env::current_exe()
            .ok()?
            .parent()
            .map(Path::to_path_buf)
    })
    .clone()
}

/// host.json's `functionTimeout`, so our budgets stay under it. Unreadable files are
/// not fatal: the host itself has already accepted host.json by the time we start.
fn function_timeout(host_json: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(host_json).ok()?;
    let v: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(path = %host_json.display(), error = %e, "host.json not read; budgets not capped by functionTimeout");
            return None;
        }
    };
    v.get("functionTimeout")?
        .as_str()
        .and_then(parse_function_timeout)
}
