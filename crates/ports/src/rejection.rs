//! Why a command was rejected, as it travels in outcomes on the bus and
//! stays in the command log.

use casewire_domain::{DomainError, ErrorCode};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A rejection: `{code, message, details}`, the same JSON as the API's
/// error body, so stored command logs and bus messages written before the
/// code was typed read back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rejection {
    /// Read leniently: a code written by a newer version (or none at all)
    /// becomes `CW-REJECTED`, because an outcome or log entry that can not
    /// be read would leave its command pending forever.
    #[serde(default = "rejected", deserialize_with = "code_or_rejected")]
    pub code: ErrorCode,
    #[serde(default)]
    pub message: String,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub details: Value,
}

impl Rejection {
    /// A rejection with empty details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
            details: empty_object(),
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

impl From<&DomainError> for Rejection {
    fn from(e: &DomainError) -> Self {
        Rejection::new(e.code(), e.to_string()).with_details(e.details())
    }
}

fn rejected() -> ErrorCode {
    ErrorCode::Rejected
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn code_or_rejected<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ErrorCode, D::Error> {
    let raw = Value::deserialize(deserializer)?;
    Ok(raw.as_str().and_then(ErrorCode::parse).unwrap_or(ErrorCode::Rejected))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_and_writes_the_body_it_always_had() {
        // The bytes, not a `json!` value: a `Value` prints its keys sorted
        // unless serde_json's `preserve_order` is on, which depends on the
        // other packages built with this one.
        let stored = r#"{"code":"CW-CONFLICT","message":"the case kept changing; try again","details":{"attempts":4}}"#;
        let rejection: Rejection = serde_json::from_str(stored).unwrap();
        assert_eq!(
            rejection,
            Rejection::new(ErrorCode::Conflict, "the case kept changing; try again")
                .with_details(json!({"attempts": 4}))
        );
        assert_eq!(serde_json::to_string(&rejection).unwrap(), stored);
    }

    #[test]
    fn an_unknown_or_missing_code_is_still_a_rejection() {
        let newer: Rejection = serde_json::from_value(json!({"code": "CW-FROM-THE-FUTURE", "message": "m"})).unwrap();
        assert_eq!(newer, Rejection::new(ErrorCode::Rejected, "m"));
        let bare: Rejection = serde_json::from_value(json!({"message": "m", "details": {"a": 1}})).unwrap();
        assert_eq!(bare.code, ErrorCode::Rejected);
        assert_eq!(bare.details, json!({"a": 1}));
        let odd: Rejection = serde_json::from_value(json!({"code": 42})).unwrap();
        assert_eq!(odd, Rejection::new(ErrorCode::Rejected, ""));
    }

    #[test]
    fn a_domain_error_keeps_its_code_message_and_details() {
        let e = DomainError::UnknownStage("nowhere".into());
        let r = Rejection::from(&e);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"code": "CW-UNKNOWN-STAGE", "message": "unknown stage 'nowhere'", "details": {"value": "nowhere"}})
        );
    }
}
