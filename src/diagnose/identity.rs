//! Hints of the managed-identity classes (`platform/identity.rs`): no token for a login.
//! The layer that wanted the token ran credential-free first, so each hint can say the
//! route works. Facts: docs/azure-facts.md rows I1-I6.

use crate::report::FailureClass;

/// The hint for an `identity.*` class; `client_id` is the user-assigned identity the
/// login asked for (`None`: the system-assigned one).
pub(super) fn hint(class: FailureClass, client_id: Option<&str>) -> String {
    use FailureClass as C;
    let which = match client_id {
        Some(c) => format!("the user-assigned identity with client id {c}"),
        None => "the system-assigned identity".to_string(),
    };
    match class {
        C::IdentityNotConfigured => "The route works, but this app has no managed identity to log in with: IDENTITY_ENDPOINT and IDENTITY_HEADER are not set (App Service sets both when an identity is on). Turn on the system-assigned identity (the app's Identity page: Status On) or add a user-assigned one and set `client_id`; off Azure there is no identity endpoint, so probe without `authentication = \"managed_identity\"`.".into(),
        C::IdentityUnavailable => format!(
            "The route works, but the app's identity endpoint (IDENTITY_ENDPOINT, local to the instance) did not answer: the managed identity is not enabled or was just turned on (restart the app), WEBSITE_DISABLE_MSI is set, or IDENTITY_ENDPOINT was overridden by an app setting and points nowhere. No token could be asked for {which}."
        ),
        C::IdentityRefused => match client_id {
            Some(c) => format!(
                "The route works, but the identity endpoint refused the token request for client id {c}: 400 \"Unable to load the proper Managed Identity\" means no user-assigned identity with that client id is assigned to this app. Assign it (the app's Identity page > User assigned), and use its client id (not its object/principal id) in `client_id` (in app settings: the connection's `__clientId`). A 401/403 means IDENTITY_HEADER is stale (never copy it into an app setting); a 5xx is the platform's token service: retry."
            ),
            None => "The route works, but the identity endpoint refused the token request for the system-assigned identity: with only user-assigned identities on the app (or several of them), the request must name one: set `client_id` to its client id (in app settings: the connection's `__clientId`), or turn on the system-assigned identity. A 401/403 means IDENTITY_HEADER is stale (never copy it into an app setting); a 5xx is the platform's token service: retry.".into(),
        },
        C::IdentityMalformed => format!(
            "The route works, but the identity endpoint's answer for {which} was not a usable token (no `access_token`, or `expires_on` missing, unreadable or in the past): something other than App Service's token service answers at IDENTITY_ENDPOINT (an app setting overriding it, a proxy), or the instance clock is wrong."
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_names_the_client_id_and_the_setting() {
        let h = hint(FailureClass::IdentityRefused, Some("11111111-aaaa"));
        assert!(
            h.contains("11111111-aaaa") && h.contains("__clientId") && h.contains("User assigned"),
            "{h}"
        );
        let h = hint(FailureClass::IdentityRefused, None);
        assert!(
            h.contains("system-assigned") && h.contains("`client_id`"),
            "{h}"
        );
        let h = hint(FailureClass::IdentityUnavailable, None);
        assert!(
            h.contains("not enabled") && h.contains("IDENTITY_ENDPOINT"),
            "{h}"
        );
    }
}
