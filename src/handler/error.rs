//! The handler's own error classes: one enum, mapped once to the HTTP status and the
//! stable class string callers and monitors match on (the JSON spelling is the
//! contract; the report's failure classes are the engine's, in `report`).

use axum::http::StatusCode;
use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A method the route does not serve (405).
    RequestMethod,
    /// A query or body the route cannot use (400).
    RequestInvalid,
    /// `?name=` names a target that is not configured (400).
    RequestUnknownName,
    /// The request body could not be read (400).
    RequestBody,
    /// The body is over the limit (413).
    RequestTooLarge,
    /// POST without a body (400).
    RequestEmptyBody,
    /// A body that is not JSON (415).
    RequestUnsupportedMediaType,
    /// A JSON body that does not parse (400).
    RequestInvalidJson,
    /// An ad-hoc target URI that does not parse (400).
    RequestInvalidTarget,
    /// More ad-hoc targets than the policy allows per request (400).
    RequestTooManyTargets,
    /// Every ad-hoc slot is busy (429).
    RequestBusy,
    /// Refused by the ad-hoc policy, or ad-hoc targets are off (403).
    PolicyDenied,
    /// Nothing configured, so nothing could be proven (503).
    ConfigNoTargets,
    /// `?last` before any scheduled run finished (404).
    ReportNone,
    /// The stored last run is from a routeproof this instance cannot render (another
    /// report schema, a class it does not know); JSON is still served (406).
    ReportNotRenderable,
    /// `?history` without a store configured (404).
    HistoryOff,
    /// The store could not be read for `?history` (503; the class names why).
    HistoryUnavailable,
    /// Our failure (500).
    HandlerInternal,
    /// No route at this path (404).
    HandlerNotFound,
    /// Payload mode for a function this handler does not serve (404).
    HandlerUnknownFunction,
    /// The payload envelope is not usable (400).
    EnvelopeInvalid,
    /// The payload envelope is over its limit (413).
    EnvelopeTooLarge,
    /// The envelope lacks the binding the function needs (400).
    EnvelopeMissingBinding,
}

impl ErrorClass {
    /// The status and the class string, in one place.
    fn spec(self) -> (StatusCode, &'static str) {
        use ErrorClass::*;
        match self {
            RequestMethod => (StatusCode::METHOD_NOT_ALLOWED, "request.method"),
            RequestInvalid => (StatusCode::BAD_REQUEST, "request.invalid"),
            RequestUnknownName => (StatusCode::BAD_REQUEST, "request.unknown_name"),
            RequestBody => (StatusCode::BAD_REQUEST, "request.body"),
            RequestTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request.too_large"),
            RequestEmptyBody => (StatusCode::BAD_REQUEST, "request.empty_body"),
            RequestUnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request.unsupported_media_type",
            ),
            RequestInvalidJson => (StatusCode::BAD_REQUEST, "request.invalid_json"),
            RequestInvalidTarget => (StatusCode::BAD_REQUEST, "request.invalid_target"),
            RequestTooManyTargets => (StatusCode::BAD_REQUEST, "request.too_many_targets"),
            RequestBusy => (StatusCode::TOO_MANY_REQUESTS, "request.busy"),
            PolicyDenied => (StatusCode::FORBIDDEN, "policy.denied"),
            ConfigNoTargets => (StatusCode::SERVICE_UNAVAILABLE, "config.no_targets"),
            ReportNone => (StatusCode::NOT_FOUND, "report.none"),
            ReportNotRenderable => (StatusCode::NOT_ACCEPTABLE, "report.not_renderable"),
            HistoryOff => (StatusCode::NOT_FOUND, "history.off"),
            HistoryUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "history.unavailable"),
            HandlerInternal => (StatusCode::INTERNAL_SERVER_ERROR, "handler.internal"),
            HandlerNotFound => (StatusCode::NOT_FOUND, "handler.not_found"),
            HandlerUnknownFunction => (StatusCode::NOT_FOUND, "handler.unknown_function"),
            EnvelopeInvalid => (StatusCode::BAD_REQUEST, "envelope.invalid"),
            EnvelopeTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "envelope.too_large"),
            EnvelopeMissingBinding => (StatusCode::BAD_REQUEST, "envelope.missing_binding"),
        }
    }

    pub fn status(self) -> StatusCode {
        self.spec().0
    }

    pub fn as_str(self) -> &'static str {
        self.spec().1
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A class reads as its string (`class.starts_with("envelope.")`).
impl std::ops::Deref for ErrorClass {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<&str> for ErrorClass {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ErrorClass {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every class (a new variant that is missing here still gets its string from
    /// the exhaustive `match` in `spec`).
    const ALL: [ErrorClass; 23] = [
        ErrorClass::RequestMethod,
        ErrorClass::RequestInvalid,
        ErrorClass::RequestUnknownName,
        ErrorClass::RequestBody,
        ErrorClass::RequestTooLarge,
        ErrorClass::RequestEmptyBody,
        ErrorClass::RequestUnsupportedMediaType,
        ErrorClass::RequestInvalidJson,
        ErrorClass::RequestInvalidTarget,
        ErrorClass::RequestTooManyTargets,
        ErrorClass::RequestBusy,
        ErrorClass::PolicyDenied,
        ErrorClass::ConfigNoTargets,
        ErrorClass::ReportNone,
        ErrorClass::ReportNotRenderable,
        ErrorClass::HistoryOff,
        ErrorClass::HistoryUnavailable,
        ErrorClass::HandlerInternal,
        ErrorClass::HandlerNotFound,
        ErrorClass::HandlerUnknownFunction,
        ErrorClass::EnvelopeInvalid,
        ErrorClass::EnvelopeTooLarge,
        ErrorClass::EnvelopeMissingBinding,
    ];

    #[test]
    fn classes_are_distinct_and_dotted() {
        let names: std::collections::HashSet<&str> = ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ALL.len());
        for c in ALL {
            assert!(c.contains('.'), "{c}");
            assert!(
                c.status().is_client_error() || c.status().is_server_error(),
                "{c}"
            );
        }
        assert_eq!(ErrorClass::EnvelopeInvalid, "envelope.invalid");
        assert_eq!(
            serde_json::to_string(&ErrorClass::PolicyDenied).unwrap(),
            "\"policy.denied\""
        );
    }
}
