//! Key Vault references, the container registry, Service Bus / Event Hubs.

use super::*;

#[test]
fn key_vault_references_are_vault_service_checks_with_the_note() {
    let (found, notes) = run(&[
        (
            "DbPassword",
            "@Microsoft.KeyVault(SecretUri=https://orders-kv.vault.azure.net/secrets/db/)",
        ),
        (
            "ApiKey",
            "@Microsoft.KeyVault(VaultName=Orders-KV;SecretName=api)",
        ),
        (
            "Broken",
            "@Microsoft.KeyVault(SecretUri=http://x.vault.azure.net/secrets/a)",
        ),
        (
            "Broken2",
            "@Microsoft.KeyVault(VaultName=bad vault!;SecretName=a)",
        ),
        ("Broken3", "@Microsoft.KeyVault(SecretName=a"),
    ]);
    assert_eq!(
        shown(&found),
        [(
            "keyvault/orders-kv".into(),
            "https://orders-kv.vault.azure.net/".into(),
            "keyvault".into(),
            "none".into(),
            "ApiKey, DbPassword".into()
        )]
    );
    assert!(note_for(&notes, "DbPassword").contains("unresolved Key Vault reference"));
    assert!(note_for(&notes, "Broken").contains("not an https URL"));
    assert!(note_for(&notes, "Broken2").contains("not a vault name"));
    assert!(note_for(&notes, "Broken3").contains("malformed"));
}

#[test]
fn container_registry_login_server_and_data_endpoint() {
    let (found, notes) = run(&[
        ("DOCKER_REGISTRY_SERVER_URL", "https://ordersacr.azurecr.io"),
        (
            "DOCKER_CUSTOM_IMAGE_NAME",
            "DOCKER|ordersacr.azurecr.io/orders/api:1.4",
        ),
        ("DOCKER_REGISTRY_SERVER_PASSWORD", "PLANTED-acr-password"),
        ("REGION_NAME", "West Europe"),
    ]);
    assert_eq!(
        shown(&found),
        [
            (
                "acr/ordersacr",
                "https://ordersacr.azurecr.io/",
                "acr",
                "none",
                "DOCKER_CUSTOM_IMAGE_NAME, DOCKER_REGISTRY_SERVER_URL"
            ),
            (
                "acr/ordersacr/data",
                "https://ordersacr.westeurope.data.azurecr.io/",
                "acr",
                "none",
                "DOCKER_CUSTOM_IMAGE_NAME, REGION_NAME, DOCKER_REGISTRY_SERVER_URL"
            ),
        ]
        .map(|(a, b, c, d, e)| (a.into(), b.into(), c.into(), d.into(), e.into()))
    );
    assert!(note_for(&notes, "DOCKER_REGISTRY_SERVER_URL").contains("geo-replica"));
    // No region: the data endpoint is left out, and the note says why.
    let (found, notes) = run(&[("DOCKER_REGISTRY_SERVER_URL", "ordersacr.azurecr.io")]);
    assert_eq!(found.len(), 1);
    assert!(note_for(&notes, "DOCKER_REGISTRY_SERVER_URL").contains("REGION_NAME is not set"));
    // Another registry is a TLS check; a Docker Hub image names no registry host.
    assert_eq!(
        targets(&[("DOCKER_REGISTRY_SERVER_URL", "https://ghcr.io")]),
        ["tls://ghcr.io:443"]
    );
    assert!(targets(&[("DOCKER_CUSTOM_IMAGE_NAME", "DOCKER|nginx:latest")]).is_empty());
    assert!(targets(&[("DOCKER_CUSTOM_IMAGE_NAME", "library/nginx")]).is_empty());
    let (found, notes) = run(&[
        ("DOCKER_REGISTRY_SERVER_URL", "https://a.b.azurecr.io"),
        ("LinuxFx", "DOCKER|x.y.azurecr.io/app"),
    ]);
    assert!(found.is_empty(), "{found:?}");
    assert!(note_for(&notes, "DOCKER_REGISTRY_SERVER_URL").contains("login server"));
    assert!(note_for(&notes, "LinuxFx").contains("login server"));
}

#[test]
fn service_bus_and_event_hubs_are_amqp_checks_without_credentials() {
    let (found, notes) = run(&[
        (
            "ServiceBusConnection__fullyQualifiedNamespace",
            "orders-ns.servicebus.windows.net",
        ),
        ("ServiceBusConnection__credential", "managedidentity"),
        (
            "EventHubConn",
            "Endpoint=sb://events-ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=PLANTED-sbkey=;EntityPath=hub1",
        ),
        (
            "SERVICEBUSCONNSTR_legacy",
            "Endpoint=sb://orders-ns.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=x&sig=PLANTED",
        ),
        ("KafkaBrokerList", "events-ns.servicebus.windows.net:9093"),
        (
            "KafkaPassword",
            "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=PLANTED",
        ),
        ("Bad__fullyQualifiedNamespace", "sb://has/a/path"),
        (
            "CUSTOMCONNSTR_bus",
            "Endpoint=sb://custom-ns.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=PLANTED",
        ),
    ]);
    let got: Vec<(String, String, String)> = found
        .iter()
        .map(|f| (f.name.clone(), f.spec.to_string(), f.source.clone()))
        .collect();
    let want = [
        (
            "CUSTOMCONNSTR_bus/amqp",
            "amqps://custom-ns.servicebus.windows.net:5671",
            "CUSTOMCONNSTR_bus",
        ),
        (
            "CUSTOMCONNSTR_bus/websocket",
            "amqpwss://custom-ns.servicebus.windows.net:443/$servicebus/websocket",
            "CUSTOMCONNSTR_bus",
        ),
        (
            "EventHubConn/amqp",
            "amqps://events-ns.servicebus.windows.net:5671",
            "EventHubConn",
        ),
        (
            "EventHubConn/websocket",
            "amqpwss://events-ns.servicebus.windows.net:443/$servicebus/websocket",
            "EventHubConn",
        ),
        (
            "KafkaBrokerList",
            "kafka://events-ns.servicebus.windows.net:9093",
            "KafkaBrokerList",
        ),
        // A password holding a connection string is still a connection string (sniffed),
        // but a KAFKA-named password is never read as a broker list.
        (
            "KafkaPassword/amqp",
            "amqps://x.servicebus.windows.net:5671",
            "KafkaPassword",
        ),
        (
            "KafkaPassword/websocket",
            "amqpwss://x.servicebus.windows.net:443/$servicebus/websocket",
            "KafkaPassword",
        ),
        (
            "SERVICEBUSCONNSTR_legacy/amqp",
            "amqps://orders-ns.servicebus.windows.net:5671",
            "SERVICEBUSCONNSTR_legacy, ServiceBusConnection__fullyQualifiedNamespace",
        ),
        (
            "SERVICEBUSCONNSTR_legacy/websocket",
            "amqpwss://orders-ns.servicebus.windows.net:443/$servicebus/websocket",
            "SERVICEBUSCONNSTR_legacy, ServiceBusConnection__fullyQualifiedNamespace",
        ),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(got, want);
    // Discovered AMQP checks never carry the connection string: they are credential-free.
    for f in &found {
        if let TargetSpec::Amqp {
            connection_string, ..
        }
        | TargetSpec::Kafka {
            connection_string, ..
        } = &f.spec
        {
            assert!(connection_string.is_none(), "{}", f.name);
        }
    }
    assert!(note_for(&notes, "Bad__fullyQualifiedNamespace").contains("not a namespace host"));

    // The Service Bus emulator's string is plain AMQP; an explicit port keeps its port.
    let t = targets(&[
        (
            "SbEmulator",
            "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=PLANTED;UseDevelopmentEmulator=true;",
        ),
        (
            "SbPort",
            "Endpoint=sb://broker.internal:15671/;SharedAccessKeyName=a;SharedAccessKey=PLANTED",
        ),
    ]);
    assert_eq!(
        t,
        ["amqp://localhost:5672", "amqps://broker.internal:15671"]
    );
}
