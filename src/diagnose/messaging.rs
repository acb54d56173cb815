//! Hints of the messaging layers (`amqp`, `kafka`): the decisive content of each is in the
//! tables at the top of `probe/amqp.rs` and `probe/kafka.rs`; the Azure facts they use
//! (ports, the network-rule text, tiers) have rows in docs/azure-facts.md.

use crate::report::FailureClass;

/// Where Service Bus and Event Hubs listen, for the hints that send the reader to a port.
const PORTS: &str = "Service Bus and Event Hubs serve AMQP on 5671 (TLS, `amqps://`) and AMQP over WebSockets on 443 (`amqpwss://`, path `/$servicebus/websocket`); Event Hubs' Kafka endpoint is 9093 (`kafka://`)";

/// The private-endpoint facts of the network-rule hints (tiers: docs/azure-facts.md).
const PRIVATE: &str = "connect through the namespace's private endpoint (the name resolves through privatelink.servicebus.windows.net) or allow this source in the namespace's Networking settings; a Service Bus private endpoint needs the Premium tier, an Event Hubs one Standard or above (unverified)";

pub(super) fn amqp(class: FailureClass) -> String {
    use FailureClass as C;
    match class {
        C::AmqpNotThisProtocol => format!(
            "The port answered, but not as AMQP 1.0 (no `AMQP 3.1.0.0` echo and SASL mechanisms): another service (HTTP, a proxy) or an appliance holds this port, or the name led to the wrong server. {PORTS}."
        ),
        C::AmqpUnsupportedVersion => "An AMQP server answered, but not AMQP 1.0 with SASL (another protocol header, e.g. RabbitMQ's AMQP 0-9-1 listener, or a broker with SASL off): not Service Bus or Event Hubs, which always offer SASL.".into(),
        C::AmqpTlsRefused => format!(
            "The TLS handshake on this AMQP port failed before any certificate check: the port is not TLS (a plain AMQP listener such as 5672, or another service), or the server refused our TLS parameters (the message says which). Service Bus and Event Hubs require TLS (plain AMQP on 5672 is forced to upgrade to TLS); use `amqp://` only for a plain test broker. {PORTS}."
        ),
        C::AmqpWebsocketRefused => "The WebSocket upgrade (path `/$servicebus/websocket`, subprotocol `AMQPWSB10`) was refused: a proxy or web server answered on 443 instead of Service Bus/Event Hubs (check where the name resolves: a private endpoint's goes through privatelink.servicebus.windows.net), or the path is wrong.".into(),
        C::AmqpClosed => "The server closed the connection mid-handshake (the message says in which phase): the namespace's IP firewall, or a load balancer/NVA cutting the session; if outbound 5671 is blocked on the path, AMQP over WebSockets on 443 (`amqpwss://`) may pass.".into(),
        C::AmqpTimeout => "An AMQP phase stalled (the message says which): a firewall/NVA that accepts the connection and holds it, or a server of another protocol waiting for its own request; Service Bus and Event Hubs answer the SASL header at once.".into(),
        C::AmqpAuthFailed => "The AMQP server answered (the route works) and refused the credential: a wrong SAS key name or key, a wrong user or password, or a token CBS refused. A Microsoft Entra token (the app's managed identity) must be for `https://servicebus.azure.net` (Service Bus) or `https://eventhubs.azure.net` (Event Hubs), and the identity needs a data role on the namespace or entity: Azure Service Bus Data Sender / Data Receiver (Event Hubs: Azure Event Hubs Data Sender / Data Receiver), or Data Owner.".into(),
        C::AmqpTokenExpired => "The AMQP server answered (the route works); the token has expired (a SharedAccessSignature's `se=` is in the past, or an old Entra token): get a fresh one.".into(),
        C::AmqpForbidden => "Authenticated (the route works) but not allowed: the SAS policy lacks the claim (Listen, Send or Manage), or the identity lacks an Azure Service Bus / Event Hubs Data role on the namespace or entity (unverified text).".into(),
        C::AmqpNetworkRule => format!(
            "Service Bus/Event Hubs answered and refused this client by its network rules (\"Ip has been prevented to connect to the endpoint\"): the connection came over the public endpoint while public network access is off or no IP/VNet rule allows it. Fix the route: {PRIVATE}."
        ),
        C::AmqpUnsupported => "The AMQP server answered (the route works) but does not offer the SASL mechanism the credential needs (PLAIN for a key or password; ANONYMOUS or MSSBCBS for a token through CBS): the evidence lists what it offers.".into(),
        C::AmqpRemoteError => "The AMQP server answered (the route works) and closed with an AMQP error (the evidence carries its condition): `amqp:not-found` means the namespace or entity does not exist.".into(),
        C::AmqpBadCredentials => "The credential cannot log in as given: a connection string needs SharedAccessKeyName and SharedAccessKey, or SharedAccessSignature.".into(),
        C::AmqpProtocolError => "The server echoed the AMQP header, then sent frames that do not decode (the message names them): a proxy altering the stream, or not a real AMQP 1.0 server.".into(),
        _ => "A socket error during the AMQP exchange: the connection was cut.".into(),
    }
}

pub(super) fn kafka(class: FailureClass) -> String {
    use FailureClass as C;
    match class {
        C::KafkaNotThisProtocol => "The port answered, but not as a Kafka broker (no ApiVersions answer carrying our correlation id): another service or an appliance holds it. Event Hubs' Kafka endpoint is `NAMESPACE.servicebus.windows.net:9093` with TLS; AMQP is 5671 (`amqps://`).".into(),
        C::KafkaTlsRefused => "The TLS handshake on this Kafka port failed before any certificate check: a plain (PLAINTEXT) listener or another service, or the server refused our TLS parameters (the message says which). Event Hubs' Kafka endpoint 9093 is TLS-only and exists from the Standard tier up (unverified); `tls = \"disable\"` is for a plain test broker only.".into(),
        C::KafkaClosed => "The broker closed the connection mid-exchange (the message says in which phase): the namespace's IP firewall or an NVA cutting the session; Event Hubs also closes unauthenticated connections that send other requests.".into(),
        C::KafkaTimeout => "A Kafka phase stalled (the message says which): a firewall/NVA holding the session, or a listener of another protocol; a broker answers ApiVersions at once.".into(),
        C::KafkaAuthFailed => "The broker answered (the route works) and refused the SASL login (error 58, or a SCRAM `e=` refusal): for Event Hubs the user must be `$ConnectionString` and the password the whole connection string; a Microsoft Entra token (OAUTHBEARER, the app's managed identity) is asked for the namespace (`https://NAMESPACE.servicebus.windows.net`), and the identity needs the Azure Event Hubs Data Sender / Data Receiver (or Data Owner) role on the namespace or event hub. Event Hubs takes PLAIN and OAUTHBEARER, not SCRAM.".into(),
        C::KafkaTokenExpired => "The broker answered (the route works); the OAUTHBEARER token has expired: get a fresh one.".into(),
        C::KafkaNetworkRule => format!(
            "Event Hubs answered and refused this client by its network rules (\"Ip has been prevented to connect to the endpoint\"; unverified for the Kafka endpoint): the connection came over the public endpoint while public network access is off or no IP/VNet rule allows it. Fix the route: {PRIVATE}."
        ),
        C::KafkaUnsupported => "The broker answered (the route works) but lacks what the login needs: the SASL mechanism (error 33; Event Hubs offers PLAIN and OAUTHBEARER) or the API version (error 35).".into(),
        C::KafkaIllegalSaslState => "The broker answered (the route works) and expected another SASL step (error 34): a broker that wants SaslHandshake v0 framing.".into(),
        C::KafkaBrokerError => "The broker answered (the route works) with a Kafka error code (recorded in the evidence): look it up in the Kafka protocol's error table.".into(),
        C::KafkaBadCredentials => "The credential is empty, so nothing was sent: set `password` or `connection_string` (for Event Hubs: user `$ConnectionString`, password the connection string).".into(),
        C::KafkaProtocolError => "The broker's answer does not decode as Kafka (the message says where): a proxy altering the stream, or not a Kafka broker.".into(),
        _ => "A socket error during the Kafka exchange: the connection was cut.".into(),
    }
}
