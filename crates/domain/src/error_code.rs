//! The stable error codes: the one table of code → HTTP status → meaning.
//!
//! Clients match on these strings, so a code never changes its spelling or
//! its status once published. The API's error bodies, the outcomes on the
//! bus, the OpenAPI document and the README table all come from here; every
//! match is exhaustive, so a new code can not be half-added.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A stable error code, `CW-...` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // 400
    BadParameter,
    BadCursor,
    MalformedJson,
    // 401
    Unauthenticated,
    TokenExpired,
    // 403
    Forbidden,
    // 404
    NotFound,
    UnknownTask,
    // 405
    MethodNotAllowed,
    // 409
    Conflict,
    TransitionNotAllowed,
    NoChange,
    CaseClosed,
    CaseNotOpen,
    CaseNotResolved,
    CaseAlreadyOpen,
    LimitReached,
    NotPending,
    Cancelled,
    CasePending,
    UploadMissing,
    Rejected,
    TaskState,
    TaskLocked,
    // 410
    Gone,
    // 413
    PayloadTooLarge,
    // 415
    UnsupportedMediaType,
    ContentMismatch,
    // 416
    RangeNotSatisfiable,
    // 422
    Validation,
    SchemaViolation,
    UnknownStage,
    UnknownPriority,
    UnknownResolution,
    UnknownComment,
    InvalidDefinition,
    ChecksumMismatch,
    MailQuarantined,
    // 429
    TooManyStreams,
    // 500
    Internal,
    DeadLettered,
    // 501
    PresignUnsupported,
    // 503
    Unavailable,
}

impl ErrorCode {
    /// Every code, for tables, documents and tests.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BadParameter,
        ErrorCode::BadCursor,
        ErrorCode::MalformedJson,
        ErrorCode::Unauthenticated,
        ErrorCode::TokenExpired,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::UnknownTask,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::TransitionNotAllowed,
        ErrorCode::NoChange,
        ErrorCode::CaseClosed,
        ErrorCode::CaseNotOpen,
        ErrorCode::CaseNotResolved,
        ErrorCode::CaseAlreadyOpen,
        ErrorCode::LimitReached,
        ErrorCode::NotPending,
        ErrorCode::Cancelled,
        ErrorCode::CasePending,
        ErrorCode::UploadMissing,
        ErrorCode::Rejected,
        ErrorCode::TaskState,
        ErrorCode::TaskLocked,
        ErrorCode::Gone,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::ContentMismatch,
        ErrorCode::RangeNotSatisfiable,
        ErrorCode::Validation,
        ErrorCode::SchemaViolation,
        ErrorCode::UnknownStage,
        ErrorCode::UnknownPriority,
        ErrorCode::UnknownResolution,
        ErrorCode::UnknownComment,
        ErrorCode::InvalidDefinition,
        ErrorCode::ChecksumMismatch,
        ErrorCode::MailQuarantined,
        ErrorCode::TooManyStreams,
        ErrorCode::Internal,
        ErrorCode::DeadLettered,
        ErrorCode::PresignUnsupported,
        ErrorCode::Unavailable,
    ];

    /// The code on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::BadParameter => "CW-BAD-PARAMETER",
            ErrorCode::BadCursor => "CW-BAD-CURSOR",
            ErrorCode::MalformedJson => "CW-MALFORMED-JSON",
            ErrorCode::Unauthenticated => "CW-UNAUTHENTICATED",
            ErrorCode::TokenExpired => "CW-TOKEN-EXPIRED",
            ErrorCode::Forbidden => "CW-FORBIDDEN",
            ErrorCode::NotFound => "CW-NOT-FOUND",
            ErrorCode::MethodNotAllowed => "CW-METHOD-NOT-ALLOWED",
            ErrorCode::Conflict => "CW-CONFLICT",
            ErrorCode::TransitionNotAllowed => "CW-TRANSITION-NOT-ALLOWED",
            ErrorCode::NoChange => "CW-NO-CHANGE",
            ErrorCode::CaseClosed => "CW-CASE-CLOSED",
            ErrorCode::CaseNotOpen => "CW-CASE-NOT-OPEN",
            ErrorCode::CaseNotResolved => "CW-CASE-NOT-RESOLVED",
            ErrorCode::CaseAlreadyOpen => "CW-CASE-ALREADY-OPEN",
            ErrorCode::LimitReached => "CW-LIMIT-REACHED",
            ErrorCode::NotPending => "CW-NOT-PENDING",
            ErrorCode::Cancelled => "CW-CANCELLED",
            ErrorCode::CasePending => "CW-CASE-PENDING",
            ErrorCode::UploadMissing => "CW-UPLOAD-MISSING",
            ErrorCode::Rejected => "CW-REJECTED",
            ErrorCode::UnknownTask => "CW-UNKNOWN-TASK",
            ErrorCode::TaskState => "CW-TASK-STATE",
            ErrorCode::TaskLocked => "CW-TASK-LOCKED",
            ErrorCode::Gone => "CW-GONE",
            ErrorCode::PayloadTooLarge => "CW-PAYLOAD-TOO-LARGE",
            ErrorCode::UnsupportedMediaType => "CW-UNSUPPORTED-MEDIA-TYPE",
            ErrorCode::ContentMismatch => "CW-CONTENT-MISMATCH",
            ErrorCode::RangeNotSatisfiable => "CW-RANGE-NOT-SATISFIABLE",
            ErrorCode::Validation => "CW-VALIDATION",
            ErrorCode::SchemaViolation => "CW-SCHEMA-VIOLATION",
            ErrorCode::UnknownStage => "CW-UNKNOWN-STAGE",
            ErrorCode::UnknownPriority => "CW-UNKNOWN-PRIORITY",
            ErrorCode::UnknownResolution => "CW-UNKNOWN-RESOLUTION",
            ErrorCode::UnknownComment => "CW-UNKNOWN-COMMENT",
            ErrorCode::InvalidDefinition => "CW-INVALID-DEFINITION",
            ErrorCode::ChecksumMismatch => "CW-CHECKSUM-MISMATCH",
            ErrorCode::MailQuarantined => "CW-MAIL-QUARANTINED",
            ErrorCode::TooManyStreams => "CW-TOO-MANY-STREAMS",
            ErrorCode::Internal => "CW-INTERNAL",
            ErrorCode::DeadLettered => "CW-DEAD-LETTERED",
            ErrorCode::PresignUnsupported => "CW-PRESIGN-UNSUPPORTED",
            ErrorCode::Unavailable => "CW-UNAVAILABLE",
        }
    }

    /// The HTTP status an error with this code is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ErrorCode::BadParameter | ErrorCode::BadCursor | ErrorCode::MalformedJson => 400,
            // A stream's closing line, never a response; 401 says what a
            // reconnect with the same token would get.
            ErrorCode::Unauthenticated | ErrorCode::TokenExpired => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound | ErrorCode::UnknownTask => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict
            | ErrorCode::TransitionNotAllowed
            | ErrorCode::NoChange
            | ErrorCode::CaseClosed
            | ErrorCode::CaseNotOpen
            | ErrorCode::CaseNotResolved
            | ErrorCode::CaseAlreadyOpen
            | ErrorCode::LimitReached
            | ErrorCode::NotPending
            | ErrorCode::Cancelled
            | ErrorCode::CasePending
            | ErrorCode::UploadMissing
            | ErrorCode::Rejected
            | ErrorCode::TaskState
            | ErrorCode::TaskLocked => 409,
            ErrorCode::Gone => 410,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType | ErrorCode::ContentMismatch => 415,
            ErrorCode::RangeNotSatisfiable => 416,
            ErrorCode::Validation
            | ErrorCode::SchemaViolation
            | ErrorCode::UnknownStage
            | ErrorCode::UnknownPriority
            | ErrorCode::UnknownResolution
            | ErrorCode::UnknownComment
            | ErrorCode::InvalidDefinition
            | ErrorCode::ChecksumMismatch
            | ErrorCode::MailQuarantined => 422,
            ErrorCode::TooManyStreams => 429,
            // DeadLettered: the command failed inside the platform, not for
            // its content.
            ErrorCode::Internal | ErrorCode::DeadLettered => 500,
            ErrorCode::PresignUnsupported => 501,
            ErrorCode::Unavailable => 503,
        }
    }

    /// What the code means, in one line (Markdown, no `|`).
    pub fn doc(&self) -> &'static str {
        match self {
            ErrorCode::BadParameter => {
                "A query, path, header or form parameter is malformed or out of range \
                 (`sort`, `limit`, `asOf`, an unknown query parameter...), or the body could not be read."
            }
            ErrorCode::BadCursor => "The `cursor` is not one this API issued.",
            ErrorCode::MalformedJson => "The body is not well-formed JSON, or is empty where one is required.",
            ErrorCode::Unauthenticated => {
                "The bearer token is missing, malformed, expired, not yet valid, for another audience, \
                 tampered with or from an issuer not trusted for the tenant."
            }
            ErrorCode::TokenExpired => {
                "The last line of an event stream whose token expired; reconnect with a fresh token \
                 from `position + 1`."
            }
            ErrorCode::Forbidden => "The policy denies the action on a case you can see; `details.action` names it.",
            ErrorCode::NotFound => {
                "No such case, command, definition, file or route; also a case the policy hides from you \
                 or of another tenant."
            }
            ErrorCode::MethodNotAllowed => "The path exists, but not with this method; `Allow` lists those it has.",
            ErrorCode::Conflict => {
                "The case already exists, the case kept changing while deciding, or a command or file id is taken."
            }
            ErrorCode::TransitionNotAllowed => {
                "The stage graph has no transition from the current stage to the target."
            }
            ErrorCode::NoChange => {
                "The command would change nothing (assigning the current assignee, tagging twice...)."
            }
            ErrorCode::CaseClosed => "The case is closed; reopen it first.",
            ErrorCode::CaseNotOpen => "The command needs an open case, and this one is resolved.",
            ErrorCode::CaseNotResolved => "`close` needs a resolved case.",
            ErrorCode::CaseAlreadyOpen => "`reopen` needs a resolved or closed case.",
            ErrorCode::LimitReached => {
                "The case holds as many comments, tags, links or attachments as a case may; `details` says which."
            }
            ErrorCode::NotPending => "The command is no longer pending and can not be cancelled.",
            ErrorCode::Cancelled => "The command was cancelled before it ran.",
            ErrorCode::CasePending => "A command for a case whose `open` has not landed within 5 s; retry shortly.",
            ErrorCode::UploadMissing => "Completing a presigned upload before its bytes arrived.",
            ErrorCode::Rejected => {
                "A rejection whose code this version does not know (from a newer version), or that had none."
            }
            ErrorCode::UnknownTask => "The case has no task with this id.",
            ErrorCode::TaskState => {
                "The task is not in a state that allows this: it ended, someone claimed it, or it has an incident."
            }
            ErrorCode::TaskLocked => {
                "Another worker or person holds the task; or, for a worker's complete, failure or extension,                  its lock was not taken (or has expired) by this worker."
            }
            ErrorCode::Gone => "The file's bytes were purged by the retention rule; its record stays.",
            ErrorCode::PayloadTooLarge => {
                "The body is larger than `api.max_body_bytes`, or a file than `storage.max_upload_bytes`."
            }
            ErrorCode::UnsupportedMediaType => {
                "The body is not `application/json` where JSON is expected, or a file type is not in \
                 `storage.allowed_types`."
            }
            ErrorCode::ContentMismatch => "A file's bytes contradict its declared type.",
            ErrorCode::RangeNotSatisfiable => "The `Range` lies past the end of the file.",
            ErrorCode::Validation => {
                "A field of the body breaks its rule: unknown field, wrong type, bad value, no such file or case."
            }
            ErrorCode::SchemaViolation => {
                "The case data violates the definition's JSON Schema; `details.errors` lists each violation."
            }
            ErrorCode::UnknownStage => "The stage is not part of the case's definition.",
            ErrorCode::UnknownPriority => "The priority is not part of the case's definition.",
            ErrorCode::UnknownResolution => "The resolution code is not part of the case's definition.",
            ErrorCode::UnknownComment => "A reply names a parent comment the case does not have.",
            ErrorCode::InvalidDefinition => "The case definition is malformed.",
            ErrorCode::ChecksumMismatch => "A file's SHA-256 is not the announced one; nothing was stored.",
            ErrorCode::MailQuarantined => {
                "A mail can not be taken as it is (not MIME, too big, too deep, a blocked attachment); `details.reason` says why."
            }
            ErrorCode::TooManyStreams => "The caller holds `stream.max_per_principal` event streams already.",
            ErrorCode::Internal => "An unexpected failure; the cause is in the server log only.",
            ErrorCode::DeadLettered => {
                "The command could not be handled and was set aside for an operator; nothing was changed."
            }
            ErrorCode::PresignUnsupported => "The file storage has no presigned URLs (local disk).",
            ErrorCode::Unavailable => {
                "A store, the bus, the identity provider or the policy engine is unreachable; nothing was \
                 accepted, retry after `Retry-After`."
            }
        }
    }

    /// The code spelled `s` on the wire, if there is one.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The table of every code for the README: `| status | code | meaning |`,
    /// by status, then code.
    pub fn markdown_table() -> String {
        let mut codes = ErrorCode::ALL.to_vec();
        codes.sort_by_key(|c| (c.status(), c.as_str()));
        let mut table = String::from("| status | code | meaning |\n|---|---|---|\n");
        for c in codes {
            table.push_str(&format!("| {} | `{}` | {} |\n", c.status(), c.as_str(), c.doc()));
        }
        table
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Strict: an unknown code is an error. Readers of other processes' output
/// (outcomes, the command log) that must survive codes of a newer version
/// map those to [`ErrorCode::Rejected`] themselves.
impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        ErrorCode::parse(&raw).ok_or_else(|| serde::de::Error::custom(format!("unknown error code '{raw}'")))
    }
}

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ErrorCode::ALL.iter().map(ErrorCode::as_str)))
            .description(Some(format!(
                "A stable error code; each is always answered with the same status.\n\n{}",
                ErrorCode::markdown_table()
            )))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Its position in `ALL`. Exhaustive, so a new variant fails to compile
    /// here until it is given a position, and the test below then fails
    /// until `ALL` holds it there.
    fn position(code: ErrorCode) -> usize {
        match code {
            ErrorCode::BadParameter => 0,
            ErrorCode::BadCursor => 1,
            ErrorCode::MalformedJson => 2,
            ErrorCode::Unauthenticated => 3,
            ErrorCode::TokenExpired => 4,
            ErrorCode::Forbidden => 5,
            ErrorCode::NotFound => 6,
            ErrorCode::UnknownTask => 7,
            ErrorCode::MethodNotAllowed => 8,
            ErrorCode::Conflict => 9,
            ErrorCode::TransitionNotAllowed => 10,
            ErrorCode::NoChange => 11,
            ErrorCode::CaseClosed => 12,
            ErrorCode::CaseNotOpen => 13,
            ErrorCode::CaseNotResolved => 14,
            ErrorCode::CaseAlreadyOpen => 15,
            ErrorCode::LimitReached => 16,
            ErrorCode::NotPending => 17,
            ErrorCode::Cancelled => 18,
            ErrorCode::CasePending => 19,
            ErrorCode::UploadMissing => 20,
            ErrorCode::Rejected => 21,
            ErrorCode::TaskState => 22,
            ErrorCode::TaskLocked => 23,
            ErrorCode::Gone => 24,
            ErrorCode::PayloadTooLarge => 25,
            ErrorCode::UnsupportedMediaType => 26,
            ErrorCode::ContentMismatch => 27,
            ErrorCode::RangeNotSatisfiable => 28,
            ErrorCode::Validation => 29,
            ErrorCode::SchemaViolation => 30,
            ErrorCode::UnknownStage => 31,
            ErrorCode::UnknownPriority => 32,
            ErrorCode::UnknownResolution => 33,
            ErrorCode::UnknownComment => 34,
            ErrorCode::InvalidDefinition => 35,
            ErrorCode::ChecksumMismatch => 36,
            ErrorCode::MailQuarantined => 37,
            ErrorCode::TooManyStreams => 38,
            ErrorCode::Internal => 39,
            ErrorCode::DeadLettered => 40,
            ErrorCode::PresignUnsupported => 41,
            ErrorCode::Unavailable => 42,
        }
    }
    const VARIANTS: usize = 43;

    #[test]
    fn all_holds_every_variant_once() {
        assert_eq!(ErrorCode::ALL.len(), VARIANTS);
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(position(*code), i, "{code} is out of place in ALL");
        }
    }

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} is used twice");
            assert!(s.starts_with("CW-"), "{s}");
            assert_eq!(ErrorCode::parse(s), Some(*code));
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(s.to_owned()));
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), *code);
        }
        assert_eq!(ErrorCode::parse("CW-NO-SUCH-CODE"), None);
        assert!(serde_json::from_str::<ErrorCode>("\"CW-NO-SUCH-CODE\"").is_err());
    }

    #[test]
    fn every_code_has_a_one_line_doc_and_an_error_status() {
        for code in ErrorCode::ALL {
            let doc = code.doc();
            assert!(!doc.trim().is_empty(), "{code} has no doc");
            assert!(!doc.contains(['\n', '|']), "{code}: one table cell, please: {doc}");
            assert!((400..600).contains(&code.status()), "{code}");
        }
    }

    #[test]
    fn the_readme_carries_the_generated_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let expected = ErrorCode::markdown_table();
        let between = readme
            .split_once("<!-- error-codes:start -->")
            .and_then(|(_, rest)| rest.split_once("<!-- error-codes:end -->"))
            .map(|(table, _)| table.trim());
        assert_eq!(
            between,
            Some(expected.trim()),
            "README.md must hold this table between <!-- error-codes:start --> and \
             <!-- error-codes:end -->:\n\n{expected}"
        );
    }
}
