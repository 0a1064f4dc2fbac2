//! The API's one error type. Every failure leaves as `{code, message,
//! details}` with a stable code; unexpected ones are an opaque 500 whose
//! cause goes to the log only.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use casewire_domain::{DomainError, ErrorCode};
use casewire_oidc::AuthError;
use casewire_ports::{BusError, Rejection, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[schema(value_type = Object)]
    pub details: Value,
}

/// An error on its way to the client; its code fixes its status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Boxed: a JSON value is large, and every handler returns this error.
    pub details: Box<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code.status(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// An error with empty details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: Box::new(json!({})),
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Box::new(details);
        self
    }

    /// The HTTP status, the code's.
    pub fn status(&self) -> StatusCode {
        // Every code's status is a valid one (a test says so); the fallback
        // only keeps this total.
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// A malformed or out-of-range parameter (query, path, header, form):
    /// 400, where a bad field of a JSON body is a 422 `CW-VALIDATION`.
    pub fn bad_parameter(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::BadParameter, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Unauthenticated, message)
    }

    /// Unexpected failure: the client sees nothing of the cause.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "Request failed unexpectedly");
        ApiError::new(ErrorCode::Internal, "internal error; see the server log")
    }

    /// The error a command rejection (an outcome's `error`) becomes.
    pub fn from_rejection(rejection: &Rejection) -> Self {
        ApiError::new(rejection.code, rejection.message.clone()).with_details(rejection.details.clone())
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::new(e.code(), e.to_string()).with_details(e.details())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { expected, actual } => {
                ApiError::new(ErrorCode::Conflict, "the case changed meanwhile; reload and retry")
                    .with_details(json!({"expected": expected, "actual": actual}))
            }
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "Store unavailable");
                ApiError::new(ErrorCode::Unavailable, "storage is unavailable; retry shortly")
            }
            StoreError::Corrupt(_) | StoreError::Backend(_) => ApiError::internal(&e),
        }
    }
}

impl From<BusError> for ApiError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Unavailable(_) | BusError::Closed => {
                tracing::warn!(error = %e, "Bus unavailable");
                ApiError::new(ErrorCode::Unavailable, "the command bus is unavailable; retry shortly")
            }
            BusError::Backend(_) => ApiError::internal(&e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable(_) => {
                tracing::warn!(error = %e, "Identity provider unavailable");
                ApiError::new(ErrorCode::Unavailable, "the identity provider is unavailable")
            }
            AuthError::Missing
            | AuthError::Malformed(_)
            | AuthError::UntrustedIssuer(_)
            | AuthError::Algorithm(_)
            | AuthError::UnknownKey(_)
            | AuthError::Invalid(_)
            | AuthError::Claims
            | AuthError::TenantMismatch { .. }
            | AuthError::NoTenant(_) => ApiError::unauthenticated(e.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status();
        let mut res = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"casewire\""));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((header::RETRY_AFTER, "2"));
        }
        res.json(ErrorBody {
            code: self.code,
            message: self.message.clone(),
            details: (*self.details).clone(),
        })
    }
}

/// Maps JSON body errors: syntax is 400, shape (unknown field, wrong type)
/// is 422, size is 413, media type is 415.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, err.to_string())
        }
        J::ContentType => ApiError::new(ErrorCode::UnsupportedMediaType, "send application/json"),
        J::Deserialize(e) => serde_error(&e),
        J::Serialize(_) | J::Payload(_) => ApiError::bad_parameter(err.to_string()),
        _ => ApiError::bad_parameter(err.to_string()),
    }
}

/// Maps a serde_json error of a request body.
pub fn serde_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::new(ErrorCode::MalformedJson, format!("malformed JSON: {e}"))
        }
        Category::Data => ApiError::new(ErrorCode::Validation, e.to_string()),
    }
}

/// Parses a JSON body; an empty body means the type's default.
pub fn json_body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| serde_error(&e))
}

/// Parses a JSON body that must be present.
pub fn required_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(ErrorCode::MalformedJson, "a JSON body is required"));
    }
    serde_json::from_slice(bytes).map_err(|e| serde_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_answers_with_its_own_status() {
        for code in ErrorCode::ALL {
            let e = ApiError::new(*code, "m");
            assert_eq!(e.status().as_u16(), code.status(), "{code}");
            assert_eq!(e.status_code(), e.status());
        }
    }

    #[test]
    fn a_rejection_from_the_bus_keeps_its_code_and_status() {
        let rejection = Rejection::new(ErrorCode::DeadLettered, "set aside").with_details(json!({"reason": "r"}));
        let e = ApiError::from_rejection(&rejection);
        assert_eq!(
            (e.status(), e.code),
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::DeadLettered)
        );
        assert_eq!(*e.details, json!({"reason": "r"}));
    }

    #[test]
    fn the_body_spells_the_code_as_before() {
        let body = ErrorBody {
            code: ErrorCode::BadCursor,
            message: "m".into(),
            details: json!({}),
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"code": "CW-BAD-CURSOR", "message": "m", "details": {}})
        );
    }

    #[test]
    fn the_openapi_document_lists_every_code_for_error_bodies_and_rejections() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(crate::routes::docs::ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let listed: Vec<&str> = schemas["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(ErrorCode::as_str).collect();
        assert_eq!(listed, all);
        for holder in ["ErrorBody", "Rejection"] {
            assert_eq!(
                schemas[holder]["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode",
                "{holder}"
            );
        }
    }
}
