//! Renderers. JSON is the report's own serde form; `text` is for terminals;
//! `prometheus` is the `/api/metrics` exposition; `html` is the status page; `lines` is
//! one line per target for logs; `progress` is the CLI's progress line on a terminal.

pub mod history;
pub mod html;
pub mod lines;
pub mod progress;
pub mod prometheus;
pub mod shared;
pub mod text;
