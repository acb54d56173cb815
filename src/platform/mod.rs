//! What the platform says: the Function App's facts and the route each address takes
//! (`azure`), the targets its app settings name (`discover`), the DNS servers it uses
//! (`resolvers`, resolv.conf included), and the tokens its managed identity gets
//! (`identity`).

pub mod azure;
pub mod discover;
pub mod identity;
pub mod resolvers;
