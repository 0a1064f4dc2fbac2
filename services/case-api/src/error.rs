//! The API's one error type. Every failure leaves as `{code, message,
//! details}` with a stable code; unexpected ones are an opaque 500 whose
//! cause goes to the log only.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use casewire_domain::DomainError;
use casewire_oidc::AuthError;
use casewire_ports::{BusError, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code such as `CW-VALIDATION`.
    pub code: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub details: Value,
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Boxed: a JSON value is large, and every handler returns this error.
    pub details: Box<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// An error with empty details.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: Box::new(json!({})),
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Box::new(details);
        self
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "CW-NOT-FOUND", format!("{what} not found"))
    }

    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "CW-VALIDATION", message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "CW-UNAUTHENTICATED", message)
    }

    /// Unexpected failure: the client sees nothing of the cause.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "Request failed unexpectedly");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CW-INTERNAL",
            "internal error; see the server log",
        )
    }

    /// The error a command rejection (an outcome's `error` body) becomes.
    pub fn from_rejection(body: &Value) -> Self {
        let code = body.get("code").and_then(Value::as_str).unwrap_or("CW-REJECTED");
        ApiError {
            status: status_for_code(code),
            code: code.to_owned(),
            message: body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("rejected")
                .to_owned(),
            details: Box::new(body.get("details").cloned().unwrap_or_else(|| json!({}))),
        }
    }
}

/// The HTTP status of a domain rejection.
pub fn domain_status(e: &DomainError) -> StatusCode {
    match e {
        DomainError::NotFound => StatusCode::NOT_FOUND,
        DomainError::Validation { .. }
        | DomainError::SchemaViolation { .. }
        | DomainError::UnknownStage(_)
        | DomainError::UnknownPriority(_)
        | DomainError::UnknownResolution(_)
        | DomainError::UnknownComment(_)
        | DomainError::InvalidDefinition(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::AlreadyExists
        | DomainError::TransitionNotAllowed { .. }
        | DomainError::CaseClosed
        | DomainError::CaseNotOpen { .. }
        | DomainError::CaseNotResolved
        | DomainError::CaseAlreadyOpen
        | DomainError::NoChange(_)
        | DomainError::LimitReached { .. } => StatusCode::CONFLICT,
    }
}

/// The status of a rejection known only by its code (it crossed the bus).
pub fn status_for_code(code: &str) -> StatusCode {
    match code {
        "CW-NOT-FOUND" => StatusCode::NOT_FOUND,
        "CW-VALIDATION"
        | "CW-SCHEMA-VIOLATION"
        | "CW-UNKNOWN-STAGE"
        | "CW-UNKNOWN-PRIORITY"
        | "CW-UNKNOWN-RESOLUTION"
        | "CW-UNKNOWN-COMMENT"
        | "CW-INVALID-DEFINITION" => StatusCode::UNPROCESSABLE_ENTITY,
        // The command failed inside the platform, not for its content.
        "CW-DEAD-LETTERED" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::CONFLICT,
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError {
            status: domain_status(&e),
            code: e.code().to_owned(),
            message: e.to_string(),
            details: Box::new(e.details()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { expected, actual } => ApiError::new(
                StatusCode::CONFLICT,
                "CW-CONFLICT",
                "the case changed meanwhile; reload and retry",
            )
            .with_details(json!({"expected": expected, "actual": actual})),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "Store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "CW-UNAVAILABLE",
                    "storage is unavailable; retry shortly",
                )
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
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "CW-UNAVAILABLE",
                    "the command bus is unavailable; retry shortly",
                )
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
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "CW-UNAVAILABLE",
                    "the identity provider is unavailable",
                )
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
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"casewire\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((header::RETRY_AFTER, "2"));
        }
        res.json(ErrorBody {
            code: self.code.clone(),
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
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "CW-PAYLOAD-TOO-LARGE", err.to_string())
        }
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "CW-UNSUPPORTED-MEDIA-TYPE",
            "send application/json",
        ),
        J::Deserialize(e) => serde_error(&e),
        J::Serialize(_) | J::Payload(_) => ApiError::validation(err.to_string()),
        _ => ApiError::validation(err.to_string()),
    }
}

/// Maps a serde_json error of a request body.
pub fn serde_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "CW-MALFORMED-JSON",
            format!("malformed JSON: {e}"),
        ),
        Category::Data => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "CW-VALIDATION", e.to_string()),
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
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "CW-MALFORMED-JSON",
            "a JSON body is required",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| serde_error(&e))
}
