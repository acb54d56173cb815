//! Reading a dry run: printed command lines split into words, what each command
//! creates and uses, its existence check, and the order and secret problems of a plan.

use super::*;

/// Splits a printed command line into words: whitespace-separated, single quotes as the
/// scripts write them (`'it'\''s'`).
pub(super) fn words(line: &str) -> Vec<String> {
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
pub(super) fn commands(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(words)
        .collect()
}

/// The words before the first flag: `az network vnet create --name x` -> az network vnet create.
pub(super) fn verb(cmd: &[String]) -> Vec<&str> {
    cmd.iter()
        .take_while(|w| !w.starts_with('-'))
        .map(String::as_str)
        .collect()
}

pub(super) fn flag<'a>(cmd: &'a [String], names: &[&str]) -> Option<&'a str> {
    cmd.iter()
        .position(|w| names.contains(&w.as_str()))
        .and_then(|i| cmd.get(i + 1))
        .map(String::as_str)
}

pub(super) fn has(cmd: &[String], word: &str) -> bool {
    cmd.iter().any(|w| w == word)
}

pub(super) fn name(cmd: &[String]) -> Option<&str> {
    flag(cmd, &["--name", "-n"])
}

pub(super) fn is_existence_check(cmd: &[String]) -> bool {
    verb(cmd).last() == Some(&"show")
        && flag(cmd, &["--output", "-o"]) == Some("none")
        && flag(cmd, &["--query"]).is_none()
}

/// What a command brings into being, as `kind:name` keys.
pub(super) fn creates(cmd: &[String]) -> Vec<String> {
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
pub(super) fn uses(cmd: &[String]) -> Vec<String> {
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
pub(super) type Guard = (Vec<String>, Vec<(&'static str, String)>);

/// The existence check or read that must come before a change, as (verb, identifying
/// flags: where the check has the flag too, its value must be the same).
pub(super) fn guard_of(cmd: &[String]) -> Option<Guard> {
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
pub(super) fn order_problems(cmds: &[Vec<String>]) -> Vec<String> {
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
pub(super) fn secret_problems(out: &str) -> Vec<String> {
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
