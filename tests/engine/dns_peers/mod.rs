//! Checks the DNS test peers with an independent client (ISC `dig`), so the
//! rest of the suite can trust that they behave like real DNS servers and
//! that a passing prober test is not just hickory agreeing with itself.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::dns::{DnsServer, Zone};
use support::net::SilentDns;
use support::unbound::Unbound;

/// One resource record line from dig's output.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rr {
    name: String,
    rtype: String,
    data: String,
}

/// The parts of dig's output the tests assert on.
#[derive(Debug)]
struct DigResult {
    exit_code: Option<i32>,
    status: Option<String>,
    flags: Vec<String>,
    answers: Vec<Rr>,
    authority: Vec<Rr>,
    stdout: String,
    elapsed: Duration,
}

impl DigResult {
    fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("<no reply>")
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// `(type, data)` pairs of the answer section, in order.
    fn answer_pairs(&self) -> Vec<(&str, &str)> {
        self.answers
            .iter()
            .map(|r| (r.rtype.as_str(), r.data.as_str()))
            .collect()
    }

    fn timed_out(&self) -> bool {
        // dig exits 9 for "no reply from server".
        self.exit_code == Some(9) && self.status.is_none() && self.stdout.contains("timed out")
    }
}

fn find_dig() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("dig"))
        .find(|p| p.is_file())
}

macro_rules! require_dig {
    () => {
        match find_dig() {
            Some(path) => path,
            None => {
                support::skip(
                    "dns_peers",
                    "dig not installed (apt-get install bind9-dnsutils)",
                );
                return;
            }
        }
    };
}

/// Runs dig on the blocking pool: the server under test lives on this same
/// (single-threaded) runtime and must keep running while dig waits.
async fn dig(
    dig_path: &Path,
    server: SocketAddr,
    name: &str,
    rtype: &str,
    extra: &[&str],
) -> DigResult {
    let mut cmd = Command::new(dig_path);
    cmd.arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=2", "+tries=1"])
        .args(extra)
        .arg(name)
        .arg(rtype);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("dig task panicked")
        .expect("running dig");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut result = parse_dig(&stdout);
    result.exit_code = output.status.code();
    result.elapsed = elapsed;
    result
}

fn parse_dig(stdout: &str) -> DigResult {
    let mut status = None;
    let mut flags = Vec::new();
    let mut answers = Vec::new();
    let mut authority = Vec::new();
    #[derive(PartialEq)]
    enum Section {
        Other,
        Answer,
        Authority,
    }
    let mut section = Section::Other;
    for line in stdout.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            status = Some(rest.split(',').next().unwrap_or("").trim().to_owned());
        } else if let Some(rest) = line.strip_prefix(";; flags:") {
            flags = rest
                .split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        } else if line.starts_with(";; ANSWER SECTION:") {
            section = Section::Answer;
        } else if line.starts_with(";; AUTHORITY SECTION:") {
            section = Section::Authority;
        } else if line.trim().is_empty() || line.starts_with(";;") {
            section = Section::Other;
        } else if section != Section::Other && !line.starts_with(';') {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 5 {
                let rr = Rr {
                    name: fields[0].to_ascii_lowercase(),
                    rtype: fields[3].to_owned(),
                    data: fields[4..].join(" "),
                };
                if section == Section::Answer {
                    answers.push(rr);
                } else {
                    authority.push(rr);
                }
            }
        }
    }
    DigResult {
        exit_code: None,
        status,
        flags,
        answers,
        authority,
        stdout: stdout.to_owned(),
        elapsed: Duration::ZERO,
    }
}

mod answers;
mod transport;
