//! What the program sees of the process environment (app settings), and the error every
//! setting parser returns. Leaf vocabulary: config, platform facts and policy use both.

/// What the engine sees of the process environment (app settings). Injected so tests and
/// ad-hoc requests control it; production passes `std::env::var`.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// A setting that cannot be used, naming the key it is about (`targets[2].target`,
/// `engine.timeouts.dns`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config.invalid: `{key}`: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}
