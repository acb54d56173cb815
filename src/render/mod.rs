//! Renderers. JSON is the report's own serde form; `text` is for terminals.

pub mod text;
