//! Adapters of the `BlobStore` port: [`FileBlobStore`] (a directory on local
//! disk) and [`S3BlobStore`] (any S3-compatible server), picked by URL
//! scheme in [`open`].
//!
//! Both stream bodies in bounded memory, compute the SHA-256 while the bytes
//! pass, and store nothing when the checksum is wrong or the stream fails.

use std::sync::Arc;

use casewire_ports::{BlobError, BlobStore};
use secrecy::SecretString;

mod file;
mod s3;

pub use file::FileBlobStore;
pub use s3::{S3BlobStore, S3Settings};

/// What [`open`] takes besides the URL: credentials and tuning that come
/// from configuration rather than the URL (so secrets need not be in it).
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// S3 access key; overrides `access_key` in the URL.
    pub access_key: Option<String>,
    /// S3 secret key; overrides `secret_key` in the URL.
    pub secret_key: Option<SecretString>,
    /// S3 multipart part size in bytes; overrides `part_size` in the URL.
    pub part_size: Option<usize>,
}

/// Opens the blob store a URL names:
/// - `file:///abs/path`: a directory on local disk (created if missing);
/// - `s3://bucket?endpoint=..&region=..&path_style=true&public_endpoint=..&prefix=..`:
///   see [`S3Settings::from_url`]. Without credentials in `options` or the
///   URL, the standard AWS chain (environment, profile, web identity, IMDS)
///   supplies them.
pub async fn open(url: &str, options: &OpenOptions) -> Result<Arc<dyn BlobStore>, BlobError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| BlobError::Backend(format!("invalid blob store URL {}: {e}", mask_url(url))))?;
    match parsed.scheme() {
        "file" => {
            if parsed.host_str().is_some_and(|h| !h.is_empty() && h != "localhost") {
                return Err(BlobError::Backend(format!(
                    "file URLs name a local absolute path (file:///path), not {}",
                    mask_url(url)
                )));
            }
            let path = parsed
                .to_file_path()
                .map_err(|()| BlobError::Backend(format!("not a local path: {}", mask_url(url))))?;
            Ok(Arc::new(FileBlobStore::open(path).await?))
        }
        "s3" => {
            let mut settings = S3Settings::from_url(url)?;
            if let Some(key) = &options.access_key {
                settings.access_key = Some(key.clone());
            }
            if let Some(secret) = &options.secret_key {
                settings.secret_key = Some(secret.clone());
            }
            if let Some(size) = options.part_size {
                settings.part_size = size;
            }
            Ok(Arc::new(S3BlobStore::connect(settings).await?))
        }
        other => Err(BlobError::Backend(format!(
            "unsupported blob store scheme {other:?} (use file:///path or s3://bucket)"
        ))),
    }
}

/// Query parameters whose values are never shown.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "password", "token", "signature", "credential"]
        .iter()
        .any(|s| name.contains(s))
}

/// The URL with any password and secret query parameters (`secret_key`,
/// `*token*`, `*password*`, `X-Amz-Signature`, ...) replaced by `***`, for
/// logs and error messages. A URL that does not parse is not echoed.
pub fn mask_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparseable URL>".into();
    };
    if parsed.password().is_some() {
        // Only fails for URLs that cannot have credentials, which have none.
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_param(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.into()
}

/// Checks a caller-chosen key (`<tenant>/<file id>`): relative, `/`-separated,
/// no empty, `.` or `..` segments (nothing can escape a directory or alias
/// another key), no segment starting with `.` (the file store's temporary
/// files do), no `.meta.json` ending (its sidecars do), no NUL or `\`.
/// Both adapters apply the same rule so keys are portable between them.
pub(crate) fn validate_key(key: &str) -> Result<(), BlobError> {
    let bad = |why: &str| Err(BlobError::Backend(format!("invalid blob key {key:?}: {why}")));
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 512 {
        return bad("longer than 512 bytes");
    }
    if key.starts_with('/') {
        return bad("absolute");
    }
    if key.contains('\0') || key.contains('\\') {
        return bad("contains NUL or a backslash");
    }
    if key.ends_with(file::SIDECAR_SUFFIX) {
        return bad("ends with the sidecar suffix .meta.json");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return bad("empty path segment");
        }
        if segment.starts_with('.') {
            return bad("a segment starts with '.' (`.`, `..` and hidden names are refused)");
        }
    }
    Ok(())
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Compares a computed hash with the one the client announced.
pub(crate) fn check_sha256(expected: Option<&str>, actual: &str) -> Result<(), BlobError> {
    match expected {
        Some(expected) if !expected.eq_ignore_ascii_case(actual) => Err(BlobError::ChecksumMismatch {
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_plain_paths() {
        for ok in ["tenant/0198-abc", "a", "a/b/c.pdf", "t/x..y", "t/name with space"] {
            assert!(validate_key(ok).is_ok(), "{ok} is a fine key");
        }
        for bad in [
            "",
            "/etc/passwd",
            "a//b",
            "a/",
            "../x",
            "a/../b",
            "a/./b",
            ".",
            "t/.hidden",
            "a\\b",
            "a\0b",
            "t/x.meta.json",
        ] {
            assert!(
                matches!(validate_key(bad), Err(BlobError::Backend(_))),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn secrets_are_masked_in_urls() {
        let masked = mask_url("s3://bucket?endpoint=http://h:1&access_key=AK&secret_key=SK1&session_token=T");
        assert!(!masked.contains("SK1") && !masked.contains("=T"), "{masked}");
        assert!(masked.contains("access_key=AK"), "access keys are not secret: {masked}");
        assert!(masked.contains("endpoint=http"), "{masked}");
        let masked = mask_url("https://u:pw@h/x?X-Amz-Signature=abc&X-Amz-Credential=AK%2F2024");
        assert!(
            !masked.contains("pw") && !masked.contains("abc") && !masked.contains("2024"),
            "{masked}"
        );
        assert_eq!(mask_url("file:///var/lib/casewire"), "file:///var/lib/casewire");
        assert_eq!(mask_url("not a url with secret_key=x"), "<unparseable URL>");
    }

    #[test]
    fn checksums_compare_case_insensitively() {
        assert!(check_sha256(None, "ab").is_ok());
        assert!(check_sha256(Some("AB"), "ab").is_ok());
        assert_eq!(
            check_sha256(Some("cd"), "ab"),
            Err(BlobError::ChecksumMismatch {
                expected: "cd".into(),
                actual: "ab".into()
            })
        );
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
