//! The TOML config: any text is a config or a `config.invalid` error naming a key,
//! never a panic. Every `env:` lookup answers, so those code paths run too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let env = |k: &str| (k.len() % 2 == 0).then(|| format!("tcp://10.0.0.{}:1433", k.len()));
    match routeproof::config::parse(s, &env) {
        Ok(cfg) => {
            let _ = format!("{:?}", cfg.targets.len());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
