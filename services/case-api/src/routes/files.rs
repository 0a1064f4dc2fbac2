//! `/api/v1/files`: streaming uploads (checksummed, size-limited, sniffed),
//! ranged downloads, presigned URLs, and the file's record. Access to a file
//! follows the policy of the cases it is attached to; a file no case holds
//! is its uploader's alone. Anything the caller may not see is 404.

use casewire_domain::types::TenantId;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse, get, head, post};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use casewire_domain::ErrorCode;
use casewire_oidc::Principal;
use casewire_ports::Action;
use casewire_ports::{BlobError, ByteRange, ByteStream, FileRecord, FileState, Resource};
use chrono::Utc;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// How many leading bytes are looked at to check the declared type.
const SNIFF_BYTES: usize = 8192;

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match &e {
            BlobError::NotFound => ApiError::not_found("file"),
            BlobError::ChecksumMismatch { expected, actual } => ApiError::new(
                ErrorCode::ChecksumMismatch,
                "the body's SHA-256 is not the one announced; nothing was stored",
            )
            .with_details(serde_json::json!({"expected": expected, "actual": actual})),
            BlobError::TooLarge { limit } => ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("files are limited to {limit} bytes (storage.max_upload_bytes); nothing was stored"),
            ),
            BlobError::Refused(why) => ApiError::new(ErrorCode::ContentMismatch, format!("{why}; nothing was stored")),
            BlobError::InvalidRange { size } => {
                ApiError::new(ErrorCode::RangeNotSatisfiable, format!("the file has {size} bytes"))
                    .with_details(serde_json::json!({"size": size}))
            }
            BlobError::Unavailable(_) => {
                tracing::warn!(error = %e, "Blob store unavailable");
                ApiError::new(ErrorCode::Unavailable, "file storage is unavailable; retry shortly")
            }
            BlobError::Backend(_) => ApiError::internal(&e),
        }
    }
}

/// Where a tenant's file lives in the blob store.
pub fn blob_key(tenant: &TenantId, id: Uuid) -> String {
    casewire_ports::blob::file_key(tenant, id)
}

/// Where a presigned upload's bytes land before `complete` copies them to
/// [`blob_key`]. The file's own key is never handed out for writing, so a
/// URL still valid after `complete` can not change bytes a case holds.
pub fn upload_key(tenant: &TenantId, id: Uuid) -> String {
    format!("{tenant}/uploads/{id}")
}

/// Whether `content_type` (parameters ignored) is on the allow-list.
pub(crate) fn type_allowed(allowed: &[String], content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    allowed.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        match a.strip_suffix("/*") {
            Some(major) => essence.split('/').next() == Some(major),
            None => a == essence,
        }
    })
}

/// Whether the first bytes contradict the declared type: a recognisable
/// format that is another one, a binary body declared as text, or a type
/// with a signature whose signature is missing.
pub fn contradicts(declared: &str, head: &[u8]) -> Option<String> {
    let declared = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if declared == "application/octet-stream" {
        return None;
    }
    let sniffed = infer::get(head).map(|t| t.mime_type());
    if declared.starts_with("text/") || declared == "message/rfc822" {
        return match sniffed {
            _ if head.contains(&0) => Some(format!("the bytes are binary, not {declared}")),
            Some(t) if !t.starts_with("text/") => Some(format!("the bytes are {t}, not {declared}")),
            _ => None,
        };
    }
    match sniffed {
        Some(t) if t == declared => None,
        // Office documents are zip containers.
        Some("application/zip") if declared.starts_with("application/vnd.openxmlformats") => None,
        Some(t) => Some(format!("the bytes are {t}, not {declared}")),
        None if declared.starts_with("image/") || declared == "application/pdf" || declared == "application/zip" => {
            Some(format!("the bytes are not {declared}"))
        }
        None => None,
    }
}

/// The request body as a blob stream: counts bytes (an error past the
/// limit) and checks the declared type against the first bytes before any
/// of them is passed on.
struct Checked<S> {
    inner: S,
    limit: u64,
    seen: u64,
    declared: String,
    head: Option<BytesMut>,
    done: bool,
}

impl<S> Checked<S> {
    fn fail(&mut self, e: BlobError) -> Poll<Option<Result<Bytes, BlobError>>> {
        self.done = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl<S, E> Stream for Checked<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = Result<Bytes, BlobError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match self.inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return self.fail(BlobError::Refused(format!("reading the body: {e}"))),
                Poll::Ready(Some(Ok(chunk))) => {
                    self.seen += chunk.len() as u64;
                    if self.seen > self.limit {
                        let limit = self.limit;
                        return self.fail(BlobError::TooLarge { limit });
                    }
                    let Some(head) = self.head.as_mut() else {
                        return Poll::Ready(Some(Ok(chunk)));
                    };
                    head.extend_from_slice(&chunk);
                    if head.len() < SNIFF_BYTES {
                        continue;
                    }
                    return self.release_head();
                }
                Poll::Ready(None) => {
                    // The body has ended: never poll it again (actix's
                    // multipart field panics when polled past its end).
                    self.done = true;
                    if self.head.is_some() {
                        // A body shorter than the sniffing window.
                        return self.release_head();
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl<S> Checked<S> {
    fn release_head(&mut self) -> Poll<Option<Result<Bytes, BlobError>>> {
        let head = self.head.take().unwrap_or_default().freeze();
        if let Some(why) = contradicts(&self.declared, &head) {
            return self.fail(BlobError::Refused(why));
        }
        if head.is_empty() {
            // Nothing at all: the stream simply ends.
            self.done = true;
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(head)))
    }
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// `x-checksum-sha256` as lower-case hex; S3 clients send base64, others hex.
fn announced_sha256(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    header_str(req, "x-checksum-sha256").map(parse_sha256).transpose()
}

/// A SHA-256 in hex or base64, as lower-case hex.
pub(crate) fn parse_sha256(raw: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_parameter("x-checksum-sha256 must be a SHA-256 in hex or base64")
            .with_details(serde_json::json!({"field": "x-checksum-sha256"}))
    };
    if raw.len() == 64 && raw.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(raw.to_ascii_lowercase());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| bad())?;
    if bytes.len() != 32 {
        return Err(bad());
    }
    Ok(hex::encode(bytes))
}

/// The file name from `x-file-name` (percent-encoded UTF-8 allowed) or
/// `Content-Disposition: ...; filename="..."`, cut to its last path part.
fn file_name(req: &HttpRequest) -> Result<String, ApiError> {
    let raw = header_str(req, "x-file-name")
        .map(decode_file_name)
        .or_else(|| {
            req.headers()
                .get(header::CONTENT_DISPOSITION)
                .and_then(|v| header::ContentDisposition::from_raw(v).ok())
                .and_then(|d| d.get_filename().map(str::to_owned))
        })
        .ok_or_else(|| {
            ApiError::bad_parameter("name the file with an x-file-name header (or Content-Disposition filename)")
                .with_details(serde_json::json!({"field": "x-file-name"}))
        })?;
    clean_name(&raw)
}

/// An `x-file-name`: percent-encoded UTF-8, decoded (lossy).
pub(crate) fn decode_file_name(header: &str) -> String {
    percent_encoding::percent_decode_str(header)
        .decode_utf8_lossy()
        .into_owned()
}

/// The last path part of a client's file name, checked.
pub(crate) fn clean_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(
            ApiError::bad_parameter("the file name must be 1 to 255 characters, without control characters")
                .with_details(serde_json::json!({"field": "x-file-name"})),
        );
    }
    Ok(name.to_owned())
}

/// May `who` read `file`? Through any case it is attached to that the
/// policy lets them see; a file attached to none is its uploader's.
pub async fn may_read(state: &AppState, who: &Principal, file: &FileRecord) -> Result<bool, ApiError> {
    if file.tenant != who.tenant {
        return Ok(false);
    }
    if file.cases.is_empty() {
        return Ok(file.uploaded_by == who.name);
    }
    for case_id in &file.cases {
        let Ok(case) = authz::current_case(state, &file.tenant, *case_id).await else {
            continue;
        };
        if authz::decide(state, who, Action::CaseRead, Some(&Resource::of(&case)))
            .await?
            .visible
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A file the caller may read, or 404.
async fn readable(state: &AppState, who: &Principal, id: &str) -> Result<FileRecord, ApiError> {
    let not_found = || ApiError::not_found("file");
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let file = state
        .platform
        .reads
        .get_file(&who.tenant, id)
        .await?
        .filter(|f| matches!(f.state, FileState::Uploaded | FileState::Pinned | FileState::Purged))
        .ok_or_else(not_found)?;
    if !may_read(state, who, &file).await? {
        return Err(not_found());
    }
    if file.state == FileState::Purged {
        return Err(ApiError::new(
            ErrorCode::Gone,
            "the file's bytes were purged by the retention rule; its record stays in the case history",
        )
        .with_details(serde_json::to_value(&file).unwrap_or_default()));
    }
    Ok(file)
}

/// Upload a file: the body is the bytes. The SHA-256 is computed while
/// streaming; `x-checksum-sha256` (hex or base64) is verified. The file is
/// yours until a case you attach it to holds it; unattached files are
/// removed after `storage.unattached_ttl_secs`.
#[utoipa::path(
    post, path = "/api/v1/files", tag = "files",
    params(
        ("Content-Type" = String, Header, description = "The file's type; must be allowed and match the bytes"),
        ("x-file-name" = String, Header, max_length = 255,
            pattern = r"^(?:[ -~]*[/\\])?(?:%(?:[89ABabD-Fd-f][0-9A-Fa-f]|[Cc][013-9A-Fa-f])(?: |%(?:[89ABabD-Fd-f][0-9A-Fa-f]|[Cc][013-9A-Fa-f]))*)?[!-$&-.0-\[\]-~](?:(?:[ -$&-.0-\[\]-~]|%(?:[89ABabD-Fd-f][0-9A-Fa-f]|[Cc][013-9A-Fa-f]))*(?:[!-$&-.0-\[\]-~]|%(?:[89ABabD-Fd-f][0-9A-Fa-f]|[Cc][013-9A-Fa-f])))?$",
            description = "The file name: percent-encoded UTF-8 allowed; the part after the last `/` or `\\` is kept, and it must be 1 to 255 bytes once decoded and trimmed, without control characters (else 400). \
                The pattern admits a last part of printable ASCII (no `%`) and percent-escapes of bytes 0x80 and up (but 0xC2, which begins the C1 control characters), with an ASCII character that is not a space and no space at its ends. \
                Without this header, the `filename` of a `Content-Disposition` header is used."),
        ("x-file-id" = Option<Uuid>, Header, description = "A client-chosen id; default a new one (else 400). An id taken is 409."),
        ("x-checksum-sha256" = Option<String>, Header, pattern = r"^(?:[0-9A-Fa-f]{64}|[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$",
            description = "SHA-256 of the body: 64 hex digits, or the 32 bytes in padded base64 (else 400); a body with another SHA-256 is 422 `CW-CHECKSUM-MISMATCH`"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The bytes. `application/octet-stream` takes any bytes; any other type of `storage.allowed_types` is taken when the bytes are of that type (else 415 `CW-CONTENT-MISMATCH`). \
            `multipart/form-data` is taken too: optional text fields `fileId`, `name` and `sha256` (64 hex digits) first, then the part `file`."),
    responses(
        (status = 201, body = FileRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/files")]
pub async fn upload(
    state: Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: Payload,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::FileUpload).await?;
    let content_type = header_str(&req, "content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    if content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        return upload_form(&state, &auth, &req, body).await;
    }
    let name = file_name(&req)?;
    let id = header_str(&req, "x-file-id").map(str::to_owned);
    let expected = announced_sha256(&req)?;
    store_upload(&state, &auth, &req, id.as_deref(), name, content_type, expected, body).await
}

fn form_error(message: impl Into<String>) -> ApiError {
    ApiError::bad_parameter(message).with_details(serde_json::json!({"field": "form"}))
}

/// A small text field of a form.
async fn form_text(field: &mut actix_multipart::Field, what: &str) -> Result<String, ApiError> {
    let mut text = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| form_error(format!("reading {what}: {e}")))?;
        text.extend_from_slice(&chunk);
        if text.len() > 1024 {
            return Err(form_error(format!("{what} is too long")));
        }
    }
    String::from_utf8(text).map_err(|_| form_error(format!("{what} is not UTF-8")))
}

/// `multipart/form-data`: optional text fields `fileId`, `name` and
/// `sha256` first, then the part `file` (its own content type and file
/// name), streamed like a plain upload.
async fn upload_form(
    state: &AppState,
    auth: &Auth,
    req: &HttpRequest,
    body: Payload,
) -> Result<HttpResponse, ApiError> {
    let mut form = actix_multipart::Multipart::new(req.headers(), body);
    let (mut id, mut name, mut sha) = (None, None, announced_sha256(req)?);
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| form_error(format!("malformed form: {e}")))?;
        match field.name().unwrap_or_default() {
            "fileId" => id = Some(form_text(&mut field, "fileId").await?),
            "name" => name = Some(form_text(&mut field, "name").await?),
            "sha256" => {
                let raw = form_text(&mut field, "sha256").await?;
                if raw.len() != 64 || !raw.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(form_error("sha256 must be 64 hex digits"));
                }
                sha = Some(raw.to_ascii_lowercase());
            }
            "file" => {
                let content_type = field
                    .content_type()
                    .map_or_else(|| "application/octet-stream".to_owned(), ToString::to_string);
                let name = name
                    .or_else(|| {
                        field
                            .content_disposition()
                            .and_then(|d| d.get_filename().map(str::to_owned))
                    })
                    .ok_or_else(|| form_error("name the file: a name field, or a filename on the file part"))?;
                let name = clean_name(&name)?;
                return store_upload(state, auth, req, id.as_deref(), name, content_type, sha, field).await;
            }
            other => {
                return Err(form_error(format!(
                    "unknown form field '{other}' (fileId, name, sha256, file)"
                )));
            }
        }
    }
    Err(form_error("the form has no file part"))
}

/// Streams one upload to the blob store and records it.
#[allow(clippy::too_many_arguments)]
async fn store_upload<S, E>(
    state: &AppState,
    auth: &Auth,
    req: &HttpRequest,
    id: Option<&str>,
    name: String,
    content_type: String,
    expected: Option<String>,
    body: S,
) -> Result<HttpResponse, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + 'static,
    E: std::fmt::Display + 'static,
{
    let cfg = &state.platform.config.storage;
    if !type_allowed(&cfg.allowed_types, &content_type) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("{content_type} is not an allowed file type (storage.allowed_types)"),
        )
        .with_details(serde_json::json!({"allowed": cfg.allowed_types})));
    }
    let id = match id {
        Some(raw) => raw.trim().parse::<Uuid>().map_err(|_| {
            ApiError::bad_parameter("the file id must be a UUID")
                .with_details(serde_json::json!({"field": "x-file-id"}))
        })?,
        None => Uuid::now_v7(),
    };
    if let Some(declared) = header_str(req, "content-length").and_then(|l| l.parse::<u64>().ok())
        && declared > cfg.max_upload_bytes
    {
        return Err(BlobError::TooLarge {
            limit: cfg.max_upload_bytes,
        }
        .into());
    }
    if state.platform.reads.get_file(&auth.tenant, id).await?.is_some() {
        return Err(ApiError::new(ErrorCode::Conflict, "a file with that id exists"));
    }
    // The request body is tied to this worker thread; a small channel hands
    // its chunks to the blob store (at most a few chunks in flight, so
    // memory stays bounded whatever the size).
    let mut checked = Checked {
        inner: body,
        limit: cfg.max_upload_bytes,
        seen: 0,
        declared: content_type.clone(),
        head: Some(BytesMut::new()),
        done: false,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, BlobError>>(4);
    actix_web::rt::spawn(async move {
        while let Some(item) = checked.next().await {
            if tx.send(item).await.is_err() {
                // The store gave up on the body (an error); stop reading.
                return;
            }
        }
    });
    let stream: ByteStream = Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
    let key = blob_key(&auth.tenant, id);
    let span = tracing::info_span!("upload", file_id = %id, tenant = %auth.tenant);
    let _enter = span.enter();
    let info = state
        .blobs
        .put(&key, &content_type, stream, expected.as_deref())
        .await?;
    let record = record_stored(state, auth, id, name, content_type, info).await?;
    metrics::counter!("casewire_files_uploaded_total").increment(1);
    metrics::counter!("casewire_file_bytes_uploaded_total").increment(record.size);
    tracing::info!(size = record.size, "Stored a file");
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/files/{id}")))
        .json(record))
}

/// Records bytes just stored under [`blob_key`] as an uploaded file of
/// `who`'s tenant. The record comes last: a failed upload leaves no record
/// behind, and a record that can not be written takes its bytes with it.
pub async fn record_stored(
    state: &AppState,
    who: &Principal,
    id: Uuid,
    name: String,
    content_type: String,
    info: casewire_ports::BlobInfo,
) -> Result<FileRecord, ApiError> {
    let record = FileRecord {
        id,
        tenant: who.tenant.clone(),
        name,
        content_type,
        size: info.size,
        sha256: info.sha256,
        uploaded_by: who.name.clone(),
        uploaded_at: chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default(),
        cases: vec![],
        state: FileState::Uploaded,
        detached_at: None,
    };
    if let Err(e) = state.platform.reads.insert_file(&record).await {
        let _ = state.blobs.delete(&blob_key(&who.tenant, id)).await;
        return Err(e.into());
    }
    Ok(record)
}

/// The request's `Range`, if it is one range (see [`ByteRange::parse`]).
fn parse_range(req: &HttpRequest) -> Option<ByteRange> {
    ByteRange::parse(header_str(req, "range")?)
}

fn file_headers(res: &mut actix_web::HttpResponseBuilder, file: &FileRecord) {
    res.insert_header((header::CONTENT_TYPE, file.content_type.clone()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            casewire_ports::blob::content_disposition(&file.name),
        ))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, format!("\"{}\"", file.sha256)))
        .insert_header(("x-checksum-sha256", file.sha256.clone()))
        .insert_header(("X-Content-Type-Options", "nosniff"));
}

/// Download a file, streamed; `Range` gives 206.
#[utoipa::path(
    get, path = "/api/v1/files/{id}", tag = "files",
    params(("id" = Uuid, Path), ("Range" = Option<String>, Header, description = "bytes=a-b, a- or -n")),
    responses(
        (status = 200, description = "The bytes"), (status = 206, description = "The range"),
        (status = 404, body = ErrorBody), (status = 416, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[get("/files/{id}")]
pub async fn download(
    state: Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file = readable(&state, &auth, &id).await?;
    let read = state
        .blobs
        .get(&blob_key(&file.tenant, file.id), parse_range(&req))
        .await?;
    let mut res = match read.range {
        Some((start, end)) => {
            let mut r = HttpResponse::PartialContent();
            r.insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{}", read.info.size)));
            r
        }
        None => HttpResponse::Ok(),
    };
    file_headers(&mut res, &file);
    let length = read.range.map_or(read.info.size, |(s, e)| e - s + 1);
    res.no_chunking(length);
    Ok(res.streaming(
        read.body
            .map(|chunk| chunk.map_err(|e| actix_web::error::ErrorServiceUnavailable(e.to_string()))),
    ))
}

/// A file's headers, without the bytes.
#[utoipa::path(
    head, path = "/api/v1/files/{id}", tag = "files",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "Headers only"), (status = 404, description = "No such file")),
    security(("bearer" = []))
)]
#[head("/files/{id}")]
pub async fn head_file(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let file = readable(&state, &auth, &id).await?;
    let mut res = HttpResponse::Ok();
    file_headers(&mut res, &file);
    // The length of the body a GET would send; actix writes no body for HEAD.
    res.no_chunking(file.size);
    Ok(res.streaming(futures::stream::empty::<Result<Bytes, actix_web::Error>>()))
}

/// A file's record: name, type, size, sha256, uploader, cases, state.
#[utoipa::path(
    get, path = "/api/v1/files/{id}/info", tag = "files",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = FileRecord), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/files/{id}/info")]
pub async fn file_info(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(readable(&state, &auth, &id).await?))
}

/// A presigned URL.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Presigned {
    pub file_id: Uuid,
    pub url: String,
    /// `GET` or `PUT`.
    pub method: String,
    pub expires_at: chrono::DateTime<Utc>,
}

fn presign_unsupported() -> ApiError {
    ApiError::new(
        ErrorCode::PresignUnsupported,
        "this file storage has no presigned URLs (local disk); use GET /api/v1/files/{id}",
    )
}

/// A presigned download URL on the storage's public endpoint, valid for
/// `storage.presign_ttl_secs`.
#[utoipa::path(
    get, path = "/api/v1/files/{id}/url", tag = "files",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Presigned), (status = 404, body = ErrorBody), (status = 501, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/files/{id}/url")]
pub async fn download_url(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let file = readable(&state, &auth, &id).await?;
    let ttl = Duration::from_secs(state.platform.config.storage.presign_ttl_secs);
    let url = state
        .blobs
        .presign_get(&blob_key(&file.tenant, file.id), ttl, Some(&file.name))
        .await?
        .ok_or_else(presign_unsupported)?;
    Ok(HttpResponse::Ok().json(Presigned {
        file_id: file.id,
        url,
        method: "GET".into(),
        expires_at: Utc::now() + ttl,
    }))
}

/// A presigned upload to ask for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadRequest {
    /// The file name: the part after the last `/` or `\` is kept, and it must
    /// be 1 to 255 bytes of UTF-8 once trimmed, without control characters
    /// (else 400). The pattern admits a last part of printable ASCII up to
    /// 255 characters or of any characters up to 63, without whitespace at
    /// its ends.
    #[schema(
        max_length = 255,
        pattern = r"^(?:[\s\S]*[/\\])?(?=[\x20-\x7E]*$|[\s\S]{0,63}$)[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000/\\](?:[^\x00-\x1F\x7F-\x9F/\\]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000/\\])?$"
    )]
    pub name: String,
    /// A type of `storage.allowed_types` (else 415), parameters after `;`
    /// ignored; the pattern is the configured list, matched without regard
    /// to case.
    pub content_type: String,
}

/// An ECMA-262 pattern of the content types [`type_allowed`] accepts from
/// `allowed`: each `type/subtype` exactly and each `type/*` with any
/// subtype, either without regard to ASCII case, optionally followed by
/// `;` and parameters. What it admits is printable ASCII, since the type
/// goes into headers.
pub fn allowed_types_pattern(allowed: &[String]) -> String {
    fn caseless(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                c if c.is_ascii_alphabetic() => format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()),
                '^' | '$' | '\\' | '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '/' => {
                    format!("\\{c}")
                }
                c => c.to_string(),
            })
            .collect()
    }
    let types: Vec<String> = allowed
        .iter()
        // What no trimmed type before a `;` can equal matches nothing.
        .filter(|a| a.trim() == a.as_str() && !a.contains(';'))
        .filter_map(|a| match a.strip_suffix("/*") {
            // Any subtype: what comes before the first `/` is all that counts.
            Some(major) if major.contains('/') => None,
            Some(major) => Some(format!("{}(?:\\/[!-:<-~]*)?", caseless(major))),
            None => Some(caseless(a)),
        })
        .collect();
    if types.is_empty() {
        return r"[^\s\S]".into();
    }
    format!("^(?:{})(?:;[ -~]*)?$", types.join("|"))
}

/// Ask for a presigned upload: `PUT` the bytes to `url` with the same
/// `Content-Type`, then `POST /api/v1/files/uploads/{fileId}/complete`.
/// Uploads never completed are swept like unattached files.
#[utoipa::path(
    post, path = "/api/v1/files/uploads", tag = "files", request_body = UploadRequest,
    responses(
        (status = 201, body = Presigned), (status = 403, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/files/uploads")]
pub async fn presigned_upload(
    state: Data<AppState>,
    auth: Auth,
    body: crate::body::Body,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &auth, Action::FileUpload).await?;
    let ask: UploadRequest = crate::error::required_json(&body)?;
    let cfg = &state.platform.config.storage;
    if !type_allowed(&cfg.allowed_types, &ask.content_type) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "{} is not an allowed file type (storage.allowed_types)",
                ask.content_type
            ),
        ));
    }
    let name = clean_name(&ask.name)?;
    let id = Uuid::now_v7();
    let ttl = Duration::from_secs(cfg.presign_ttl_secs);
    let url = state
        .blobs
        .presign_put(&upload_key(&auth.tenant, id), &ask.content_type, ttl)
        .await?
        .ok_or_else(presign_unsupported)?;
    state
        .platform
        .reads
        .insert_file(&FileRecord {
            id,
            tenant: auth.tenant.clone(),
            name,
            content_type: ask.content_type,
            size: 0,
            sha256: String::new(),
            uploaded_by: auth.name.clone(),
            uploaded_at: chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default(),
            cases: vec![],
            state: FileState::Pending,
            detached_at: None,
        })
        .await?;
    Ok(HttpResponse::Created().json(Presigned {
        file_id: id,
        url,
        method: "PUT".into(),
        expires_at: Utc::now() + ttl,
    }))
}

/// Confirm a presigned upload: the bytes are checked (size limit, type
/// sniffing) and hashed by reading them back, then the file is yours like
/// any upload. A refused upload is deleted.
#[utoipa::path(
    post, path = "/api/v1/files/uploads/{id}/complete", tag = "files",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = FileRecord), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/files/uploads/{id}/complete")]
pub async fn complete_upload(state: Data<AppState>, auth: Auth, id: Path<String>) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("upload");
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let pending = state
        .platform
        .reads
        .get_file(&auth.tenant, id)
        .await?
        .filter(|f| f.state == FileState::Pending && f.uploaded_by == auth.name)
        .ok_or_else(not_found)?;
    let (from, to) = (upload_key(&auth.tenant, id), blob_key(&auth.tenant, id));
    let read = match state.blobs.get(&from, None).await {
        Ok(r) => r,
        Err(BlobError::NotFound) => {
            return Err(ApiError::new(
                ErrorCode::UploadMissing,
                "no bytes were uploaded to the presigned URL yet",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let limit = state.platform.config.storage.max_upload_bytes;
    let refuse = |e: BlobError| {
        let (blobs, from, to) = (state.blobs.clone(), from.clone(), to.clone());
        async move {
            let _ = blobs.delete(&from).await;
            let _ = blobs.delete(&to).await;
            Err::<HttpResponse, ApiError>(e.into())
        }
    };
    if read.info.size > limit {
        return refuse(BlobError::TooLarge { limit }).await;
    }
    // Copy to the file's own key, hashing on the way (the store does) and
    // keeping the first bytes to check the declared type.
    let head = Arc::new(std::sync::Mutex::new(Vec::with_capacity(SNIFF_BYTES)));
    let sniffed = head.clone();
    let body: ByteStream = Box::pin(read.body.inspect(move |chunk| {
        if let (Ok(chunk), Ok(mut head)) = (chunk, sniffed.lock()) {
            let room = SNIFF_BYTES.saturating_sub(head.len());
            head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }));
    let info = match state.blobs.put(&to, &pending.content_type, body, None).await {
        Ok(info) => info,
        Err(e) => return refuse(e).await,
    };
    let head = head.lock().map(|h| h.clone()).unwrap_or_default();
    if let Some(why) = contradicts(&pending.content_type, &head) {
        return refuse(BlobError::Refused(why)).await;
    }
    let size = info.size;
    let done = FileRecord {
        size,
        sha256: info.sha256,
        state: FileState::Uploaded,
        ..pending
    };
    if !state.platform.reads.complete_file(&done).await? {
        let _ = state.blobs.delete(&to).await;
        return Err(not_found());
    }
    // The upload key is spent; a failed delete leaves only a stray object.
    if let Err(e) = state.blobs.delete(&from).await {
        tracing::warn!(error = %e, file_id = %id, "Could not delete a completed upload's staging object");
    }
    tracing::info!(file_id = %id, size, "Completed a presigned upload");
    Ok(HttpResponse::Ok().json(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that panics when polled past its end, as actix's multipart
    /// field does.
    struct Strict(Option<Bytes>, bool);

    impl Stream for Strict {
        type Item = Result<Bytes, String>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            assert!(!self.1, "polled after its end");
            match self.0.take() {
                Some(chunk) => Poll::Ready(Some(Ok(chunk))),
                None => {
                    self.1 = true;
                    Poll::Ready(None)
                }
            }
        }
    }

    fn checked(declared: &str, body: &'static [u8]) -> Checked<Strict> {
        Checked {
            inner: Strict(Some(Bytes::from_static(body)), false),
            limit: 1 << 20,
            seen: 0,
            declared: declared.into(),
            head: Some(BytesMut::new()),
            done: false,
        }
    }

    #[tokio::test]
    async fn a_body_shorter_than_the_sniffing_window_is_not_polled_past_its_end() {
        let mut stream = checked("text/plain", b"a short note");
        let chunk = stream.next().await.expect("the chunk").expect("accepted");
        assert_eq!(&chunk[..], b"a short note");
        assert!(stream.next().await.is_none());
        assert!(stream.next().await.is_none(), "stays ended");
    }

    #[tokio::test]
    async fn a_short_body_that_contradicts_its_type_is_refused_once() {
        let mut stream = checked("image/png", b"plain text");
        assert!(matches!(stream.next().await, Some(Err(BlobError::Refused(_)))));
        assert!(stream.next().await.is_none());
    }
}
