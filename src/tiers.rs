//! The tier rule of docs/architecture.md, checked on the source: every module may import
//! (`use crate::…`, `super::…`, or an inline `crate::…` path) only modules of its own
//! tier or a lower one, and the modules (top level, and each layer under `probe/`) form
//! no cycle. Reading paths is enough: a wrong-direction edge is a `crate::` path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Tiers, lowest first. A module takes the tier of the longest entry that is a prefix
/// of its path; `probe::*` is every file under `src/probe/` not named otherwise.
const TIERS: &[(&str, u8)] = &[
    // 0: leaf vocabulary
    ("addr", 0),
    ("secret", 0),
    ("env", 0),
    ("layer", 0),
    ("budget", 0),
    ("zone", 0),
    ("setting", 0),
    // 1: the typed targets and options
    ("spec", 1),
    ("target", 1),
    // 2: the report model
    ("report", 2),
    // 3: TOML -> spec
    ("config", 3),
    // 4: hints
    ("diagnose", 4),
    // 5: Azure facts, discovery, DNS servers
    ("platform", 5),
    ("azure", 5),
    ("discover", 5),
    ("store", 5),
    // 6: the ad-hoc policy
    ("policy", 6),
    // 7: the layers
    ("probe::*", 7),
    // 8: the engine
    ("probe", 8),
    ("probe::pipeline", 8),
    ("probe::hop", 8),
    // 9: composition root and the doors
    ("app", 9),
    ("demo", 9),
    ("handler", 9),
    ("render", 9),
    ("telemetry", 9),
];

fn tier_of(module: &str) -> Option<u8> {
    let segs: Vec<&str> = module.split("::").collect();
    let mut best: Option<(usize, u8)> = None;
    for (pat, tier) in TIERS {
        let p: Vec<&str> = pat.split("::").collect();
        let matches =
            p.len() <= segs.len() && p.iter().zip(&segs).all(|(a, b)| *a == "*" || a == b);
        // A wildcard entry is less specific than a named one of the same length.
        let weight = p.len() * 2 - usize::from(p.last() == Some(&"*"));
        if matches && best.is_none_or(|(w, _)| weight > w) {
            best = Some((weight, *tier));
        }
    }
    best.map(|(_, t)| t)
}

/// `src/probe/tds/wire.rs` -> `probe::tds::wire`; `src/spec/mod.rs` -> `spec`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut segs: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    segs.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Source without comments (a comment may name any module) and without the unit-test
/// module at the end of a file: the rule is about the code that ships.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands a use tree (`a::{b, c::{d}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap().trim().to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::").trim();
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .flat_map(expand)
        .map(|p| match p.as_str() {
            "self" => prefix.to_string(),
            _ => format!("{prefix}::{p}"),
        })
        .collect()
}

/// The module a path names: the lower-case segments after `crate`, `super` or `self`,
/// resolved against `module` (the file's own module).
fn target_module(module: &str, path: &str) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").map(str::trim).collect();
    let mut base: Vec<&str> = match segs.first()? {
        &"crate" => {
            segs.remove(0);
            Vec::new()
        }
        &"super" | &"self" => {
            let mut b: Vec<&str> = module.split("::").collect();
            while segs.first() == Some(&"super") {
                segs.remove(0);
                b.pop();
            }
            if segs.first() == Some(&"self") {
                segs.remove(0);
            }
            b
        }
        _ => return None,
    };
    for s in segs {
        if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            break;
        }
        base.push(s);
    }
    (!base.is_empty()).then(|| base.join("::"))
}

/// Every module path a file names, with `use` trees expanded.
fn imports(module: &str, text: &str) -> BTreeSet<String> {
    let text = code(text);
    let mut paths = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("use ") {
        let before = &rest[..i];
        let at_start =
            before.is_empty() || before.ends_with(char::is_whitespace) && !before.ends_with("::");
        rest = &rest[i + 4..];
        let Some(end) = rest.find(';') else { break };
        if at_start {
            let tree = &rest[..end];
            if ["crate", "super", "self"]
                .iter()
                .any(|k| tree.trim_start().starts_with(k))
            {
                paths.extend(expand(tree));
            }
        }
    }
    // Inline paths: `crate::report::ms(...)`.
    for (i, _) in text.match_indices("crate::") {
        let tail: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        paths.push(tail);
    }
    paths
        .iter()
        .filter_map(|p| target_module(module, p))
        .collect()
}

/// The longest known module that is a prefix of `path`.
fn resolve<'a>(known: &'a BTreeSet<String>, path: &str) -> Option<&'a String> {
    let segs: Vec<&str> = path.split("::").collect();
    (1..=segs.len())
        .rev()
        .map(|n| segs[..n].join("::"))
        .find_map(|p| known.get(&p))
}

/// The unit a cycle is looked for between: the top-level module, or each layer under
/// `probe/` (the engine's files, `probe` itself included, are one unit).
fn unit(module: &str) -> String {
    let segs: Vec<&str> = module.split("::").collect();
    match segs.as_slice() {
        ["probe", x, ..] if tier_of(&format!("probe::{x}")) == tier_of("probe::*") => {
            format!("probe::{x}")
        }
        [first, ..] => first.to_string(),
        [] => String::new(),
    }
}

struct Graph {
    /// (importing module, imported module)
    edges: Vec<(String, String)>,
    modules: BTreeSet<String>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeSet::new();
    let mut texts = Vec::new();
    for f in &files {
        let m = module_of(&src, f);
        // The crate roots, this test and unit-test files are not in a tier.
        if m == "lib" || m == "main" || m == "tiers" || m.ends_with("tests") {
            continue;
        }
        modules.insert(m.clone());
        texts.push((m, std::fs::read_to_string(f).unwrap()));
    }
    // `target`, `azure`, `discover`: the paths lib.rs keeps for the moved modules.
    for alias in ["target", "azure", "discover"] {
        modules.insert(alias.to_string());
    }
    let mut edges = Vec::new();
    for (m, text) in &texts {
        for p in imports(m, text) {
            if let Some(to) = resolve(&modules, &p)
                && to != m
            {
                edges.push((m.clone(), to.clone()));
            }
        }
    }
    Graph { edges, modules }
}

#[test]
fn every_module_has_a_tier() {
    let g = graph();
    let missing: Vec<&String> = g.modules.iter().filter(|m| tier_of(m).is_none()).collect();
    assert!(
        missing.is_empty(),
        "modules without a tier (add them to TIERS in src/tiers.rs and to docs/architecture.md): {missing:?}"
    );
}

#[test]
fn no_module_imports_a_higher_tier() {
    let g = graph();
    let mut bad = Vec::new();
    for (from, to) in &g.edges {
        if let (Some(a), Some(b)) = (tier_of(from), tier_of(to))
            && b > a
        {
            bad.push(format!("{from} (tier {a}) imports {to} (tier {b})"));
        }
    }
    bad.sort();
    bad.dedup();
    assert!(
        bad.is_empty(),
        "imports against the tiers (docs/architecture.md):\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_cycle_between_modules() {
    let g = graph();
    let mut adj: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in &g.edges {
        let (a, b) = (unit(from), unit(to));
        if a != b {
            adj.entry(a).or_default().insert(b);
        }
    }
    // Depth-first search with colours; a grey node reached again closes a cycle.
    fn visit(
        n: &str,
        adj: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in adj.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let i = stack.iter().position(|s| s == m).unwrap();
                    let mut cycle = stack[i..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, adj, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in adj.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, &adj, &mut state, &mut stack) {
                panic!("import cycle: {}", c.join(" -> "));
            }
        }
    }
}

#[test]
fn the_checker_reads_paths() {
    assert_eq!(
        expand("crate::report::{self, Evidence, evidence::{A, b}}"),
        vec![
            "crate::report",
            "crate::report::Evidence",
            "crate::report::evidence::A",
            "crate::report::evidence::b"
        ]
    );
    assert_eq!(
        target_module("spec::uri", "super::target::Host").as_deref(),
        Some("spec::target")
    );
    assert_eq!(
        target_module("probe::tds", "crate::probe::Budget").as_deref(),
        Some("probe")
    );
    assert_eq!(tier_of("probe::tds::wire"), Some(7));
    assert_eq!(tier_of("probe"), Some(8));
    assert_eq!(tier_of("probe::pipeline"), Some(8));
    assert_eq!(tier_of("spec::uri"), Some(1));
    assert_eq!(tier_of("nowhere"), None);
    // An edge from a layer to the engine is what the rule forbids.
    let text = "use crate::probe::Budget;\nfn f() { crate::report::ms(d); }";
    let got = imports("probe::tcp", text);
    assert!(
        got.contains("probe") && got.contains("report::ms"),
        "{got:?}"
    );
    // A unit-test module may import anything.
    let text =
        "use crate::budget::Budget;\n#[cfg(test)]\nmod tests {\n    use crate::probe::Engine;\n}";
    assert!(!imports("probe::tcp", text).contains("probe::Engine"));
}
