//! Where a DNS server came from. The report spells it as before (`config`, `cli`,
//! `WEBSITE_DNS_SERVER`, `WEBSITE_DNS_ALT_SERVER`, `resolv.conf`, `azure_dns`); code
//! matches on the enum.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResolverSource {
    /// `engine.dns_servers` in the config file.
    #[serde(rename = "config")]
    Config,
    /// `--dns-server` on the command line.
    #[serde(rename = "cli")]
    Cli,
    /// The app setting `WEBSITE_DNS_SERVER`.
    #[serde(rename = "WEBSITE_DNS_SERVER")]
    WebsiteDnsServer,
    /// The app setting `WEBSITE_DNS_ALT_SERVER`.
    #[serde(rename = "WEBSITE_DNS_ALT_SERVER")]
    WebsiteDnsAltServer,
    /// A `nameserver` line of resolv.conf.
    #[serde(rename = "resolv.conf")]
    ResolvConf,
    /// Azure DNS, asked to compare when a custom server fails.
    #[serde(rename = "azure_dns")]
    AzureDns,
}

impl ResolverSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolverSource::Config => "config",
            ResolverSource::Cli => "cli",
            ResolverSource::WebsiteDnsServer => "WEBSITE_DNS_SERVER",
            ResolverSource::WebsiteDnsAltServer => "WEBSITE_DNS_ALT_SERVER",
            ResolverSource::ResolvConf => "resolv.conf",
            ResolverSource::AzureDns => "azure_dns",
        }
    }

    /// The label of explicitly given servers: `cli` for `"cli"`, `config` otherwise.
    pub fn explicit(label: &str) -> ResolverSource {
        if label == "cli" {
            ResolverSource::Cli
        } else {
            ResolverSource::Config
        }
    }

    /// Someone's own DNS server (app settings, config, command line) rather than the
    /// platform's resolver.
    pub fn is_custom(self) -> bool {
        matches!(
            self,
            ResolverSource::Config
                | ResolverSource::Cli
                | ResolverSource::WebsiteDnsServer
                | ResolverSource::WebsiteDnsAltServer
        )
    }
}

impl fmt::Display for ResolverSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ResolverSource {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for ResolverSource {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}
