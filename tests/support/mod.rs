//! Real DNS peers for integration tests.
//!
//! Each test binary compiles this module on its own and uses only part of it,
//! so unused helpers are expected rather than a sign of rot.
#![allow(dead_code)]

pub mod dns;
pub mod unbound;
