//! scripts/provision.sh and scripts/teardown.sh, without Azure and without any network.
//!
//! - The dry run of every plan kind (with and without the SQL server) is parsed into its
//!   commands: every resource is created after its existence check and before anything
//!   uses it, the plan-specific parts are there (delegation, route-all, Always On, Flex),
//!   no secret is printed, two runs print the same bytes, and neither `az` nor `curl` is
//!   called (a tripwire `az` and `curl` come first on PATH).
//! - Invalid settings (missing key, bad plan kind, bad or misplaced prefixes, a subnet too
//!   small for the plan, unknown keys) fail with exit 2 and a message naming the key.
//! - The real (non-dry) code path runs against a stub `az` that answers from a script: in
//!   an empty subscription it runs exactly the commands the dry run printed; where
//!   everything exists it changes nothing; an authorization error stops it.
//! - The generated routeproof config passes `routeproof check`.
//! - Opt-in (`ROUTEPROOF_CHECK_AZ=1`, needs `pip install azure-cli`): every az subcommand
//!   and flag the scripts print exists, per `az <group> <command> --help` (offline; a
//!   dead proxy guards against the CLI's own version check reaching out).

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const APP: &str = "func-routeproof-demo";
const RG: &str = "rg-routeproof-demo";
const STUB_SUB: &str = "11111111-2222-3333-4444-555555555555";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn bash() -> PathBuf {
    find_in_path("bash").expect("bash on PATH")
}

/// A temporary directory holding settings files and a bin/ directory that goes first on
/// PATH, with a tripwire (or stub) `az` and a tripwire `curl`.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let sb = Sandbox { dir };
        for tool in ["az", "curl"] {
            sb.write_exe(
                tool,
                &format!(
                    "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 99\n",
                    sb.tripped().display()
                ),
            );
        }
        sb
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tripped(&self) -> PathBuf {
        self.path("tripwire.log")
    }

    fn write_exe(&self, name: &str, body: &str) {
        let p = self.path("bin").join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Writes the example settings with `edits` applied (`KEY=VALUE` replaces KEY's line,
    /// `-KEY` deletes it, anything else is appended).
    fn env_file(&self, name: &str, edits: &[&str]) -> PathBuf {
        let example =
            std::fs::read_to_string(root().join("scripts/provision.env.example")).unwrap();
        let mut lines: Vec<String> = example.lines().map(str::to_string).collect();
        for edit in edits {
            if let Some(key) = edit.strip_prefix('-') {
                lines.retain(|l| !l.starts_with(&format!("{key}=")));
            } else if let Some((key, _)) = edit.split_once('=')
                && let Some(l) = lines.iter_mut().find(|l| l.starts_with(&format!("{key}=")))
            {
                *l = edit.to_string();
            } else {
                lines.push(edit.to_string());
            }
        }
        let p = self.path(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    fn run(&self, script: &str, args: &[&str], extra_env: &[(&str, String)]) -> Output {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(bash());
        cmd.arg(root().join("scripts").join(script))
            .args(args)
            .current_dir(root())
            .env("PATH", path)
            .stdin(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.output().expect("run script")
    }

    fn provision(&self, env: &Path, args: &[&str]) -> Output {
        let mut all = vec!["--env", env.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run("provision.sh", &all, &[])
    }

    fn assert_no_tool_called(&self) {
        let log = std::fs::read_to_string(self.tripped()).unwrap_or_default();
        assert!(log.is_empty(), "a dry run called a tool:\n{log}");
    }
}

/// Splits a printed command line into words: whitespace-separated, single quotes as the
/// scripts write them (`'it'\''s'`).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '\'' {
                quoted = false;
            } else {
                cur.push(c);
            }
        } else if c == '\'' {
            quoted = true;
            in_word = true;
        } else if c == '\\' {
            // `\'` between two quoted parts: a literal quote
            cur.extend(chars.next());
            in_word = true;
        } else if c.is_whitespace() {
            if in_word {
                out.push(std::mem::take(&mut cur));
                in_word = false;
            }
        } else {
            cur.push(c);
            in_word = true;
        }
    }
    assert!(!quoted, "unbalanced quote in: {line}");
    if in_word {
        out.push(cur);
    }
    out
}

/// The command lines of a dry run (comments and blank lines dropped).
fn commands(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(words)
        .collect()
}

/// The words before the first flag: `az network vnet create --name x` -> az network vnet create.
fn verb(cmd: &[String]) -> Vec<&str> {
    cmd.iter()
        .take_while(|w| !w.starts_with('-'))
        .map(String::as_str)
        .collect()
}

fn flag<'a>(cmd: &'a [String], names: &[&str]) -> Option<&'a str> {
    cmd.iter()
        .position(|w| names.contains(&w.as_str()))
        .and_then(|i| cmd.get(i + 1))
        .map(String::as_str)
}

fn has(cmd: &[String], word: &str) -> bool {
    cmd.iter().any(|w| w == word)
}

fn name(cmd: &[String]) -> Option<&str> {
    flag(cmd, &["--name", "-n"])
}

fn is_existence_check(cmd: &[String]) -> bool {
    verb(cmd).last() == Some(&"show")
        && flag(cmd, &["--output", "-o"]) == Some("none")
        && flag(cmd, &["--query"]).is_none()
}

/// What a command brings into being, as `kind:name` keys.
fn creates(cmd: &[String]) -> Vec<String> {
    let v = verb(cmd);
    let n = name(cmd).unwrap_or("");
    let mut out = Vec::new();
    match v.as_slice() {
        ["az", "group", "create"] => out.push(format!("rg:{n}")),
        ["az", "network", "vnet", "create"] => out.push(format!("vnet:{n}")),
        ["az", "network", "vnet", "subnet", "create"] => out.push(format!(
            "subnet:{}/{n}",
            flag(cmd, &["--vnet-name"]).unwrap()
        )),
        ["az", "storage", "account", "create"] => out.push(format!("storage:{n}")),
        ["az", "functionapp", "plan", "create"] => out.push(format!("plan:{n}")),
        ["az", "functionapp", "create"] => out.push(format!("app:{n}")),
        ["az", "functionapp", "identity", "assign"] => out.push(format!("identity:{n}")),
        ["az", "functionapp", "vnet-integration", "add"] => out.push(format!("integration:{n}")),
        ["az", "functionapp", "config", "appsettings", "set"] => out.push(format!("settings:{n}")),
        ["az", "sql", "server", "create"] => out.push(format!("sql:{n}")),
        ["az", "sql", "db", "create"] => {
            out.push(format!("db:{}/{n}", flag(cmd, &["--server"]).unwrap()))
        }
        ["az", "network", "private-endpoint", "create"] => out.push(format!("pe:{n}")),
        ["az", "network", "private-dns", "zone", "create"] => out.push(format!("zone:{n}")),
        ["az", "network", "private-dns", "link", "vnet", "create"] => {
            out.push(format!("link:{}/{n}", flag(cmd, &["--zone-name"]).unwrap()))
        }
        [
            "az",
            "network",
            "private-endpoint",
            "dns-zone-group",
            "create",
        ] => out.push(format!(
            "zonegroup:{}/{n}",
            flag(cmd, &["--endpoint-name"]).unwrap()
        )),
        ["az", "provider", "register"] => {
            out.push(format!("provider:{}", flag(cmd, &["--namespace"]).unwrap()))
        }
        ["scripts/package.sh"] => out.push("package".into()),
        ["scripts/deploy.sh"] => out.push(format!("deployed:{n}")),
        ["curl"] if cmd.last().unwrap().ends_with("/api/health") => out.push("healthy".into()),
        ["az", "functionapp", "function", "keys", "list"] => out.push(format!("key:{n}")),
        _ => {}
    }
    out
}

/// What a command needs to exist already, as `kind:name` keys.
fn uses(cmd: &[String]) -> Vec<String> {
    if is_existence_check(cmd) {
        return Vec::new();
    }
    let v = verb(cmd);
    let mut out = Vec::new();
    if let Some(rg) = flag(cmd, &["--resource-group", "-g"])
        && v != ["az", "group", "create"]
    {
        out.push(format!("rg:{rg}"));
    }
    let vnet = flag(cmd, &["--vnet-name", "--vnet", "--virtual-network"]);
    if let Some(vn) = vnet
        && v != ["az", "network", "vnet", "subnet", "create"]
    {
        out.push(format!("vnet:{vn}"));
    }
    if v == ["az", "network", "vnet", "subnet", "create"] {
        out.push(format!("vnet:{}", vnet.unwrap()));
    }
    if let (Some(vn), Some(sn)) = (vnet, flag(cmd, &["--subnet"])) {
        out.push(format!("subnet:{vn}/{sn}"));
    }
    if let Some(s) = flag(cmd, &["--storage-account"]) {
        out.push(format!("storage:{s}"));
    }
    if let Some(p) = flag(cmd, &["--plan"]) {
        out.push(format!("plan:{p}"));
    }
    if v.get(1) == Some(&"functionapp")
        && v.get(2) != Some(&"plan")
        && v != ["az", "functionapp", "create"]
    {
        out.push(format!("app:{}", name(cmd).unwrap()));
    }
    if let Some(id) = flag(cmd, &["--private-connection-resource-id"]) {
        let server = id.rsplit("/servers/").next().unwrap();
        out.push(format!("sql:{server}"));
    }
    if v == ["az", "sql", "db", "create"] {
        out.push(format!("sql:{}", flag(cmd, &["--server"]).unwrap()));
    }
    if let Some(pe) = flag(cmd, &["--endpoint-name"]) {
        out.push(format!("pe:{pe}"));
    }
    if v == ["az", "network", "private-dns", "link", "vnet", "create"] {
        out.push(format!("zone:{}", flag(cmd, &["--zone-name"]).unwrap()));
    }
    if let Some(zone_id) = flag(cmd, &["--private-dns-zone"]) {
        out.push(format!("zone:{}", zone_id.rsplit('/').next().unwrap()));
    }
    if v == ["az", "ad", "sp", "show"] {
        out.push(format!("identity:{APP}"));
    }
    if v == ["az", "sql", "server", "create"]
        && flag(cmd, &["--external-admin-principal-type"]) == Some("Application")
    {
        let app = flag(cmd, &["--external-admin-name"]).unwrap();
        out.push(format!("identity:{app}"));
        out.push(format!("app:{app}"));
    }
    let provider = match v.as_slice() {
        ["az", "network", ..] if v.last() == Some(&"create") => Some("Microsoft.Network"),
        ["az", "storage", "account", "create"] => Some("Microsoft.Storage"),
        ["az", "functionapp", "plan", "create"] | ["az", "functionapp", "create"] => {
            Some("Microsoft.Web")
        }
        ["az", "sql", "server", "create"] => Some("Microsoft.Sql"),
        _ => None,
    };
    out.extend(provider.map(|p| format!("provider:{p}")));
    if has(cmd, "Microsoft.App/environments") || has(cmd, "--flexconsumption-location") {
        out.push("provider:Microsoft.App".into());
    }
    match v.as_slice() {
        ["scripts/deploy.sh"] => {
            let app = name(cmd).unwrap();
            out.extend([
                "package".to_string(),
                format!("app:{app}"),
                format!("settings:{app}"),
                format!("integration:{app}"),
            ]);
        }
        ["az", "functionapp", "deployment", "source", "config-zip"] => out.push("package".into()),
        ["curl"] if cmd.last().unwrap().ends_with("/api/health") => {
            out.push(format!("deployed:{APP}"))
        }
        ["curl"] => out.extend(["healthy".to_string(), format!("key:{APP}")]),
        ["az", "functionapp", "function", "keys", "list"] => out.push("healthy".into()),
        _ => {}
    }
    out
}

/// A check's verb words and the identifying flags it must share with the change.
type Guard = (Vec<String>, Vec<(&'static str, String)>);

/// The existence check or read that must come before a change, as (verb, identifying
/// flags: where the check has the flag too, its value must be the same).
fn guard_of(cmd: &[String]) -> Option<Guard> {
    let v: Vec<String> = verb(cmd).iter().map(|s| s.to_string()).collect();
    let last = v.last()?.as_str();
    let mut g = v.clone();
    match (v.join(" ").as_str(), last) {
        ("az functionapp vnet-integration add", _) => {
            g = vec!["az".into(), "functionapp".into(), "show".into()]
        }
        ("az functionapp config appsettings set", _) => *g.last_mut()? = "list".into(),
        ("az functionapp config set", _) => *g.last_mut()? = "show".into(),
        (_, "create" | "assign" | "register" | "set") => *g.last_mut()? = "show".into(),
        _ => return None,
    }
    let ids = [
        "--name",
        "--vnet-name",
        "--zone-name",
        "--endpoint-name",
        "--server",
        "--namespace",
    ]
    .into_iter()
    .filter_map(|f| flag(cmd, &[f]).map(|val| (f, val.to_string())))
    .collect();
    Some((g, ids))
}

/// Every problem with the order of a dry run's commands.
fn order_problems(cmds: &[Vec<String>]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut made: Vec<(usize, String)> = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        for r in creates(c) {
            made.push((i, r));
        }
    }
    for (i, c) in cmds.iter().enumerate() {
        for r in uses(c) {
            match made.iter().find(|(_, m)| *m == r) {
                Some((j, _)) if *j < i => {}
                Some((j, _)) => problems.push(format!(
                    "line {i} `{}` uses {r}, created only later at line {j}",
                    c.join(" ")
                )),
                None => problems.push(format!(
                    "line {i} `{}` uses {r}, which nothing creates",
                    c.join(" ")
                )),
            }
        }
        if c[0] == "az"
            && let Some((g, ids)) = guard_of(c)
        {
            let found = cmds[..i].iter().any(|p| {
                let pv: Vec<&str> = verb(p);
                pv == g.iter().map(String::as_str).collect::<Vec<_>>()
                    && ids
                        .iter()
                        .all(|(f, val)| flag(p, &[f]).is_none_or(|pv| pv == val))
            });
            if !found {
                problems.push(format!(
                    "line {i} `{}` changes something without checking it first (`{}` {:?})",
                    c.join(" "),
                    g.join(" "),
                    ids
                ));
            }
        }
    }
    problems
}

/// Strings that look like secrets: keys, connection strings, SAS signatures, passwords and
/// long mixed-case base64 runs.
fn secret_problems(out: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for needle in [
        "DefaultEndpointsProtocol",
        "SharedAccessSignature",
        "--admin-password",
        "MACHINEKEY",
    ] {
        if out.contains(needle) {
            problems.push(format!("`{needle}` in the output"));
        }
    }
    // Where these appear at all, the value must be masked.
    for marker in [
        "x-functions-key:",
        "code=",
        "sig=",
        "AccountKey=",
        "SharedAccessKey=",
        "Password=",
    ] {
        for (at, _) in out.match_indices(marker) {
            let rest = out[at + marker.len()..].trim_start();
            if !rest.starts_with("***") {
                problems.push(format!(
                    "`{marker}` followed by a value: {}",
                    &rest[..rest.len().min(20)]
                ));
            }
        }
    }
    let mut run = String::new();
    for c in out.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=' {
            run.push(c);
            continue;
        }
        if run.len() >= 32
            && run.chars().any(|c| c.is_ascii_digit())
            && run.chars().any(|c| c.is_ascii_uppercase())
            && run.chars().any(|c| c.is_ascii_lowercase())
        {
            problems.push(format!("secret-looking run `{run}`"));
        }
        run.clear();
    }
    problems
}

fn assert_clean(out: &Output, what: &str) {
    let all = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    let p = secret_problems(&all);
    assert!(p.is_empty(), "{what}: {p:?}\n{all}");
}

fn dry_run(sb: &Sandbox, env: &Path, args: &[&str]) -> (String, Vec<Vec<String>>) {
    let mut all = vec!["--dry-run"];
    all.extend_from_slice(args);
    let out = sb.provision(env, &all);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert_clean(&out, "dry run");
    let again = sb.provision(env, &all);
    assert_eq!(
        out.stdout, again.stdout,
        "two dry runs printed different plans"
    );
    assert_eq!(
        out.stderr, again.stderr,
        "two dry runs printed different messages"
    );
    let cmds = commands(&stdout);
    let problems = order_problems(&cmds);
    assert!(problems.is_empty(), "{}\n\n{stdout}", problems.join("\n"));
    sb.assert_no_tool_called();
    (stdout, cmds)
}

fn find<'a>(cmds: &'a [Vec<String>], verb_words: &str) -> Vec<&'a Vec<String>> {
    cmds.iter()
        .filter(|c| verb(c).join(" ") == verb_words)
        .collect()
}

fn one<'a>(cmds: &'a [Vec<String>], verb_words: &str) -> &'a Vec<String> {
    let found = find(cmds, verb_words);
    assert_eq!(
        found.len(),
        1,
        "expected one `{verb_words}`, found {found:?}"
    );
    found[0]
}

fn position(cmds: &[Vec<String>], verb_words: &str) -> usize {
    cmds.iter()
        .position(|c| verb(c).join(" ") == verb_words)
        .unwrap_or_else(|| panic!("no `{verb_words}`"))
}

#[test]
fn premium_with_sql_dry_run_creates_everything_in_order() {
    let sb = Sandbox::new();
    let env = root().join("scripts/provision.env.example");
    let (stdout, cmds) = dry_run(&sb, &env, &["--with-sql"]);

    assert!(stdout.starts_with(
        "# routeproof provision plan: dry run, nothing below was run or sent to Azure."
    ));
    let subnet = find(&cmds, "az network vnet subnet create");
    assert_eq!(subnet.len(), 2, "integration and private-endpoint subnets");
    assert_eq!(
        flag(subnet[0], &["--delegations"]),
        Some("Microsoft.Web/serverFarms")
    );
    assert_eq!(
        flag(subnet[0], &["--address-prefixes"]),
        Some("10.60.1.0/26")
    );
    assert_eq!(
        flag(subnet[1], &["--delegations"]),
        None,
        "private endpoints need an undelegated subnet"
    );
    let plan = one(&cmds, "az functionapp plan create");
    assert_eq!(flag(plan, &["--sku"]), Some("EP1"));
    assert_eq!(flag(plan, &["--is-linux"]), Some("true"));
    let create = one(&cmds, "az functionapp create");
    assert_eq!(flag(create, &["--runtime"]), Some("custom"));
    assert_eq!(flag(create, &["--os-type"]), Some("Linux"));
    assert_eq!(
        flag(create, &["--storage-account"]),
        Some("strouteproofdemo01")
    );
    let vi = one(&cmds, "az functionapp vnet-integration add");
    assert_eq!(flag(vi, &["--subnet"]), Some("snet-app-outbound"));
    let set = one(&cmds, "az functionapp config set");
    assert_eq!(flag(set, &["--vnet-route-all-enabled"]), Some("true"));
    let settings = one(&cmds, "az functionapp config appsettings set");
    assert!(
        has(settings, "ROUTEPROOF_SCHEDULE=0 */5 * * * *"),
        "{settings:?}"
    );
    assert!(
        has(settings, "FUNCTIONS_WORKER_RUNTIME=custom"),
        "{settings:?}"
    );
    one(&cmds, "az functionapp identity assign");

    let sql = one(&cmds, "az sql server create");
    assert!(has(sql, "--enable-ad-only-auth"));
    assert_eq!(flag(sql, &["--enable-public-network"]), Some("false"));
    assert_eq!(
        flag(sql, &["--external-admin-principal-type"]),
        Some("Application")
    );
    assert_eq!(flag(sql, &["--external-admin-name"]), Some(APP));
    assert!(
        !has(sql, "--admin-password") && !has(sql, "--admin-user"),
        "Entra-only: no SQL login"
    );
    let pe = one(&cmds, "az network private-endpoint create");
    assert_eq!(flag(pe, &["--group-id"]), Some("sqlServer"));
    assert_eq!(flag(pe, &["--subnet"]), Some("snet-private-endpoints"));
    let zone = one(&cmds, "az network private-dns zone create");
    assert_eq!(name(zone), Some("privatelink.database.windows.net"));
    let link = one(&cmds, "az network private-dns link vnet create");
    assert_eq!(flag(link, &["--registration-enabled"]), Some("false"));
    assert_eq!(
        flag(link, &["--virtual-network"]),
        Some("vnet-routeproof-demo")
    );
    one(&cmds, "az network private-endpoint dns-zone-group create");
    assert!(
        position(&cmds, "az sql server create")
            < position(&cmds, "az network private-endpoint create")
    );
    assert!(
        position(&cmds, "az network private-dns zone create")
            < position(&cmds, "az network private-dns link vnet create")
    );
    assert!(
        position(&cmds, "az network private-dns zone create")
            < position(&cmds, "az network private-endpoint dns-zone-group create")
    );

    // The end: package, deploy, wait, key, probe as text, with the key masked.
    let tail: Vec<String> = cmds[cmds.len() - 7..]
        .iter()
        .map(|c| verb(c).join(" "))
        .collect();
    assert_eq!(
        tail,
        [
            "scripts/package.sh",
            "scripts/deploy.sh",
            "az functionapp deployment source config-zip",
            "az functionapp show",
            "curl",
            "az functionapp function keys list",
            "curl"
        ]
    );
    let probe = cmds.last().unwrap();
    assert!(
        has(probe, "Accept: text/plain") && has(probe, "x-functions-key: ***"),
        "{probe:?}"
    );
    assert_eq!(
        probe.last().unwrap(),
        &format!("https://{APP}.azurewebsites.net/api/probe")
    );
    assert!(!has(one(&cmds, "scripts/deploy.sh"), "--flex"));
}

#[test]
fn flex_dry_run_uses_the_flex_delegation_and_no_plan_or_route_all() {
    let sb = Sandbox::new();
    let env = sb.env_file(
        "flex.env",
        &[
            "PLAN_KIND=flex",
            "INTEGRATION_SUBNET_PREFIX=10.60.1.0/27",
            "FLEX_MAXIMUM_INSTANCE_COUNT=40",
        ],
    );
    let (_, cmds) = dry_run(&sb, &env, &[]);
    let subnet = &find(&cmds, "az network vnet subnet create")[0];
    assert_eq!(
        flag(subnet, &["--delegations"]),
        Some("Microsoft.App/environments")
    );
    assert!(
        find(&cmds, "az functionapp plan create").is_empty(),
        "Flex makes its own plan"
    );
    let create = one(&cmds, "az functionapp create");
    assert_eq!(
        flag(create, &["--flexconsumption-location"]),
        Some("westeurope")
    );
    assert_eq!(flag(create, &["--runtime"]), Some("custom"));
    assert_eq!(flag(create, &["--maximum-instance-count"]), Some("40"));
    assert_eq!(flag(create, &["--plan"]), None);
    assert!(
        find(&cmds, "az functionapp config set").is_empty(),
        "no route-all switch on Flex"
    );
    let settings = one(&cmds, "az functionapp config appsettings set");
    assert!(
        !settings
            .iter()
            .any(|w| w.starts_with("FUNCTIONS_WORKER_RUNTIME")),
        "not an app setting on Flex"
    );
    assert!(has(one(&cmds, "scripts/deploy.sh"), "--flex"));
    assert!(
        find(&cmds, "az provider register")
            .iter()
            .any(|c| has(c, "Microsoft.App")),
        "the Flex delegation needs Microsoft.App"
    );
    assert!(
        find(&cmds, "az sql server create").is_empty()
            && find(&cmds, "az network private-dns zone create").is_empty()
    );
}

#[test]
fn dedicated_dry_run_turns_on_always_on_and_a_signed_in_admin_with_a_database() {
    let sb = Sandbox::new();
    let env = sb.env_file(
        "dedicated.env",
        &[
            "PLAN_KIND=dedicated",
            "PLAN_SKU=P0v3",
            "WITH_SQL=true",
            "SQL_ENTRA_ADMIN=signed-in-user",
            "SQL_DATABASE=orders",
        ],
    );
    let (stdout, cmds) = dry_run(&sb, &env, &[]);
    assert_eq!(
        flag(one(&cmds, "az functionapp plan create"), &["--sku"]),
        Some("P0v3")
    );
    let sets = find(&cmds, "az functionapp config set");
    assert!(
        sets.iter()
            .any(|c| flag(c, &["--always-on"]) == Some("true")),
        "{sets:?}"
    );
    assert!(
        sets.iter()
            .any(|c| flag(c, &["--vnet-route-all-enabled"]) == Some("true")),
        "{sets:?}"
    );
    let sql = one(&cmds, "az sql server create");
    assert_eq!(
        flag(sql, &["--external-admin-principal-type"]),
        Some("User")
    );
    one(&cmds, "az ad signed-in-user show");
    let db = one(&cmds, "az sql db create");
    assert_eq!(name(db), Some("orders"));
    assert!(
        stdout.contains(&format!("CREATE USER [{APP}] FROM EXTERNAL PROVIDER;")),
        "{stdout}"
    );
    assert!(stdout.contains("sqlserver://sql-routeproof-demo.database.windows.net:1433/orders"));
}

#[test]
fn no_deploy_stops_after_the_infrastructure() {
    let sb = Sandbox::new();
    let env = root().join("scripts/provision.env.example");
    let (_, cmds) = dry_run(&sb, &env, &["--no-deploy"]);
    assert_eq!(
        verb(cmds.last().unwrap()).join(" "),
        "az functionapp config appsettings set"
    );
    assert!(find(&cmds, "scripts/package.sh").is_empty());
}

#[test]
fn generated_config_passes_routeproof_check_and_matches_the_dry_run() {
    let sb = Sandbox::new();
    for (file, edits, args) in [
        ("plain.env", vec![], vec![]),
        ("sql.env", vec!["SQL_DATABASE=orders"], vec!["--with-sql"]),
    ] {
        let env = sb.env_file(file, &edits);
        let mut all = vec!["--print-config"];
        all.extend(args.iter().copied());
        let out = sb.provision(&env, &all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let config = text(&out.stdout);
        let path = sb.path(&format!("{file}.toml"));
        std::fs::write(&path, &config).unwrap();
        let check = Command::new(env!("CARGO_BIN_EXE_routeproof"))
            .args(["check", "--config", path.to_str().unwrap()])
            .env_remove("ROUTEPROOF_CONFIG")
            .output()
            .unwrap();
        assert_eq!(
            check.status.code(),
            Some(0),
            "routeproof check rejected the generated config:\n{config}\n{}",
            text(&check.stderr)
        );
        assert!(config.contains("tls://strouteproofdemo01.blob.core.windows.net"));
        if args.is_empty() {
            assert!(!config.contains("sqlserver://"));
        } else {
            assert!(config.contains(
                "target = \"sqlserver://sql-routeproof-demo.database.windows.net:1433/orders\""
            ));
            assert!(
                config.contains("private = true")
                    && config.contains("addresses = [\"10.60.2.0/27\"]")
            );
            assert!(config.contains("authentication = \"managed_identity\""));
        }
        // The dry run shows the same config, commented, where it is written.
        let mut dry = vec!["--dry-run"];
        dry.extend(args.iter().copied());
        let plan = text(&sb.provision(&env, &dry).stdout);
        let shown: String = plan
            .lines()
            .filter_map(|l| {
                l.strip_prefix("#   ")
                    .or(if l == "#" { Some("") } else { None })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let expected: String = config
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect();
        assert_eq!(shown, expected, "the dry run shows another config");
    }
}

#[test]
fn invalid_settings_fail_with_exit_2_naming_the_key() {
    let sb = Sandbox::new();
    let cases: &[(&[&str], &[&str])] = &[
        (&["-FUNCTION_APP"], &["FUNCTION_APP is missing"]),
        (&["-VNET_PREFIX"], &["VNET_PREFIX is missing"]),
        (
            &["PLAN_KIND=consumption"],
            &["PLAN_KIND: `consumption` is not flex, premium or dedicated"],
        ),
        (
            &["PLAN_SKU=Y1"],
            &["PLAN_SKU: `Y1` is not an Elastic Premium SKU"],
        ),
        (
            &["INTEGRATION_SUBNET_PREFIX=10.60.1.0/29"],
            &["INTEGRATION_SUBNET_PREFIX: VNet integration needs at least a /28"],
        ),
        (
            &["INTEGRATION_SUBNET_PREFIX=10.60.1.5/26"],
            &["has host bits set; the prefix is 10.60.1.0/26"],
        ),
        (
            &["INTEGRATION_SUBNET_PREFIX=10.60.1.0"],
            &["INTEGRATION_SUBNET_PREFIX: `10.60.1.0` is not an IPv4 prefix"],
        ),
        (
            &["VNET_PREFIX=10.600.0.0/16"],
            &["VNET_PREFIX: `10.600.0.0/16` is not an IPv4 prefix"],
        ),
        (
            &["PE_SUBNET_PREFIX=10.61.2.0/27"],
            &["PE_SUBNET_PREFIX: 10.61.2.0/27 is not inside VNET_PREFIX"],
        ),
        (
            &["PE_SUBNET_PREFIX=10.60.1.32/27"],
            &["INTEGRATION_SUBNET_PREFIX 10.60.1.0/26 overlaps PE_SUBNET_PREFIX"],
        ),
        (
            &["PLAN_KIND=flex", "INTEGRATION_SUBNET_PREFIX=10.60.1.0/28"],
            &["Flex Consumption needs at least a /27"],
        ),
        (
            &["PLAN_KIND=flex", "INTEGRATION_SUBNET_NAME=snet_app"],
            &["Flex Consumption does not support subnet names with underscores"],
        ),
        (
            &["STORAGE_ACCOUNT=St-Routeproof"],
            &["STORAGE_ACCOUNT: `St-Routeproof` is not a storage account name"],
        ),
        (
            &["SUBSCRIPTION_ID=my-subscription"],
            &["SUBSCRIPTION_ID: `my-subscription` is not a subscription id"],
        ),
        (
            &["ROUTEPROOF_SCHEDULE=\"*/5 * * * *\""],
            &["ROUTEPROOF_SCHEDULE", "six fields"],
        ),
        (
            &["WITH_SQL=true", "SQL_SERVER=Bad_Name"],
            &["SQL_SERVER: `Bad_Name` is not a SQL server name"],
        ),
        (
            &["WITH_SQL=true", "SQL_ENTRA_ADMIN=root"],
            &["SQL_ENTRA_ADMIN: `root` is not app or signed-in-user"],
        ),
        (&["PLAN_KNID=flex"], &["unknown key PLAN_KNID"]),
        (
            &["LOCATION=\"westeurope"],
            &["LOCATION: unterminated quote"],
        ),
        (&["just some words"], &["expected KEY=VALUE"]),
        // several problems at once: all are reported
        (
            &["-STORAGE_ACCOUNT", "PLAN_KIND=serverless"],
            &["STORAGE_ACCOUNT is missing", "PLAN_KIND: `serverless`"],
        ),
    ];
    for (i, (edits, expected)) in cases.iter().enumerate() {
        let env = sb.env_file(&format!("bad{i}.env"), edits);
        for args in [&["--dry-run"][..], &[][..]] {
            let out = sb.provision(&env, args);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{edits:?} {args:?}: {stderr}");
            assert!(
                out.stdout.is_empty(),
                "{edits:?}: printed a plan anyway:\n{}",
                text(&out.stdout)
            );
            for e in *expected {
                assert!(
                    stderr.contains(e),
                    "{edits:?}: expected `{e}` in:\n{stderr}"
                );
            }
            assert!(
                stderr.starts_with("provision.sh: invalid settings in "),
                "{stderr}"
            );
        }
    }
    sb.assert_no_tool_called();

    let out = sb.provision(&sb.path("missing.env"), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no settings file at"));
    let out = sb.run("provision.sh", &["--bogus"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown argument: --bogus"));
    // A real run refuses the example's placeholder subscription before calling anything.
    let out = sb.provision(&root().join("scripts/provision.env.example"), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("SUBSCRIPTION_ID is the example's placeholder"));
    sb.assert_no_tool_called();
}

#[test]
fn small_premium_subnet_warns_but_works() {
    let sb = Sandbox::new();
    let env = sb.env_file("small.env", &["INTEGRATION_SUBNET_PREFIX=10.60.1.0/28"]);
    let out = sb.provision(&env, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("about 5 instances; Microsoft recommends /26 for Linux"),
        "{stderr}"
    );
}

/// A stand-in `az` for the real (non-dry) code path. It logs each call (arguments
/// separated by \x1f) and answers from AZ_STUB_MODE: `empty` (nothing exists), `exists`
/// (everything exists and is configured) or `denied` (reads fail with AuthorizationFailed).
const STUB_AZ: &str = r#"#!/usr/bin/env bash
log="${AZ_STUB_LOG:?}"
{ sep=""; for a in "$@"; do printf '%s%s' "$sep" "$a"; sep=$'\x1f'; done; printf '\n'; } >>"$log"
words=()
for a in "$@"; do [[ $a == -* ]] && break; words+=("$a"); done
query=""; output=""; prev=""
for a in "$@"; do
    [[ $prev == --query ]] && query="$a"
    [[ $prev == --output ]] && output="$a"
    prev="$a"
done
mode="${AZ_STUB_MODE:-empty}"
case "${words[*]}" in
    "account show") echo "${AZ_STUB_CURRENT_SUB}"; exit 0 ;;
    "provider show") if [[ $mode == exists ]]; then echo Registered; else echo NotRegistered; fi; exit 0 ;;
    "functionapp identity show")
        if [[ $mode == exists ]] || grep -q $'identity\x1fassign' "$log"; then echo principal-stub; fi
        exit 0 ;;
    "ad sp show") echo client-stub; exit 0 ;;
    "functionapp function keys list") echo "${AZ_STUB_KEY:-}"; exit 0 ;;
esac
if [[ ${words[-1]} == show && -z $query && $output == none ]]; then
    case "$mode" in
        exists) exit 0 ;;
        denied) echo "ERROR: (AuthorizationFailed) The client does not have authorization to perform action" >&2; exit 1 ;;
        *) echo "ERROR: (ResourceNotFound) The Resource was not found." >&2; exit 3 ;;
    esac
fi
if [[ $query == defaultHostName ]]; then
    echo func-routeproof-demo.azurewebsites.net
    exit 0
fi
if [[ $mode == exists ]]; then
    case "$query" in
        virtualNetworkSubnetId) echo "${AZ_STUB_SUBNET_ID}" ;;
        "delegations[].serviceName") echo Microsoft.Web/serverFarms ;;
        vnetRouteAllEnabled | alwaysOn) echo true ;;
        "[].name") printf 'AzureWebJobsStorage\nFUNCTIONS_WORKER_RUNTIME\nROUTEPROOF_SCHEDULE\n' ;;
    esac
fi
exit 0
"#;

fn stub_env(sb: &Sandbox, mode: &str, current_sub: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AZ_STUB_MODE", mode.to_string()),
        ("AZ_STUB_LOG", sb.path("az.log").display().to_string()),
        ("AZ_STUB_CURRENT_SUB", current_sub.to_string()),
        (
            "AZ_STUB_SUBNET_ID",
            format!(
                "/subscriptions/{STUB_SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/vnet-routeproof-demo/subnets/snet-app-outbound"
            ),
        ),
    ]
}

fn stub_calls(sb: &Sandbox) -> Vec<Vec<String>> {
    std::fs::read_to_string(sb.path("az.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            std::iter::once("az".to_string())
                .chain(l.split('\x1f').map(str::to_string))
                .collect()
        })
        .collect()
}

const MUTATING: &[&str] = &[
    "create", "assign", "add", "set", "register", "delete", "update",
];

#[test]
fn real_run_in_an_empty_subscription_runs_exactly_the_dry_run_commands() {
    let sb = Sandbox::new();
    sb.write_exe("az", STUB_AZ);
    let env = sb.env_file(
        "real.env",
        &[&format!("SUBSCRIPTION_ID={STUB_SUB}"), "WITH_SQL=true"],
    );
    let dry = sb.provision(&env, &["--dry-run", "--no-deploy"]);
    assert_eq!(dry.status.code(), Some(0));
    let expected: Vec<Vec<String>> = commands(&text(&dry.stdout))
        .into_iter()
        .map(|c| {
            c.into_iter()
                .map(|w| match w.as_str() {
                    w if w == format!("<principal-id-of-{APP}>") => "principal-stub".to_string(),
                    w if w == format!("<client-id-of-{APP}-identity>") => "client-stub".to_string(),
                    _ => w,
                })
                .collect()
        })
        .collect();

    let out = sb.run(
        "provision.sh",
        &["--env", env.to_str().unwrap(), "--no-deploy"],
        &stub_env(&sb, "empty", "99999999-9999-9999-9999-999999999999"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_clean(&out, "real run");
    let calls = stub_calls(&sb);
    assert_eq!(calls, expected, "the real run differs from its dry run");
    // It says what it does, on stderr.
    let stderr = text(&out.stderr);
    assert!(stderr.contains(
        "+ az group create --name rg-routeproof-demo --location westeurope --output none"
    ));
    assert!(
        text(&out.stdout).is_empty(),
        "stdout is for the report only"
    );
}

#[test]
fn real_run_where_everything_exists_changes_nothing() {
    let sb = Sandbox::new();
    sb.write_exe("az", STUB_AZ);
    let env = sb.env_file(
        "real.env",
        &[&format!("SUBSCRIPTION_ID={STUB_SUB}"), "WITH_SQL=true"],
    );
    let out = sb.run(
        "provision.sh",
        &["--env", env.to_str().unwrap(), "--no-deploy"],
        &stub_env(&sb, "exists", STUB_SUB),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let calls = stub_calls(&sb);
    let changes: Vec<String> = calls
        .iter()
        .filter(|c| verb(c).iter().any(|w| MUTATING.contains(w)))
        .map(|c| c.join(" "))
        .collect();
    assert!(
        changes.is_empty(),
        "a re-run changed things: {changes:#?}\n{stderr}"
    );
    assert!(calls.len() > 15, "{calls:?}");
    assert!(
        stderr.contains("exists, left as it is: resource group rg-routeproof-demo"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exists, left as it is: the settings routeproof needs are present"),
        "{stderr}"
    );
}

#[test]
fn real_run_stops_when_it_cannot_tell_whether_something_exists() {
    let sb = Sandbox::new();
    sb.write_exe("az", STUB_AZ);
    let env = sb.env_file("real.env", &[&format!("SUBSCRIPTION_ID={STUB_SUB}")]);
    let out = sb.run(
        "provision.sh",
        &["--env", env.to_str().unwrap()],
        &stub_env(&sb, "denied", STUB_SUB),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("AuthorizationFailed"), "{stderr}");
    assert!(stderr.contains("cannot tell whether it exists"), "{stderr}");
    assert!(
        !stub_calls(&sb)
            .iter()
            .any(|c| verb(c).last() == Some(&"create")),
        "created something after a failed check"
    );
}

/// A stand-in `curl` for the end of a real run: /api/health answers at once; /api/probe
/// checks that the function key arrived in a header file (never on the command line) and
/// answers CURL_STUB_STATUS with a report that has a password in it, to be redacted.
const STUB_CURL: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"${CURL_STUB_LOG:?}"
url="${*: -1}"
out=""; prev=""; headers=""
for a in "$@"; do
    [[ $prev == -o ]] && out="$a"
    [[ $prev == -H && $a == @* ]] && headers="$(cat "${a#@}")"
    prev="$a"
done
case "$url" in
    */api/health) echo '{"status":"ok","service":"routeproof","version":"0.1.0"}' ;;
    */api/probe)
        grep -qx "x-functions-key: ${CURL_STUB_KEY}" <<<"$headers" || { echo "no key header" >&2; exit 22; }
        printf 'FAIL  sql  Server=tcp:x,1433;Password=hunter2;\nrouteproof report\n' >"$out"
        printf '%s' "${CURL_STUB_STATUS}" ;;
esac
"#;

#[test]
fn real_run_deploys_probes_and_never_prints_the_key() {
    const KEY: &str = "Zm9vYmFyS2V5U0VDUkVUdmFsdWUxMjM0NTY3ODkwYWJjZA==";
    let sb = Sandbox::new();
    sb.write_exe("az", STUB_AZ);
    sb.write_exe("curl", STUB_CURL);
    // A copy of the repository's scripts/ in which package.sh and deploy.sh only log.
    let fake = sb.path("repo");
    std::fs::create_dir_all(fake.join("scripts")).unwrap();
    std::fs::copy(
        root().join("scripts/provision.sh"),
        fake.join("scripts/provision.sh"),
    )
    .unwrap();
    for s in ["package.sh", "deploy.sh"] {
        let p = fake.join("scripts").join(s);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"{s} $*\" >> '{}'\n",
                sb.path("steps.log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let env = sb.env_file(
        "real.env",
        &[&format!("SUBSCRIPTION_ID={STUB_SUB}"), "WITH_SQL=true"],
    );
    for (status, code) in [("200", 0), ("503", 1)] {
        let mut vars = stub_env(&sb, "exists", STUB_SUB);
        vars.extend([
            ("AZ_STUB_KEY", KEY.to_string()),
            ("CURL_STUB_KEY", KEY.to_string()),
            ("CURL_STUB_STATUS", status.to_string()),
            ("CURL_STUB_LOG", sb.path("curl.log").display().to_string()),
        ]);
        let path = format!(
            "{}:{}",
            sb.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(bash());
        cmd.arg(fake.join("scripts/provision.sh"))
            .args(["--env", env.to_str().unwrap()])
            .env("PATH", path)
            .stdin(Stdio::null());
        for (k, v) in &vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(code),
            "HTTP {status}:\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("routeproof report"),
            "the report goes to stdout: {stdout}"
        );
        assert!(
            stdout.contains("Password=***") && !stdout.contains("hunter2"),
            "{stdout}"
        );
        assert!(
            !stdout.contains(KEY) && !stderr.contains(KEY),
            "the key was printed"
        );
        assert_clean(&out, "real run");
    }
    let curl_log = std::fs::read_to_string(sb.path("curl.log")).unwrap();
    assert!(
        !curl_log.contains(KEY),
        "the key was on curl's command line: {curl_log}"
    );
    assert!(curl_log.contains("Accept: text/plain"));
    let steps = std::fs::read_to_string(sb.path("steps.log")).unwrap();
    let config = fake.join("dist/provision/routeproof.toml");
    assert_eq!(
        steps.lines().take(2).collect::<Vec<_>>(),
        [
            format!("package.sh --config {}", config.display()),
            format!("deploy.sh --resource-group {RG} --name {APP}"),
        ]
    );
    let printed = sb.provision(&env, &["--print-config"]);
    assert_eq!(
        std::fs::read(&config).unwrap(),
        printed.stdout,
        "the packaged config is the printed one"
    );
}

#[test]
fn teardown_asks_or_needs_yes_and_has_a_dry_run() {
    let sb = Sandbox::new();
    let env = sb.env_file("real.env", &[&format!("SUBSCRIPTION_ID={STUB_SUB}")]);
    let env_arg = env.to_str().unwrap();

    let dry = sb.run("teardown.sh", &["--env", env_arg, "--dry-run"], &[]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    let cmds = commands(&text(&dry.stdout));
    let delete = one(&cmds, "az group delete");
    assert_eq!(name(delete), Some(RG));
    assert_eq!(flag(delete, &["--subscription"]), Some(STUB_SUB));
    assert!(has(delete, "--yes"));
    assert!(position(&cmds, "az group show") < position(&cmds, "az group delete"));
    assert_eq!(
        dry.stdout,
        sb.run("teardown.sh", &["--env", env_arg, "--dry-run"], &[])
            .stdout
    );
    sb.assert_no_tool_called();

    sb.write_exe("az", STUB_AZ);
    // No terminal and no --yes: nothing is deleted.
    let out = sb.run(
        "teardown.sh",
        &["--env", env_arg],
        &stub_env(&sb, "exists", STUB_SUB),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("re-run with --yes"));
    assert!(
        !stub_calls(&sb)
            .iter()
            .any(|c| verb(c) == ["az", "group", "delete"])
    );

    let out = sb.run(
        "teardown.sh",
        &["--env", env_arg, "--yes"],
        &stub_env(&sb, "exists", STUB_SUB),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let calls = stub_calls(&sb);
    let deletes: Vec<&Vec<String>> = calls
        .iter()
        .filter(|c| verb(c) == ["az", "group", "delete"])
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0], delete,
        "the real delete differs from the dry run's"
    );

    std::fs::remove_file(sb.path("az.log")).unwrap();
    let out = sb.run(
        "teardown.sh",
        &["--env", env_arg, "--yes"],
        &stub_env(&sb, "empty", STUB_SUB),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("nothing to delete"));
    assert!(
        !stub_calls(&sb)
            .iter()
            .any(|c| verb(c) == ["az", "group", "delete"])
    );
}

#[test]
fn help_prints_the_usage() {
    let sb = Sandbox::new();
    for script in ["provision.sh", "teardown.sh"] {
        let out = sb.run(script, &["--help"], &[]);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            text(&out.stdout).contains("Usage: scripts/"),
            "{}",
            text(&out.stdout)
        );
    }
}

/// Every az subcommand and flag the scripts print exists in the installed Azure CLI.
/// Opt-in: the CLI is a multi-minute install that CI does not need for the rest.
#[test]
fn az_subcommands_and_flags_exist() {
    const TEST: &str = "az_subcommands_and_flags_exist";
    if std::env::var_os("ROUTEPROOF_CHECK_AZ").is_none_or(|v| v != "1") {
        eprintln!(
            "SKIPPED {TEST}: set ROUTEPROOF_CHECK_AZ=1 (with azure-cli installed: pip install azure-cli) to check every az subcommand and flag with `az ... --help`"
        );
        return;
    }
    let az = std::env::var_os("ROUTEPROOF_AZ")
        .map(PathBuf::from)
        .or_else(|| Some(root().join(".venv/bin/az")).filter(|p| p.is_file()))
        .or_else(|| find_in_path("az"));
    let Some(az) = az else {
        support::skip(
            TEST,
            "no az CLI (pip install azure-cli, or set ROUTEPROOF_AZ)",
        );
        return;
    };

    let sb = Sandbox::new();
    let mut all: Vec<Vec<String>> = Vec::new();
    let runs: Vec<(PathBuf, Vec<&str>)> = vec![
        (
            root().join("scripts/provision.env.example"),
            vec!["--with-sql"],
        ),
        (
            sb.env_file(
                "flex.env",
                &["PLAN_KIND=flex", "FLEX_MAXIMUM_INSTANCE_COUNT=40"],
            ),
            vec![],
        ),
        (
            sb.env_file(
                "ded.env",
                &[
                    "PLAN_KIND=dedicated",
                    "PLAN_SKU=P0v3",
                    "SQL_ENTRA_ADMIN=signed-in-user",
                    "SQL_DATABASE=orders",
                ],
            ),
            vec!["--with-sql"],
        ),
    ];
    for (env, args) in &runs {
        let (_, cmds) = dry_run(&sb, env, args);
        all.extend(cmds);
    }
    let td = sb.run(
        "teardown.sh",
        &[
            "--env",
            root()
                .join("scripts/provision.env.example")
                .to_str()
                .unwrap(),
            "--dry-run",
            "--no-wait",
        ],
        &[],
    );
    all.extend(commands(&text(&td.stdout)));

    let config_dir = tempfile::tempdir().unwrap();
    let mut checked = BTreeSet::new();
    let mut problems = Vec::new();
    for cmd in all.iter().filter(|c| c[0] == "az") {
        let v: Vec<&str> = verb(cmd);
        let flags: Vec<&str> = cmd
            .iter()
            .filter(|w| w.starts_with('-'))
            .map(String::as_str)
            .collect();
        if !checked.insert((v.join(" "), flags.join(" "))) {
            continue;
        }
        let out = Command::new(&az)
            .args(&v[1..])
            .arg("--help")
            .env("AZURE_CONFIG_DIR", config_dir.path())
            .env("AZURE_CORE_COLLECT_TELEMETRY", "0")
            .env("AZURE_CORE_NO_COLOR", "1")
            // The CLI checks for a newer version on a fresh config dir; a dead local proxy
            // makes sure that check (or anything else) cannot leave this machine.
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "")
            .output()
            .expect("run az --help");
        let help = text(&out.stdout);
        if !out.status.success() || !help.contains("Arguments") {
            problems.push(format!(
                "`{}` is not a command:\n{}",
                v.join(" "),
                text(&out.stderr)
            ));
            continue;
        }
        let known: BTreeSet<&str> = help.split_whitespace().collect();
        for f in flags {
            if !known.contains(f) {
                problems.push(format!("`{}` has no flag {f}", v.join(" ")));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "{TEST}: {} distinct az command forms checked against {}",
        checked.len(),
        az.display()
    );
}
