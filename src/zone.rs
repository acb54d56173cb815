//! Private-endpoint DNS names: whether a name goes through a `privatelink` zone, and
//! which zone. One helper, so the DNS layer, the engine's warning and the hints agree on
//! what counts as a privatelink name (see docs/azure.md).

/// Whether `name` has a `privatelink` label (`x.privatelink.database.windows.net.`).
pub fn is_privatelink(name: &str) -> bool {
    name.split('.')
        .any(|l| l.eq_ignore_ascii_case("privatelink"))
}

/// The zone of a privatelink name: `privatelink.database.windows.net` for
/// `x.privatelink.database.windows.net.`; `None` for any other name.
pub fn privatelink_zone(name: &str) -> Option<String> {
    let name = name.trim_end_matches('.');
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("privatelink.") {
        return Some(name.to_string());
    }
    let i = lower.find(".privatelink.")?;
    Some(name[i + 1..].to_string())
}

/// The first privatelink name in `names`.
pub fn first_privatelink<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names.into_iter().find(|n| is_privatelink(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert!(is_privatelink("x.privatelink.database.windows.net."));
        assert!(!is_privatelink("x.database.windows.net"));
        assert!(!is_privatelink("myprivatelink.example.com"));
        assert_eq!(
            privatelink_zone("x.privatelink.database.windows.net.").as_deref(),
            Some("privatelink.database.windows.net")
        );
        assert_eq!(
            privatelink_zone("privatelink.blob.core.windows.net").as_deref(),
            Some("privatelink.blob.core.windows.net")
        );
        assert_eq!(privatelink_zone("x.database.windows.net"), None);
    }
}
