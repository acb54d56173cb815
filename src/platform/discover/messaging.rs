//! Service Bus / Event Hubs: a connection string's `Endpoint=sb://NS.servicebus.windows.net/`
//! (`SharedAccessKeyName` / `SharedAccessKey` / `SharedAccessSignature` stay in the
//! setting) and the identity-based `PREFIX__fullyQualifiedNamespace`: the AMQP 1.0
//! handshake over TLS on 5671 (`amqps://`, the SDKs' default) and over WebSockets on 443
//! (`amqpwss://…/$servicebus/websocket`, the fallback when 5671 is blocked), both
//! credential-free: the SASL header echo and mechanism list prove the broker answered.
//! A Kafka broker list (`NS.servicebus.windows.net:9093` in a setting whose name says
//! KAFKA or BROKER, as the Functions Kafka extension's `BrokerList`) is `kafka://`.
//!
//! A namespace's entity (`EntityPath`) is left out: one namespace is one check, whichever
//! queue or hub a setting names; an explicit `env:` target logs in with the string. The
//! Service Bus emulator's string (`UseDevelopmentEmulator=true`, `Endpoint=sb://localhost`)
//! is plain AMQP on 5672 (`amqp://HOST:PORT`); an `Endpoint` with an explicit port is
//! `amqps://HOST:PORT` alone (not Azure's layout, so no WebSocket twin on 443).

use super::{Ctx, endpoint, host_literal, parse};

/// `PREFIX__fullyQualifiedNamespace` (or a namespace host from elsewhere).
pub(super) fn namespace_setting(
    ctx: &mut Ctx<'_>,
    prefix: &str,
    value: &str,
) -> Result<(), String> {
    let v = value.trim().trim_end_matches('/').to_ascii_lowercase();
    let v = v.strip_prefix("sb://").unwrap_or(&v);
    let url = format!("sb://{v}");
    let (host, _, _) = endpoint(&url)
        .filter(|(h, _, _)| !h.is_empty() && !v.contains('/'))
        .ok_or("not a namespace host name (NS.servicebus.windows.net)")?;
    namespace(ctx, prefix, &host)
}

/// A connection string whose `Endpoint` is `sb://…`.
pub(super) fn connection_string(
    ctx: &mut Ctx<'_>,
    ep: &str,
    pairs: &[(String, String)],
) -> Result<(), String> {
    let (host, port, _) = endpoint(ep).ok_or("Endpoint is not a URL")?;
    let key = ctx.key.to_string();
    let emulator = super::get(pairs, "usedevelopmentemulator")
        .is_some_and(|v| crate::setting::parse_yes_no(v) == Some(true));
    let h = host_literal(&host);
    match (emulator, port) {
        (true, p) => {
            let spec = parse(&format!("amqp://{h}:{}", p.unwrap_or(5672)))?;
            ctx.add(format!("{key}/amqp"), spec);
            Ok(())
        }
        (false, Some(p)) => {
            ctx.add(format!("{key}/amqp"), parse(&format!("amqps://{h}:{p}"))?);
            Ok(())
        }
        (false, None) => namespace(ctx, &key, &host),
    }
}

fn namespace(ctx: &mut Ctx<'_>, prefix: &str, host: &str) -> Result<(), String> {
    let h = host_literal(host);
    ctx.add(
        format!("{prefix}/amqp"),
        parse(&format!("amqps://{h}:5671"))?,
    );
    ctx.add(
        format!("{prefix}/websocket"),
        parse(&format!("amqpwss://{h}:443"))?,
    );
    Ok(())
}

/// A setting whose name says it lists Kafka brokers.
pub(super) fn kafka_named(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    (k.contains("KAFKA") || k.contains("BROKER"))
        && ![
            "PASSWORD", "PWD", "KEY", "SECRET", "TOKEN", "USERNAME", "USER",
        ]
        .iter()
        .any(|s| k.ends_with(s))
}

/// `host:port[,host:port…]`: the first broker as `kafka://HOST:PORT` (9093 by default,
/// Event Hubs' Kafka endpoint). A value that is not a broker list is left alone.
pub(super) fn brokers(ctx: &mut Ctx<'_>, value: &str) -> Result<(), String> {
    let mut list = value.split(',').map(str::trim).filter(|b| !b.is_empty());
    let Some(first) = list.next() else {
        return Ok(());
    };
    let first = first
        .strip_prefix("SASL_SSL://")
        .or_else(|| first.strip_prefix("sasl_ssl://"))
        .unwrap_or(first);
    if first.contains('=') || first.contains(';') || first.contains(' ') {
        return Ok(());
    }
    let (host, port, _) = endpoint(&format!("kafka://{first}")).ok_or("not a broker host:port")?;
    if !host.contains('.') && port.is_none() {
        return Ok(());
    }
    let spec = parse(&format!(
        "kafka://{}:{}",
        host_literal(&host),
        port.unwrap_or(9093)
    ))?;
    ctx.add(ctx.key.to_string(), spec);
    if list.next().is_some() {
        ctx.note("several brokers are listed; the first is checked");
    }
    Ok(())
}
