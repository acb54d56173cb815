//! Renderers. JSON is the report's own serde form; `text` is for terminals;
//! `prometheus` is the `/api/metrics` exposition; `html` is the status page.

pub mod html;
pub mod prometheus;
pub mod text;
