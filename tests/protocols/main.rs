//! Protocol layers against real servers on loopback (one test binary for every protocol
//! module; peers that start slowly, like RabbitMQ, are started once per binary), and
//! stubs for the fault cases. One module per protocol; shared peers in `peers` and
//! `msg_peers`.

#[path = "../support/mod.rs"]
mod support;

mod msg_peers;
mod peers;

mod amqp;
mod discovered;
mod engine;
mod engine_msg;
mod identity;
mod identity_msg;
mod kafka;
mod kafka_scram;
mod mysql;
mod postgres;
mod redis;
