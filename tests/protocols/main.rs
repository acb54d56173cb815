//! Service-protocol probes against real servers started on loopback, and stubs for the
//! fault cases. One module per protocol; shared peers in `peers`.

mod peers;

mod mysql;
mod postgres;
mod redis;
