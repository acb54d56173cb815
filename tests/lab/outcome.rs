//! The lines scripts/lab.sh prints, read back: one per scenario
//! (`PASS|FAIL|PENDING  NAME  DURATION  VERDICT`, details indented below) and the
//! closing `N passed, M failed, P pending` line.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Pending,
}

#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub status: Status,
    /// The indented lines under it: failed assertions, or what a PENDING one needs.
    pub details: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub scenarios: Vec<Scenario>,
    /// (passed, failed, pending) from the closing line.
    pub totals: Option<(usize, usize, usize)>,
}

pub fn parse(out: &str) -> Outcome {
    let mut o = Outcome::default();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        let status = match first {
            "PASS" => Some(Status::Pass),
            "FAIL" => Some(Status::Fail),
            "PENDING" => Some(Status::Pending),
            _ => None,
        };
        if let Some(status) = status {
            o.scenarios.push(Scenario {
                name: words.next().unwrap_or("").to_string(),
                status,
                details: Vec::new(),
            });
        } else if line.starts_with("  ") {
            if let Some(s) = o.scenarios.last_mut() {
                s.details.push(line.trim().to_string());
            }
        } else if let Some(t) = totals(line) {
            o.totals = Some(t);
        }
    }
    o
}

/// `3 passed, 1 failed, 2 pending (...)`
fn totals(line: &str) -> Option<(usize, usize, usize)> {
    let n: Vec<usize> = line
        .split(',')
        .take(3)
        .map(|part| part.split_whitespace().next()?.parse().ok())
        .collect::<Option<_>>()?;
    let words = ["passed", "failed", "pending"];
    let labelled = line
        .split(',')
        .zip(words)
        .all(|(part, w)| part.split_whitespace().nth(1) == Some(w));
    (n.len() == 3 && labelled).then(|| (n[0], n[1], n[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scenario_lines_and_totals() {
        let o = parse(
            "PASS     01-healthy   1.2 s  ok\n\
             FAIL     05-nsg-drop  1.1 s  x\n\
             \x20          - sql: fails at tcp with tcp.timeout\n\
             PENDING  12-endpoint-pending  1.0 s  tcp.timeout\n\
             \x20          - sql: hint -- needs: y\n\
             1 passed, 1 failed, 1 pending (their asserted verdicts hold; a src change is named)\n",
        );
        assert_eq!(o.scenarios.len(), 3);
        assert_eq!(o.scenarios[1].status, Status::Fail);
        assert_eq!(o.scenarios[1].details.len(), 1);
        assert_eq!(o.scenarios[2].name, "12-endpoint-pending");
        assert_eq!(o.totals, Some((1, 1, 1)));
    }
}
