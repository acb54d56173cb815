//! Independent TDS clients, run as subprocesses: python-tds, pymssql (FreeTDS 1.5
//! bundled), FreeTDS `tsql` (Debian) and node `tedious`. None was written here, so
//! a login they complete against [`super::TdsServer`] is evidence the server speaks
//! TDS, not a private dialect. `scripts/tds-clients.sh` installs them.
//!
//! Every client gets its own login/query timeout from the options, so a stalling
//! server makes the client fail instead of hanging the test; a watchdog kills a
//! client that outlives even that (it is a safety net, never an assertion).

use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What the client is told to do about encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTls {
    /// No encryption at all (python-tds without a CA, FreeTDS `off`, tedious false).
    Off,
    /// Encrypt the LOGIN7 only (python-tds `enc_login_only`, FreeTDS `request`).
    LoginOnly,
    /// Encrypt everything (python-tds with a CA, FreeTDS `require`, tedious true).
    Required,
    /// TDS 8.0 (FreeTDS 1.5 `strict`, tedious 'strict').
    Strict,
}

#[derive(Debug, Clone)]
pub struct Connect {
    pub port: u16,
    /// The server name for TLS checks and SNI where the client separates it from
    /// the address (python-tds, tedious); FreeTDS checks against 127.0.0.1.
    pub host: String,
    pub user: String,
    pub password: String,
    /// A FEDAUTH access token instead of user and password.
    pub token: Option<String>,
    pub tls: ClientTls,
    pub ca: Option<PathBuf>,
    pub database: Option<String>,
    pub query: String,
    /// The client's own login and query timeout.
    pub timeout_secs: u32,
}

impl Connect {
    pub fn new(port: u16, user: &str, password: &str) -> Connect {
        Connect {
            port,
            host: "sql.routeproof.test".into(),
            user: user.into(),
            password: password.into(),
            token: None,
            tls: ClientTls::Off,
            ca: None,
            database: None,
            query: "SELECT 1".into(),
            timeout_secs: 5,
        }
    }

    pub fn tls(mut self, tls: ClientTls, ca: &Path) -> Connect {
        self.tls = tls;
        self.ca = Some(ca.to_path_buf());
        self
    }
}

/// A client's verdict, normalised across clients.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub ok: bool,
    pub rows: Vec<Vec<Value>>,
    /// The SQL Server error number the client surfaced, if it exposes one.
    pub number: Option<u64>,
    pub message: String,
    /// Everything the client printed, for failure messages.
    pub output: String,
    /// The watchdog had to kill the client: it hung despite its own timeouts.
    pub hung: bool,
}

/// A client run in flight, so tests can hold runs of different clients in one list.
pub type Pending = Pin<Box<dyn Future<Output = Result<Outcome, String>> + Send>>;

/// Where the project's client installs live: `.venv` (gitignored) at the repo root.
fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv")
}

/// A Python that can import `modules`: the project venv first, then `python3`.
pub fn python_with(modules: &str) -> Result<PathBuf, String> {
    let candidates = [venv().join("bin/python"), PathBuf::from("python3")];
    for py in candidates {
        let ok = Command::new(&py)
            .args(["-c", &format!("import {modules}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(py);
        }
    }
    Err(format!(
        "no Python with `{modules}` importable (run scripts/tds-clients.sh)"
    ))
}

pub fn tsql() -> Result<PathBuf, String> {
    find_in_path("tsql").ok_or_else(|| {
        "FreeTDS tsql not installed (apt-get install freetds-bin, or scripts/tds-clients.sh)".into()
    })
}

/// node plus the tedious package installed under `.venv/node`.
pub fn tedious() -> Result<(PathBuf, PathBuf), String> {
    let node = find_in_path("node").ok_or("node not installed")?;
    let modules = venv().join("node/node_modules");
    if modules.join("tedious/package.json").exists() {
        Ok((node, modules))
    } else {
        Err("tedious not installed under .venv/node (run scripts/tds-clients.sh)".into())
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

const WATCHDOG: &str = "\n[killed by the test watchdog]";

/// Runs a client to completion off the async runtime, feeding `stdin`.
pub async fn run(mut cmd: Command, stdin: Option<String>) -> (bool, String) {
    // The watchdog's verdict is in the text (see `WATCHDOG`), so callers need not
    // thread a third value through.
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn client");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            let _ = input.write_all(text.as_bytes());
        }
        drop(input);
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let out = drain(Box::new(child.stdout.take().expect("stdout")));
        let err = drain(Box::new(child.stderr.take().expect("stderr")));
        // Safety net only: clients time out on their own well before this.
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait client") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let text = format!(
            "{}{}{}",
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
            if status.is_none() { WATCHDOG } else { "" }
        );
        (status.is_some_and(|s| s.success()), text)
    })
    .await
    .expect("client runner")
}

/// Shared by python-tds and pymssql: connect, run the query, print one JSON line.
const PY_CLIENT: &str = r#"
import json, os, socket, sys
e = os.environ
def emit(d):
    print("RESULT " + json.dumps(d, default=str)); sys.exit(0)
try:
    t = int(e["RP_TIMEOUT"])
    if e["RP_DRIVER"] == "pytds":
        import pytds
        kw = dict(port=int(e["RP_PORT"]), login_timeout=t, timeout=t, disable_connect_retry=True)
        if e.get("RP_TOKEN"):
            kw["access_token_callable"] = lambda: e["RP_TOKEN"]
        else:
            kw.update(user=e["RP_USER"], password=e["RP_PASSWORD"])
        if e.get("RP_CA"):
            kw["cafile"] = e["RP_CA"]
            kw["enc_login_only"] = e["RP_TLS"] == "login_only"
        if e.get("RP_DATABASE"):
            kw["database"] = e["RP_DATABASE"]
        # Dial 127.0.0.1 but present the server name for SNI and the certificate
        # check, as a client of a private endpoint does.
        kw["sock"] = socket.create_connection(("127.0.0.1", int(e["RP_PORT"])), t)
        conn = pytds.connect(dsn=e["RP_HOST"], **kw)
    else:
        import pymssql
        conn = pymssql.connect(server="rp", port=e["RP_PORT"], user=e["RP_USER"], password=e["RP_PASSWORD"],
                               database=e.get("RP_DATABASE", ""), login_timeout=t, timeout=t)
    cur = conn.cursor()
    cur.execute(e["RP_QUERY"])
    rows = [list(r) for r in cur.fetchall()]
    conn.close()
    emit({"ok": True, "rows": rows})
except SystemExit:
    raise
except BaseException as x:
    number = getattr(x, "msg_no", None) or getattr(x, "number", None)
    # pymssql: args are (number, message), sometimes nested one level deeper
    first = x.args[0] if x.args else None
    if isinstance(first, tuple) and first:
        first = first[0]
    if number is None and isinstance(first, int):
        number = first
    emit({"ok": False, "number": number, "message": "%s: %s" % (type(x).__name__, x)})
"#;

fn outcome(success: bool, output: String) -> Outcome {
    let hung = output.ends_with(WATCHDOG);
    let parsed = output
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str::<Value>(j).ok());
    let Some(v) = parsed else {
        return Outcome {
            ok: false,
            message: format!("client printed no result (exit ok: {success})"),
            output,
            hung,
            ..Outcome::default()
        };
    };
    Outcome {
        ok: v["ok"].as_bool().unwrap_or(false),
        rows: v["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r.as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default(),
        number: v["number"].as_u64(),
        message: v["message"].as_str().unwrap_or_default().to_string(),
        output,
        hung,
    }
}

fn py_env(cmd: &mut Command, driver: &str, c: &Connect) {
    cmd.arg("-c").arg(PY_CLIENT);
    cmd.env("RP_DRIVER", driver)
        .env("RP_PORT", c.port.to_string())
        .env("RP_HOST", &c.host)
        .env("RP_USER", &c.user)
        .env("RP_PASSWORD", &c.password)
        .env("RP_QUERY", &c.query)
        .env("RP_TIMEOUT", c.timeout_secs.to_string())
        .env(
            "RP_TLS",
            match c.tls {
                ClientTls::LoginOnly => "login_only",
                _ => "full",
            },
        );
    if let Some(token) = &c.token {
        cmd.env("RP_TOKEN", token);
    }
    if let Some(db) = &c.database {
        cmd.env("RP_DATABASE", db);
    }
}

/// python-tds 1.17: PRELOGIN/TLS/LOGIN7 in pure Python, TLS via pyOpenSSL (TLS 1.2).
/// It has no TDS 8.0 support.
pub async fn pytds(c: &Connect) -> Result<Outcome, String> {
    let needs_tls = c.tls != ClientTls::Off;
    let py = python_with(if needs_tls { "pytds, OpenSSL" } else { "pytds" })?;
    if c.tls == ClientTls::Strict {
        return Err("python-tds has no TDS 8.0 (strict) mode".into());
    }
    let mut cmd = Command::new(py);
    py_env(&mut cmd, "pytds", c);
    if needs_tls {
        cmd.env("RP_CA", c.ca.as_ref().expect("CA for TLS"));
    }
    let (ok, out) = run(cmd, None).await;
    Ok(outcome(ok, out))
}

/// A freetds.conf with one server, `rp`, for both tsql and pymssql's FreeTDS.
fn freetds_conf(dir: &Path, c: &Connect, tds_version: &str) -> PathBuf {
    let encryption = match c.tls {
        ClientTls::Off => "off",
        ClientTls::LoginOnly => "request",
        ClientTls::Required => "require",
        ClientTls::Strict => "strict",
    };
    let mut conf = format!(
        "[rp]\n\thost = 127.0.0.1\n\tport = {}\n\ttds version = {tds_version}\n\tencryption = {encryption}\n\
         \tconnect timeout = {t}\n\ttimeout = {t}\n",
        c.port,
        t = c.timeout_secs
    );
    if let Some(ca) = &c.ca {
        conf.push_str(&format!(
            "\tca file = {}\n\tcheck certificate hostname = yes\n",
            ca.display()
        ));
    }
    let path = dir.join("freetds.conf");
    std::fs::write(&path, conf).expect("write freetds.conf");
    path
}

/// FreeTDS `tsql` (1.3.17 in Debian 12, GnuTLS). Outcome rows are the output lines
/// between the query and "(N row affected)"; the SQL error number is taken from a
/// "Msg N" line.
pub async fn tsql_login(c: &Connect) -> Result<Outcome, String> {
    let tsql = tsql()?;
    if c.tls == ClientTls::Strict {
        return Err("FreeTDS 1.3 has no TDS 8.0 (strict) mode".into());
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = freetds_conf(dir.path(), c, "7.4");
    let mut cmd = Command::new(tsql);
    // `-o q`: besides dropping prompts, quiet mode stops tsql's once-a-second
    // SIGALRM progress counter, whose EINTR restarts FreeTDS' login timeout
    // countdown every second, so a stalled server would be waited on forever.
    cmd.args(["-o", "q", "-S", "rp", "-U", &c.user, "-P", &c.password])
        .env("FREETDSCONF", &conf)
        .env("HOME", dir.path()); // no ~/.freetds.conf of the user's
    // FreeTDS' protocol log, for debugging a failing test by hand.
    match std::env::var_os("ROUTEPROOF_TDSDUMP") {
        Some(dump) => cmd.env("TDSDUMP", dump),
        None => cmd.env_remove("TDSDUMP"),
    };
    if let Some(db) = &c.database {
        cmd.args(["-D", db]);
    }
    let (success, output) = run(cmd, Some(format!("{}\ngo\nexit\n", c.query))).await;
    let number = output.lines().find_map(|l| {
        l.trim_start()
            .strip_prefix("Msg ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    });
    // Quiet output is just the result set: a header line (empty for an unnamed
    // column, so dropped) and one line per row; stdout comes first in `output`.
    let rows: Vec<Vec<Value>> = output
        .lines()
        .take_while(|l| !l.starts_with("Msg ") && !l.starts_with("Error "))
        .filter(|l| !l.trim().is_empty())
        .map(|l| vec![Value::String(l.trim().to_string())])
        .collect();
    // tsql exits 0 after a failed query too; its library errors read "Error N".
    let library_error = output.lines().any(|l| l.starts_with("Error "));
    let ok = success && number.is_none() && !library_error;
    Ok(Outcome {
        ok,
        rows,
        number,
        message: String::new(),
        hung: output.ends_with(WATCHDOG),
        output,
    })
}

/// pymssql 2.4 with its bundled FreeTDS 1.5 (OpenSSL): the client here that speaks
/// TDS 8.0 strict besides tedious.
pub async fn pymssql(c: &Connect) -> Result<Outcome, String> {
    let py = python_with("pymssql")?;
    let dir = tempfile::tempdir().expect("temp dir");
    let version = if c.tls == ClientTls::Strict {
        "8.0"
    } else {
        "7.4"
    };
    let conf = freetds_conf(dir.path(), c, version);
    let mut cmd = Command::new(py);
    py_env(&mut cmd, "pymssql", c);
    cmd.env("FREETDSCONF", &conf).env("HOME", dir.path());
    let (ok, out) = run(cmd, None).await;
    Ok(outcome(ok, out))
}

const NODE_CLIENT: &str = r#"
const { Connection, Request } = require('tedious');
const fs = require('fs');
const e = process.env;
const emit = d => { console.log('RESULT ' + JSON.stringify(d)); process.exit(0); };
const encrypt = e.RP_TLS === 'strict' ? 'strict' : e.RP_TLS === 'required';
const authentication = e.RP_TOKEN
  ? { type: 'azure-active-directory-access-token', options: { token: e.RP_TOKEN } }
  : { type: 'default', options: { userName: e.RP_USER, password: e.RP_PASSWORD } };
const c = new Connection({ server: '127.0.0.1', authentication, options: {
  port: +e.RP_PORT, encrypt, trustServerCertificate: false, serverName: e.RP_HOST,
  database: e.RP_DATABASE || undefined,
  connectTimeout: 1000 * e.RP_TIMEOUT, requestTimeout: 1000 * e.RP_TIMEOUT,
  cryptoCredentialsDetails: e.RP_CA ? { ca: fs.readFileSync(e.RP_CA) } : undefined } });
c.on('connect', err => {
  if (err) emit({ ok: false, number: err.number ?? null, message: err.code + ': ' + err.message });
  const rows = [];
  const r = new Request(e.RP_QUERY, err => emit(err
    ? { ok: false, number: err.number ?? null, message: err.code + ': ' + err.message }
    : { ok: true, rows }));
  r.on('row', cols => rows.push(cols.map(x => x.value)));
  c.execSql(r);
});
c.on('error', err => emit({ ok: false, number: null, message: 'error event: ' + err.message }));
c.connect();
"#;

/// tedious 19 (node): sends SQL as `sp_executesql` RPCs, supports TDS 8.0 strict
/// and FEDAUTH access tokens, and never encrypts the login alone.
pub async fn tedious_login(c: &Connect) -> Result<Outcome, String> {
    let (node, modules) = tedious()?;
    if c.tls == ClientTls::LoginOnly {
        return Err("tedious has no login-only encryption".into());
    }
    let mut cmd = Command::new(node);
    cmd.arg("-e")
        .arg(NODE_CLIENT)
        .env("NODE_PATH", modules)
        .env("RP_PORT", c.port.to_string())
        .env("RP_HOST", &c.host)
        .env("RP_USER", &c.user)
        .env("RP_PASSWORD", &c.password)
        .env("RP_QUERY", &c.query)
        .env("RP_TIMEOUT", c.timeout_secs.to_string())
        .env(
            "RP_TLS",
            match c.tls {
                ClientTls::Strict => "strict",
                ClientTls::Required => "required",
                _ => "off",
            },
        );
    if let Some(ca) = &c.ca {
        cmd.env("RP_CA", ca);
    }
    if let Some(token) = &c.token {
        cmd.env("RP_TOKEN", token);
    }
    if let Some(db) = &c.database {
        cmd.env("RP_DATABASE", db);
    }
    let (ok, out) = run(cmd, None).await;
    Ok(outcome(ok, out))
}
