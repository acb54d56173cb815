//! What the test server answers to a SQL batch. It is not a SQL engine: it knows
//! the statements drivers send on their own at login (`set textsize …`,
//! `select @@spid`, `use [db]`, pymssql's `SET …;` preamble) and the probe's
//! queries (`SELECT 1`, `SELECT @@VERSION`), so each driver finishes its login and
//! reads a real result set.

use super::login::ucs2_to_string;

/// One statement's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// One INT column, one row.
    Int { column: String, value: i32 },
    /// One NVARCHAR column, one row.
    Text { column: String, value: String },
    /// `USE db`: ENVCHANGE database and the "changed database context" INFO.
    UseDatabase(String),
    /// Anything else: a bare DONE.
    Done,
}

/// What the answers may refer to.
pub struct Context<'a> {
    pub spid: u16,
    pub server_name: &'a str,
    pub version: (u8, u8, u16),
    pub database: &'a str,
    pub user: &'a str,
}

/// A request body without its ALL_HEADERS (present from TDS 7.2 on; its first
/// DWORD is its own total length).
pub fn skip_all_headers(payload: &[u8], tds72: bool) -> &[u8] {
    if tds72 && payload.len() >= 4 {
        let total = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
        payload.get(total..).unwrap_or_default()
    } else {
        payload
    }
}

/// The SQL text of a SQL_BATCH payload.
pub fn sql_text(payload: &[u8], tds72: bool) -> String {
    ucs2_to_string(skip_all_headers(payload, tds72))
}

/// The procedure `sp_executesql` as a well-known ProcID (MS-TDS 2.2.6.6).
const SP_EXECUTESQL: u16 = 10;

/// The statement of an RPC request if it calls `sp_executesql`, which is how
/// tiberius' `query`, tedious' `execSql` and parameterised python-tds queries send
/// SQL. Other procedures (`sp_reset_connection`, `sp_prepare`) yield `None`.
pub fn rpc_statement(payload: &[u8], tds72: bool) -> Option<String> {
    let p = skip_all_headers(payload, tds72);
    let name_len = u16::from_le_bytes([*p.first()?, *p.get(1)?]);
    let rest = if name_len == 0xFFFF {
        let id = u16::from_le_bytes([*p.get(2)?, *p.get(3)?]);
        (id == SP_EXECUTESQL).then_some(())?;
        p.get(4..)?
    } else {
        let end = 2 + usize::from(name_len) * 2;
        let name = ucs2_to_string(p.get(2..end)?);
        name.eq_ignore_ascii_case("sp_executesql").then_some(())?;
        p.get(end..)?
    };
    // OptionFlags, then the first parameter: name, status, TYPE_INFO, value.
    let param = rest.get(2..)?;
    let name_chars = usize::from(*param.first()?);
    let mut at = 1 + name_chars * 2 + 1;
    let type_id = *param.get(at)?;
    at += 1;
    match type_id {
        0xE7 | 0xEF => {
            // NVARCHAR / NCHAR: max length, collation, then the value.
            let max = u16::from_le_bytes([*param.get(at)?, *param.get(at + 1)?]);
            at += 2 + 5;
            if max == 0xFFFF {
                plp_string(param.get(at..)?)
            } else {
                let len = usize::from(u16::from_le_bytes([*param.get(at)?, *param.get(at + 1)?]));
                Some(ucs2_to_string(param.get(at + 2..at + 2 + len)?))
            }
        }
        0x63 => {
            // NTEXT: length, collation, table name, then a 4-byte length and the value.
            at += 4 + 5;
            let len = u32::from_le_bytes(param.get(at..at + 4)?.try_into().ok()?) as usize;
            Some(ucs2_to_string(param.get(at + 4..at + 4 + len)?))
        }
        _ => None,
    }
}

/// A partially length-prefixed value: total length, then chunks until a zero chunk.
fn plp_string(p: &[u8]) -> Option<String> {
    let mut at = 8;
    let mut bytes = Vec::new();
    loop {
        let len = u32::from_le_bytes(p.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        if len == 0 {
            return Some(ucs2_to_string(&bytes));
        }
        bytes.extend_from_slice(p.get(at..at + len)?);
        at += len;
    }
}

/// Splits a batch into statements (at `;` and at the leading keyword of the next
/// statement, since FreeTDS sends `set textsize 64512 select @@spid use [db]` on one
/// line) and answers each.
pub fn answer(sql: &str, ctx: &Context<'_>) -> Vec<Answer> {
    statements(sql)
        .iter()
        .map(|words| answer_one(words, ctx))
        .collect()
}

const STARTERS: &[&str] = &[
    "select", "set", "use", "exec", "execute", "if", "begin", "commit", "rollback", "declare",
    "print", "insert", "update", "delete", "waitfor",
];

fn statements(sql: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for part in sql.split(';') {
        let mut current: Vec<String> = Vec::new();
        for word in part.split_whitespace() {
            let starts = STARTERS.contains(&word.to_ascii_lowercase().as_str());
            if starts && !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.push(word.to_string());
        }
        if !current.is_empty() {
            out.push(current);
        }
    }
    out
}

fn answer_one(words: &[String], ctx: &Context<'_>) -> Answer {
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    match lower.first().map(String::as_str) {
        Some("select") => select(&words[1..], &lower[1..], ctx),
        Some("use") if words.len() > 1 => {
            let db = words[1].trim_matches(|c| c == '[' || c == ']' || c == '"');
            Answer::UseDatabase(db.to_string())
        }
        _ => Answer::Done,
    }
}

fn select(words: &[String], lower: &[String], ctx: &Context<'_>) -> Answer {
    // `select <expr> [as <name>]`; anything fancier is answered as `select 1`.
    let column = match lower.get(1).map(String::as_str) {
        Some("as") => words.get(2).map(|w| w.trim_matches(['[', ']']).to_string()),
        _ => None,
    }
    .unwrap_or_default();
    let expr = lower.first().map(String::as_str).unwrap_or("1");
    let text = |value: String| Answer::Text {
        column: column.clone(),
        value,
    };
    let (major, minor, build) = ctx.version;
    match expr {
        "@@spid" => Answer::Int {
            column,
            value: i32::from(ctx.spid),
        },
        "@@version" => text(format!(
            "Microsoft SQL Server {major}.{minor}.{build} (routeproof TDS test server)"
        )),
        "@@servername" => text(ctx.server_name.to_string()),
        "db_name()" => text(ctx.database.to_string()),
        "suser_name()" | "suser_sname()" | "system_user" => text(ctx.user.to_string()),
        other => Answer::Int {
            column,
            value: other.parse().unwrap_or(1),
        },
    }
}
