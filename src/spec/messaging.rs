//! The messaging targets: `amqp(s)://`, `amqpws(s)://` (AMQP 1.0 over WebSockets, the
//! schemes Apache Qpid JMS uses), `kafka://`, and a Service Bus / Event Hubs connection
//! string (`Endpoint=sb://NS/;SharedAccessKeyName=…;SharedAccessKey=…`) in an app setting.

use super::target::{Host, TargetError, TargetSpec, err};
use super::uri::{nonzero, parse_host};
use crate::secret::Secret;

/// The WebSocket path Service Bus and Event Hubs serve AMQP on (port 443).
pub const SERVICEBUS_WEBSOCKET_PATH: &str = "/$servicebus/websocket";

/// `amqp`, `amqps`, `amqpws`, `amqpwss` or `kafka`, parsed from `url`.
pub(super) fn parse_messaging(scheme: &str, url: &url::Url) -> Result<TargetSpec, TargetError> {
    // No user info: a key in a URI would be shown; credentials are the target's keys.
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return err(format!(
            "{scheme}:// takes HOST[:PORT][/PATH] only; put credentials in the target's keys or use env:VAR with a connection string"
        ));
    }
    let host = parse_host(url.host_str().unwrap_or(""))?;
    let path = url.path().trim_matches('/');
    if scheme == "kafka" {
        if !path.is_empty() {
            return err("kafka:// takes no path");
        }
        return Ok(TargetSpec::Kafka {
            host,
            port: nonzero(url.port().unwrap_or(9093))?,
            connection_string: None,
        });
    }
    let tls = matches!(scheme, "amqps" | "amqpwss");
    let ws = scheme.starts_with("amqpws");
    let default_port = match (ws, tls) {
        (false, true) => 5671,
        (false, false) => 5672,
        (true, true) => 443,
        (true, false) => 80,
    };
    let port = nonzero(url.port().unwrap_or(default_port))?;
    if url.path().contains("//") {
        return err(format!("{scheme}:// path has an empty segment"));
    }
    let (websocket, entity) = if ws {
        let p = if path.is_empty() {
            SERVICEBUS_WEBSOCKET_PATH.to_string()
        } else {
            format!("/{path}")
        };
        (Some(p), None)
    } else {
        (None, (!path.is_empty()).then(|| path.to_string()))
    };
    Ok(TargetSpec::Amqp {
        host,
        port,
        tls,
        websocket,
        entity,
        connection_string: None,
    })
}

/// Whether an app setting's value is a Service Bus / Event Hubs connection string.
pub fn is_servicebus_connection_string(value: &str) -> bool {
    pairs(value).any(|(k, v)| {
        k.eq_ignore_ascii_case("endpoint") && v.to_ascii_lowercase().starts_with("sb://")
    })
}

fn pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// `Endpoint=sb://NS[:PORT]/;…` as an `amqps://NS:5671` target that logs in with the
/// whole string (SharedAccessKeyName + SharedAccessKey, or SharedAccessSignature).
/// `EntityPath` becomes the entity. Errors never quote the value.
pub fn parse_servicebus(value: &str) -> Result<TargetSpec, TargetError> {
    let mut endpoint = None;
    let mut entity = None;
    let mut has_key = (false, false, false);
    for (k, v) in pairs(value) {
        match k.to_ascii_lowercase().as_str() {
            "endpoint" => endpoint = Some(v),
            "entitypath" if !v.is_empty() => entity = Some(v.to_string()),
            "sharedaccesskeyname" => has_key.0 = !v.is_empty(),
            "sharedaccesskey" => has_key.1 = !v.is_empty(),
            "sharedaccesssignature" => has_key.2 = !v.is_empty(),
            _ => {}
        }
    }
    let Some(endpoint) = endpoint else {
        return err("connection string has no `Endpoint=sb://…`");
    };
    let url = url::Url::parse(endpoint)
        .map_err(|_| TargetError("connection string `Endpoint` is not a URI".into()))?;
    if url.scheme() != "sb" {
        return err("connection string `Endpoint` is not sb://");
    }
    let host: Host = parse_host(url.host_str().unwrap_or(""))
        .map_err(|_| TargetError("connection string `Endpoint` has no valid host".into()))?;
    if !((has_key.0 && has_key.1) || has_key.2) {
        return err(
            "connection string needs SharedAccessKeyName and SharedAccessKey, or SharedAccessSignature",
        );
    }
    Ok(TargetSpec::Amqp {
        host,
        port: nonzero(url.port().unwrap_or(5671))?,
        tls: true,
        websocket: None,
        entity,
        connection_string: Some(Secret::new(value.trim())),
    })
}

#[cfg(test)]
mod tests {
    use super::super::uri::{parse, parse_uri};
    use super::*;
    use crate::layer::Layer;

    #[test]
    fn amqp_and_kafka_uris() {
        let cases: &[(&str, &str)] = &[
            (
                "amqps://NS.servicebus.windows.net",
                "amqps://ns.servicebus.windows.net:5671",
            ),
            (
                "amqps://ns.servicebus.windows.net/orders",
                "amqps://ns.servicebus.windows.net:5671/orders",
            ),
            (
                "amqps://ns.servicebus.windows.net/t1/subscriptions/s1/",
                "amqps://ns.servicebus.windows.net:5671/t1/subscriptions/s1",
            ),
            ("amqp://127.0.0.1", "amqp://127.0.0.1:5672"),
            ("amqp://127.0.0.1:40001/q", "amqp://127.0.0.1:40001/q"),
            (
                "amqpwss://ns.servicebus.windows.net",
                "amqpwss://ns.servicebus.windows.net:443/$servicebus/websocket",
            ),
            (
                "amqpwss://ns.servicebus.windows.net/$servicebus/websocket",
                "amqpwss://ns.servicebus.windows.net:443/$servicebus/websocket",
            ),
            ("amqpws://127.0.0.1:8080/ws", "amqpws://127.0.0.1:8080/ws"),
            (
                "kafka://ns.servicebus.windows.net",
                "kafka://ns.servicebus.windows.net:9093",
            ),
            ("kafka://127.0.0.1:9092", "kafka://127.0.0.1:9092"),
        ];
        for (input, shown) in cases {
            let t = parse_uri(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(t.to_string(), *shown, "{input}");
            // What a report shows parses back to the same target.
            assert_eq!(parse_uri(shown).unwrap(), t, "{shown}");
        }
        match parse_uri("amqpwss://ns.servicebus.windows.net").unwrap() {
            TargetSpec::Amqp {
                tls,
                websocket,
                entity,
                port,
                ..
            } => {
                assert!(tls);
                assert_eq!(port, 443);
                assert_eq!(websocket.as_deref(), Some(SERVICEBUS_WEBSOCKET_PATH));
                assert_eq!(entity, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_amqp_and_kafka_uris() {
        for (input, says) in [
            ("amqps://user:pw@ns.servicebus.windows.net", "credentials"),
            ("amqps://ns.servicebus.windows.net?x=1", "HOST[:PORT]"),
            ("amqps://ns.servicebus.windows.net//q", "empty segment"),
            ("amqps://ns.servicebus.windows.net:0", "port 0"),
            ("kafka://ns.servicebus.windows.net/topic", "no path"),
            ("kafka://", "missing host"),
        ] {
            let e = parse_uri(input).expect_err(input);
            assert!(e.0.contains(says), "{input}: {e}");
            assert!(!e.0.contains("pw@"), "{input}: {e}");
        }
    }

    #[test]
    fn layer_plans() {
        use Layer::*;
        let plan = |s: &str| parse_uri(s).unwrap().layers();
        assert_eq!(
            plan("amqps://ns.servicebus.windows.net"),
            vec![Dns, Tcp, Tls, Amqp]
        );
        assert_eq!(plan("amqp://127.0.0.1"), vec![Tcp, Amqp]);
        assert_eq!(plan("amqpwss://127.0.0.1"), vec![Tcp, Tls, Amqp]);
        assert_eq!(plan("amqpws://127.0.0.1"), vec![Tcp, Amqp]);
        assert_eq!(
            plan("kafka://ns.servicebus.windows.net"),
            vec![Dns, Tcp, Tls, Kafka]
        );
    }

    const KEY: &str = "c2VjcmV0LWtleS1QTEFOVEVELTEyMzQ1Ng==";

    #[test]
    fn servicebus_connection_string_in_an_app_setting() {
        let env = |k: &str| {
            match k {
            "SB" => Some(format!(
                "Endpoint=sb://MyNs.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={KEY}"
            )),
            "EH" => Some(format!(
                "Endpoint=sb://eh.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey={KEY};EntityPath=hub1"
            )),
            "SAS" => Some("Endpoint=sb://ns.servicebus.windows.net;SharedAccessSignature=SharedAccessSignature sr=x&sig=PLANTEDSIG&se=1&skn=k".into()),
            "NoKey" => Some(format!("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey={KEY}")),
            "BadHost" => Some(format!("Endpoint=sb://{KEY}!/;SharedAccessKeyName=a;SharedAccessKey={KEY}")),
            _ => None,
        }
        };
        let t = parse("env:SB", &env).unwrap();
        assert_eq!(t.to_string(), "amqps://myns.servicebus.windows.net:5671");
        match &t {
            TargetSpec::Amqp {
                tls: true,
                port: 5671,
                websocket: None,
                connection_string: Some(cs),
                ..
            } => assert!(cs.expose().contains(KEY)),
            other => panic!("{other:?}"),
        }
        assert!(!format!("{t:?}").contains(KEY));
        let eh = parse("env:EH", &env).unwrap();
        assert_eq!(
            eh.to_string(),
            "amqps://eh.servicebus.windows.net:5671/hub1"
        );
        assert!(parse("env:SAS", &env).is_ok());
        for bad in ["env:NoKey", "env:BadHost"] {
            let e = parse(bad, &env).unwrap_err();
            assert!(!e.0.contains(KEY) && !e.0.contains("PLANTED"), "{bad}: {e}");
        }
        assert!(
            parse("env:NoKey", &env)
                .unwrap_err()
                .0
                .contains("SharedAccessKeyName")
        );
        assert!(is_servicebus_connection_string(&env("SB").unwrap()));
        assert!(!is_servicebus_connection_string(
            "Server=tcp:x.database.windows.net;Password=p"
        ));
    }
}
