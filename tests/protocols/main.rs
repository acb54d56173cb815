//! Protocol layers against real servers on loopback (one test binary for every protocol
//! module; peers that start slowly, like RabbitMQ, are started once per binary).

#[path = "../support/mod.rs"]
mod support;

mod msg_peers;

mod amqp;
mod kafka;
