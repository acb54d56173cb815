//! After LOGIN7: the requests a session answers until the client leaves (SQL batches,
//! RPCs, attention, transaction manager), with the faults that strike mid-request.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

use super::Fault;
use super::batch::{self, Answer};
use super::packet::{read_message, ty};
use super::session::{Session, hold};
use super::tokens::{Tokens, done, env, token};

impl Session {
    pub(super) async fn requests<S: AsyncRead + AsyncWrite + Unpin>(
        mut self,
        mut io: S,
    ) -> io::Result<()> {
        let shared = self.shared.clone();
        let cfg = &shared.cfg;
        while let Some(msg) = read_message(&mut io).await? {
            if shared.fault(Fault::CloseAfterLogin) {
                return Ok(());
            }
            let mut t = Tokens::new(self.tds72);
            let statement = match msg.ty {
                ty::SQL_BATCH => Some((batch::sql_text(&msg.payload, self.tds72), false)),
                ty::RPC => batch::rpc_statement(&msg.payload, self.tds72).map(|sql| (sql, true)),
                _ => None,
            };
            if let Some((sql, _)) = &statement {
                shared.stats(|s| {
                    s.batches += 1;
                    s.last_sql = Some(sql.clone());
                });
                if shared.fault(Fault::StallDuringQuery) {
                    return hold(io).await;
                }
            }
            match msg.ty {
                ty::SQL_BATCH | ty::RPC => match (&statement, &cfg.query_error) {
                    (Some((_, rpc)), Some((number, message))) => {
                        t.error(*number, 1, 16, message, &cfg.server_name);
                        let kind = if *rpc { token::DONEPROC } else { token::DONE };
                        t.done_token(kind, done::ERROR, 0, 0);
                    }
                    (Some((sql, rpc)), None) => self.answer(sql, *rpc, &mut t),
                    // Another procedure (sp_reset_connection …): succeed without rows.
                    (None, _) => {
                        t.return_status(0);
                        t.done_token(token::DONEPROC, done::FINAL, 0, 0);
                    }
                },
                ty::ATTENTION => t.done(done::ATTN, 0, 0),
                ty::TRANSACTION_MANAGER => self.transaction(&msg.payload, &mut t),
                other => {
                    t.error(
                        2812,
                        1,
                        16,
                        &format!("Request type {other:#04x} is not supported by the routeproof test server."),
                        &cfg.server_name,
                    );
                    t.done(done::ERROR, 0, 0);
                }
            }
            self.send(&mut io, t).await?;
        }
        Ok(())
    }

    /// Answers each statement; inside an RPC (`sp_executesql`) statements end with
    /// DONEINPROC and the call with RETURNSTATUS and DONEPROC, as SQL Server does.
    fn answer(&mut self, sql: &str, rpc: bool, t: &mut Tokens) {
        let cfg = &self.shared.cfg;
        let answers = batch::answer(
            sql,
            &batch::Context {
                spid: self.spid,
                server_name: &cfg.server_name,
                version: cfg.version,
                database: &self.database,
                user: &self.user,
            },
        );
        let (kind, last) = if rpc {
            (token::DONEINPROC, usize::MAX)
        } else {
            if answers.is_empty() {
                t.done(done::FINAL, 0, 0);
            }
            (token::DONE, answers.len().saturating_sub(1))
        };
        for (i, a) in answers.into_iter().enumerate() {
            let more = if i == last { 0 } else { done::MORE };
            const SELECT: u16 = 0xC1;
            match a {
                Answer::Int { column, value } => {
                    t.int_column(&column);
                    t.int_row(value);
                    t.done_token(kind, done::COUNT | more, SELECT, 1);
                }
                Answer::Text { column, value } => {
                    t.nvarchar_column(&column);
                    t.nvarchar_row(&value);
                    t.done_token(kind, done::COUNT | more, SELECT, 1);
                }
                Answer::UseDatabase(db) => {
                    t.env_string(env::DATABASE, &db, &self.database);
                    t.info(
                        5701,
                        1,
                        0,
                        &format!("Changed database context to '{db}'."),
                        &cfg.server_name,
                    );
                    t.done_token(kind, more, 0, 0);
                    self.database = db;
                }
                Answer::Done => t.done_token(kind, more, 0, 0),
            }
        }
        if rpc {
            t.return_status(0);
            t.done_token(token::DONEPROC, done::FINAL, 0, 0);
        }
    }

    /// Transaction manager requests (python-tds begins one when autocommit is off):
    /// BEGIN, COMMIT and ROLLBACK answered with the ENVCHANGE drivers track.
    fn transaction(&mut self, payload: &[u8], t: &mut Tokens) {
        let body = if self.tds72 && payload.len() >= 4 {
            let total =
                u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
            payload.get(total..).unwrap_or_default()
        } else {
            payload
        };
        let request = body.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let descriptor = (u64::from(self.spid) << 32 | self.transactions).to_le_bytes();
        match request {
            Some(5) => {
                self.transactions += 1;
                let descriptor = (u64::from(self.spid) << 32 | self.transactions).to_le_bytes();
                t.env_bytes(env::BEGIN_TRAN, &descriptor, &[]);
            }
            Some(7) => t.env_bytes(env::COMMIT_TRAN, &[], &descriptor),
            Some(8) => t.env_bytes(env::ROLLBACK_TRAN, &[], &descriptor),
            _ => {}
        }
        t.done(done::FINAL, 0, 0);
    }
}
