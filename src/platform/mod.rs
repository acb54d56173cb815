//! What the platform says: the Function App's facts and the route each address takes
//! (`azure`), the targets its app settings name (`discover`), and the DNS servers it
//! uses (`resolvers`, resolv.conf included).

pub mod azure;
pub mod discover;
pub mod resolvers;
