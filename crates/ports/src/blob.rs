//! The blob store port: file bytes (case attachments) on local disk or S3.
//! Bodies are streams, so any size goes through in bounded memory; the
//! SHA-256 is computed while the bytes pass, and a body whose checksum or
//! size is wrong leaves nothing stored.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use thiserror::Error;

/// A stream of body chunks. An `Err` item aborts a `put` (nothing is kept).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, BlobError>> + Send>>;

/// What a blob store can fail with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlobError {
    #[error("no such blob")]
    NotFound,
    /// The body's SHA-256 is not the one the client announced.
    #[error("checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch { expected: String, actual: String },
    /// The body is larger than allowed (raised by whoever feeds the stream).
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The body was refused while streaming, for a reason given by the feeder
    /// (e.g. its bytes contradict the declared content type).
    #[error("body refused: {0}")]
    Refused(String),
    /// The range starts beyond the end of the blob.
    #[error("range not satisfiable for a blob of {size} bytes")]
    InvalidRange { size: u64 },
    /// The backend can not be reached; retrying later may work.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    /// Anything else the backend said.
    #[error("blob store failed: {0}")]
    Backend(String),
}

/// A byte range, both ends inclusive as in HTTP; `end: None` means to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=start-end` / `bytes=start-`.
    From { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a `Range` header value, `bytes=a-b | a- | -n`: the one parser
    /// of ranges, for the API and the adapters. Several ranges, or a
    /// malformed one, are `None`: the whole blob is served (RFC 9110
    /// allows it).
    pub fn parse(header: &str) -> Option<ByteRange> {
        let spec = header.trim().strip_prefix("bytes=")?;
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        match (a.trim(), b.trim()) {
            ("", n) => n.parse().ok().map(ByteRange::Suffix),
            (a, "") => a.parse().ok().map(|start| ByteRange::From { start, end: None }),
            (a, b) => Some(ByteRange::From {
                start: a.parse().ok()?,
                end: Some(b.parse().ok()?),
            }),
        }
    }

    /// The `Range` header value asking for this range.
    pub fn header(self) -> String {
        match self {
            ByteRange::From { start, end: Some(end) } => format!("bytes={start}-{end}"),
            ByteRange::From { start, end: None } => format!("bytes={start}-"),
            ByteRange::Suffix(n) => format!("bytes=-{n}"),
        }
    }

    /// The inclusive (start, end) within a blob of `size` bytes, or `None`
    /// when unsatisfiable. Ends beyond the blob are clipped, as HTTP says.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::From { start, end } => {
                if start >= size {
                    return None;
                }
                let end = end.map_or(size - 1, |e| e.min(size - 1));
                (end >= start).then_some((start, end))
            }
            ByteRange::Suffix(n) => (n > 0 && size > 0).then(|| (size.saturating_sub(n), size - 1)),
        }
    }
}

/// What is known about a stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub key: String,
    pub size: u64,
    pub content_type: String,
    /// Lower-case hex SHA-256 of the whole blob.
    pub sha256: String,
}

/// A blob being read: its info, the range served (inclusive), and the bytes.
pub struct BlobRead {
    pub info: BlobInfo,
    /// `Some((start, end))` when a range was asked for.
    pub range: Option<(u64, u64)>,
    pub body: ByteStream,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead")
            .field("info", &self.info)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Stores blobs by key. Keys are chosen by the caller (`<tenant>/<file id>`).
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Streams `body` to `key`, replacing nothing: a key is written once.
    /// Computes the SHA-256 on the way; when `expected_sha256` (hex) is
    /// given and differs, or the stream yields an error, nothing is stored
    /// and the error is returned.
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        body: ByteStream,
        expected_sha256: Option<&str>,
    ) -> Result<BlobInfo, BlobError>;
    /// Reads a blob, or one range of it.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError>;
    /// The blob's info, or `None`.
    async fn head(&self, key: &str) -> Result<Option<BlobInfo>, BlobError>;
    /// Removes a blob; removing a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// A URL that fetches the blob without further credentials until
    /// `expires`, built on the configured public endpoint; `None` when the
    /// backend has no such thing (local disk). `filename` sets
    /// `Content-Disposition`.
    async fn presign_get(
        &self,
        key: &str,
        expires: Duration,
        filename: Option<&str>,
    ) -> Result<Option<String>, BlobError>;
    /// A URL to which a client can `PUT` the blob's bytes until `expires`;
    /// `None` when the backend has no such thing.
    async fn presign_put(&self, key: &str, content_type: &str, expires: Duration) -> Result<Option<String>, BlobError>;
    /// Whether the backend answers.
    async fn ping(&self) -> Result<(), BlobError>;
}

/// RFC 5987's `attr-char`: what may stand unencoded in `filename*`.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where the bytes of file `id` of `tenant` are kept: one key for every
/// service that reads or writes them.
pub fn file_key(tenant: &casewire_domain::types::TenantId, id: uuid::Uuid) -> String {
    format!("{tenant}/{id}")
}

/// `Content-Disposition: attachment` with the name in plain ASCII (for old
/// clients) and in UTF-8 (RFC 6266); quotes, backslashes and control
/// characters, which could break out of the header value, never appear
/// raw. The API's downloads and presigned GETs name files alike.
pub fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(filename, ATTR_CHAR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_parse_and_print_back() {
        for (header, range) in [
            (
                "bytes=0-99",
                Some(ByteRange::From {
                    start: 0,
                    end: Some(99),
                }),
            ),
            ("bytes=100-", Some(ByteRange::From { start: 100, end: None })),
            ("bytes=-5", Some(ByteRange::Suffix(5))),
        ] {
            assert_eq!(ByteRange::parse(header), range, "{header}");
            assert_eq!(range.map(ByteRange::header).as_deref(), Some(header));
        }
        for bad in ["bytes=0-1,5-9", "items=0-1", "bytes=a-b", "bytes=-", ""] {
            assert_eq!(ByteRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges_resolve_like_http() {
        let r = |start, end| ByteRange::From { start, end };
        assert_eq!(r(0, Some(9)).resolve(100), Some((0, 9)));
        assert_eq!(r(90, None).resolve(100), Some((90, 99)));
        assert_eq!(r(90, Some(500)).resolve(100), Some((90, 99)), "clipped");
        assert_eq!(r(100, None).resolve(100), None, "starts past the end");
        assert_eq!(r(5, Some(4)).resolve(100), None);
        assert_eq!(ByteRange::Suffix(10).resolve(100), Some((90, 99)));
        assert_eq!(ByteRange::Suffix(500).resolve(100), Some((0, 99)));
        assert_eq!(ByteRange::Suffix(0).resolve(100), None);
        assert_eq!(r(0, None).resolve(0), None, "an empty blob has no ranges");
    }
}
