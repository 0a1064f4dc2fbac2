//! Blobs as objects in an S3-compatible bucket (AWS, Garage, MinIO, ...).
//!
//! The SHA-256 travels as user metadata (`x-amz-meta-sha256`), the content
//! type as `Content-Type`. Bodies up to one part are sent with one PutObject
//! once their hash is known; larger ones as a multipart upload that holds at
//! most one part in memory and is aborted when the hash is wrong or the
//! stream fails, so a wrong body is never visible.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider, SharedHttpClient,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use bytes::{Bytes, BytesMut};
use casewire_ports::{BlobError, BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::{check_sha256, hex, mask_url, validate_key};

const MIB: usize = 1024 * 1024;
/// S3 refuses smaller parts (except the last one).
const MIN_PART_SIZE: usize = 5 * MIB;
const MAX_PART_SIZE: usize = 5 * 1024 * MIB;
const MAX_PARTS: i32 = 10_000;
const SHA_META: &str = "sha256";
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Where and how to reach the bucket.
#[derive(Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// The S3 API as this service reaches it (`None`: AWS by region).
    pub endpoint: Option<String>,
    /// The S3 API as browsers reach it; presigned URLs are built on it
    /// (`None`: the endpoint).
    pub public_endpoint: Option<String>,
    pub region: String,
    /// `https://host/bucket/key` instead of `https://bucket.host/key`;
    /// what most self-hosted servers need.
    pub path_style: bool,
    /// With `secret_key`: static credentials. Without both: the standard
    /// AWS chain (environment, profile, web identity, container, IMDS).
    pub access_key: Option<String>,
    pub secret_key: Option<SecretString>,
    /// Put in front of every key (e.g. `casewire/`).
    pub prefix: String,
    /// One bucket per tenant: a key's first segment (the tenant) picks the
    /// bucket `<bucket>-<tenant>` and the rest is the object key. Off: one
    /// bucket, every tenant under its own `<tenant>/` key prefix. The
    /// operator creates the tenants' buckets; a missing one is an error
    /// naming it, never a silent fallback to a shared bucket.
    pub tenant_buckets: bool,
    /// Multipart part size in bytes (5 MiB to 5 GiB); bodies up to one part
    /// go in one request. Also the most a `put` holds in memory.
    pub part_size: usize,
    /// Kept short so that an outage gives a prompt `Unavailable`.
    pub connect_timeout: Duration,
    /// The whole of one request, retries included (body streaming of a
    /// `get` excluded).
    pub operation_timeout: Duration,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("public_endpoint", &self.public_endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("prefix", &self.prefix)
            .field("tenant_buckets", &self.tenant_buckets)
            .field("part_size", &self.part_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

fn invalid(msg: impl std::fmt::Display) -> BlobError {
    BlobError::Backend(format!("invalid S3 settings: {msg}"))
}

impl S3Settings {
    /// Defaults for `bucket`: AWS endpoint, region `us-east-1`, 8 MiB parts.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            endpoint: None,
            public_endpoint: None,
            region: "us-east-1".into(),
            path_style: false,
            access_key: None,
            secret_key: None,
            prefix: String::new(),
            tenant_buckets: false,
            part_size: 8 * MIB,
            connect_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(30),
        }
    }

    /// Parses `s3://bucket?endpoint=http://127.0.0.1:3900&region=garage&path_style=true`
    /// `&public_endpoint=https://files.example.com&prefix=x/`; also
    /// `tenant_buckets` (true/false), `part_size` (bytes), `connect_timeout_ms`, `operation_timeout_ms`,
    /// `access_key` and `secret_key`. Unknown parameters are errors, so a
    /// typo does not silently fall back to a default.
    pub fn from_url(url: &str) -> Result<Self, BlobError> {
        let parsed = url::Url::parse(url).map_err(|e| invalid(format!("{}: {e}", mask_url(url))))?;
        if parsed.scheme() != "s3" {
            return Err(invalid(format!("expected an s3:// URL, got {}", mask_url(url))));
        }
        let bucket = parsed.host_str().unwrap_or_default();
        if bucket.is_empty() {
            return Err(invalid("the URL names no bucket (s3://bucket?...)"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(
                "credentials go in access_key/secret_key parameters, the configuration or the environment, not user:password@",
            ));
        }
        if !matches!(parsed.path(), "" | "/") {
            return Err(invalid("a key prefix goes in the prefix parameter, not the path"));
        }
        let mut s = Self::new(bucket);
        for (name, value) in parsed.query_pairs() {
            let value = value.into_owned();
            match &*name {
                "endpoint" => s.endpoint = Some(check_endpoint(&value)?),
                "public_endpoint" => s.public_endpoint = Some(check_endpoint(&value)?),
                "region" => s.region = value,
                "path_style" => s.path_style = parse_bool(&name, &value)?,
                "prefix" => s.prefix = value,
                "tenant_buckets" => s.tenant_buckets = parse_bool(&name, &value)?,
                "part_size" => s.part_size = parse_num(&name, &value)?,
                "connect_timeout_ms" => s.connect_timeout = Duration::from_millis(parse_num(&name, &value)?),
                "operation_timeout_ms" => s.operation_timeout = Duration::from_millis(parse_num(&name, &value)?),
                "access_key" => s.access_key = Some(value),
                "secret_key" => s.secret_key = Some(SecretString::from(value)),
                other => return Err(invalid(format!("unknown parameter {other:?}"))),
            }
        }
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), BlobError> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(invalid(format!(
                "part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes, got {}",
                self.part_size
            )));
        }
        if self.prefix.starts_with('/') {
            return Err(invalid("the prefix must not start with '/'"));
        }
        if self.region.is_empty() {
            return Err(invalid("empty region"));
        }
        // The tenant's name is appended, and S3 bucket names are at most
        // 63 characters of lower-case letters, digits, '-' and '.'.
        if self.tenant_buckets && !bucket_name_ok(&format!("{}-t", self.bucket)) {
            return Err(invalid(format!(
                "with tenant_buckets, {:?} must be a lower-case bucket name prefix of at most 61 characters",
                self.bucket
            )));
        }
        if self.access_key.is_some() != self.secret_key.is_some() {
            return Err(invalid("give both access_key and secret_key, or neither"));
        }
        Ok(())
    }
}

/// S3's bucket naming rule (with the older ban on '.' next to '-', which
/// virtual-host addressing still needs), minus the IP-address and
/// reserved-prefix cases that no tenant name produces.
fn bucket_name_ok(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
}

fn check_endpoint(value: &str) -> Result<String, BlobError> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(value.trim_end_matches('/').to_owned())
        }
        _ => Err(invalid(format!("endpoint {value:?} is not an http(s) URL"))),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, BlobError> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(format!("{name} must be true or false, got {value:?}"))),
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, BlobError> {
    value
        .parse()
        .map_err(|_| invalid(format!("{name} must be a number, got {value:?}")))
}

/// Everything but RFC 3986's unreserved characters and `/`, as S3's
/// `x-amz-copy-source` wants a key encoded.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// What went wrong, for any S3 operation: outages are `Unavailable` (the
/// caller may retry), a missing object `NotFound`, the rest `Backend`.
fn classify<E>(what: &str, e: SdkError<E>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status());
    let code = e.code().unwrap_or_default().to_owned();
    let detail = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::TimeoutError(_) => BlobError::Unavailable(format!("{what}: timed out: {detail}")),
        SdkError::DispatchFailure(f) if !f.is_user() => {
            BlobError::Unavailable(format!("{what}: S3 not reachable: {detail}"))
        }
        _ if code == "NoSuchBucket" => BlobError::Backend(format!("{what}: the bucket does not exist")),
        _ if code == "NoSuchKey" || code == "NotFound" || status.is_some_and(|s| s.as_u16() == 404) => {
            BlobError::NotFound
        }
        _ if code == "SlowDown" || status.is_some_and(|s| s.is_server_error()) => {
            BlobError::Unavailable(format!("{what}: S3 answered {code}: {detail}"))
        }
        _ => BlobError::Backend(format!("{what}: {detail}")),
    }
}

/// "bytes a-b/size" → ((a, b), size); "bytes */size" → (None, size).
fn parse_content_range(value: &str) -> Option<(Option<(u64, u64)>, u64)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, size) = rest.split_once('/')?;
    let size = size.trim().parse().ok()?;
    if range.trim() == "*" {
        return Some((None, size));
    }
    let (a, b) = range.split_once('-')?;
    Some((Some((a.trim().parse().ok()?, b.trim().parse().ok()?)), size))
}

/// Cuts a body stream into parts of exactly `part_size` bytes (the last
/// one shorter, never empty unless the body is), hashing as it reads.
struct Parts {
    body: ByteStream,
    /// Bytes already read (and hashed) that belong to the next part.
    carry: Bytes,
    part_size: usize,
    hasher: Sha256,
    size: u64,
}

impl Parts {
    async fn chunk(&mut self) -> Result<Option<Bytes>, BlobError> {
        if !self.carry.is_empty() {
            return Ok(Some(std::mem::take(&mut self.carry)));
        }
        while let Some(chunk) = self.body.next().await {
            let chunk = chunk?;
            if chunk.is_empty() {
                continue;
            }
            self.hasher.update(&chunk);
            self.size += chunk.len() as u64;
            return Ok(Some(chunk));
        }
        Ok(None)
    }

    /// The next part, and whether it is the last.
    async fn next(&mut self) -> Result<(Bytes, bool), BlobError> {
        let mut buf = BytesMut::new();
        while buf.len() < self.part_size {
            let Some(mut chunk) = self.chunk().await? else {
                return Ok((buf.freeze(), true));
            };
            let room = self.part_size - buf.len();
            if chunk.len() > room {
                self.carry = chunk.split_off(room);
            }
            if buf.is_empty() && chunk.len() == self.part_size {
                buf = BytesMut::from(chunk);
            } else {
                buf.extend_from_slice(&chunk);
            }
        }
        // A full part: look ahead, so that a body of exactly n parts does
        // not end with an empty one (and one part goes as one PutObject).
        match self.chunk().await? {
            None => Ok((buf.freeze(), true)),
            Some(chunk) => {
                self.carry = chunk;
                Ok((buf.freeze(), false))
            }
        }
    }

    fn sha256(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

/// A multipart upload that is aborted unless completed — also when the
/// `put` future is dropped midway (the client went away), from a task.
struct PendingUpload {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl PendingUpload {
    async fn abort(mut self) {
        self.armed = false;
        abort_upload(&self.client, &self.bucket, &self.key, &self.upload_id).await;
    }
}

async fn abort_upload(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    let result = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    if let Err(e) = result {
        // A lifecycle rule (AbortIncompleteMultipartUpload) cleans up what is left.
        tracing::warn!(key, error = %DisplayErrorContext(&e), "could not abort a multipart upload");
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (client, bucket, key, id) = (
                self.client.clone(),
                std::mem::take(&mut self.bucket),
                std::mem::take(&mut self.key),
                std::mem::take(&mut self.upload_id),
            );
            rt.spawn(async move { abort_upload(&client, &bucket, &key, &id).await });
        }
    }
}

/// A blob store on an S3 bucket.
#[derive(Clone)]
pub struct S3BlobStore {
    client: Client,
    /// Configured with the public endpoint: presigning only, never sends.
    presigner: Client,
    bucket: String,
    prefix: String,
    tenant_buckets: bool,
    part_size: usize,
    /// The longest wait for the next chunk of an object's body.
    body_idle: Duration,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("tenant_buckets", &self.tenant_buckets)
            .field("part_size", &self.part_size)
            .finish_non_exhaustive()
    }
}

fn http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

impl S3BlobStore {
    /// Builds the clients. Sends nothing: an unreachable server shows on
    /// first use (or `ping`), not here.
    pub async fn connect(settings: S3Settings) -> Result<Self, BlobError> {
        settings.validate()?;
        let http = http_client();
        let region = Region::new(settings.region.clone());
        let credentials = match (&settings.access_key, &settings.secret_key) {
            (Some(key), Some(secret)) => SharedCredentialsProvider::new(Credentials::new(
                key.clone(),
                secret.expose_secret().to_owned(),
                None,
                None,
                "casewire-settings",
            )),
            _ => aws_config::defaults(BehaviorVersion::latest())
                .http_client(http.clone())
                .region(region.clone())
                .load()
                .await
                .credentials_provider()
                .ok_or_else(|| invalid("no S3 credentials in the settings or the AWS environment"))?,
        };
        let config = |endpoint: Option<&String>| {
            let mut b = aws_sdk_s3::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .region(region.clone())
                .credentials_provider(credentials.clone())
                .http_client(http.clone())
                .force_path_style(settings.path_style)
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(settings.connect_timeout)
                        .operation_timeout(settings.operation_timeout)
                        .build(),
                )
                .retry_config(RetryConfig::standard().with_max_attempts(3))
                // Checksums only where S3 requires them: self-hosted servers
                // differ in which CRC headers they accept, presigned PUTs
                // must not carry a checksum of an empty body, and the
                // SHA-256 is checked here anyway.
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
            if let Some(endpoint) = endpoint {
                b = b.endpoint_url(endpoint.clone());
            }
            b.build()
        };
        let public = settings.public_endpoint.as_ref().or(settings.endpoint.as_ref());
        Ok(Self {
            client: Client::from_conf(config(settings.endpoint.as_ref())),
            presigner: Client::from_conf(config(public)),
            bucket: settings.bucket,
            prefix: settings.prefix,
            tenant_buckets: settings.tenant_buckets,
            part_size: settings.part_size,
            body_idle: settings.operation_timeout,
        })
    }

    /// The S3 client, for tests and administrative tasks.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The configured bucket; with `tenant_buckets`, the prefix of every
    /// tenant's bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether each tenant has a bucket of its own (`<bucket>-<tenant>`).
    pub fn tenant_buckets(&self) -> bool {
        self.tenant_buckets
    }

    /// Creates the bucket `name` unless it is there: `true` when created.
    /// For `casewire admin init`; the services never create buckets.
    pub async fn ensure_bucket(&self, name: &str) -> Result<bool, BlobError> {
        if !bucket_name_ok(name) {
            return Err(BlobError::Backend(format!("{name:?} is not a valid S3 bucket name")));
        }
        match self.client.head_bucket().bucket(name).send().await {
            Ok(_) => return Ok(false),
            Err(e) => match classify("head bucket", e) {
                BlobError::NotFound => {}
                BlobError::Backend(why) if why.contains("does not exist") => {}
                other => return Err(other),
            },
        }
        let mut create = self.client.create_bucket().bucket(name);
        // Outside us-east-1, S3 wants the region named in the request.
        let region = self.client.config().region().map(|r| r.as_ref().to_owned());
        if let Some(region) = region.filter(|r| r != "us-east-1") {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(false),
            Err(e) => Err(classify("create bucket", e)),
        }
    }

    /// The bucket and object key a blob key is stored under.
    pub fn locate(&self, key: &str) -> Result<(String, String), BlobError> {
        validate_key(key)?;
        if !self.tenant_buckets {
            return Ok((self.bucket.clone(), format!("{}{key}", self.prefix)));
        }
        let (tenant, rest) = key.split_once('/').ok_or_else(|| {
            BlobError::Backend(format!(
                "invalid blob key {key:?}: with tenant_buckets a key is <tenant>/<name>"
            ))
        })?;
        let bucket = format!("{}-{tenant}", self.bucket);
        if !bucket_name_ok(&bucket) {
            return Err(BlobError::Backend(format!(
                "tenant {tenant:?} gives {bucket:?}, which is not a valid S3 bucket name"
            )));
        }
        Ok((bucket, format!("{}{rest}", self.prefix)))
    }

    fn info_from(key: &str, size: u64, content_type: Option<&str>, meta: Option<&HashMap<String, String>>) -> BlobInfo {
        BlobInfo {
            key: key.to_owned(),
            size,
            content_type: content_type.unwrap_or(DEFAULT_CONTENT_TYPE).to_owned(),
            // Empty for objects written without this adapter (a presigned
            // PUT), whose hash nobody computed.
            sha256: meta.and_then(|m| m.get(SHA_META)).cloned().unwrap_or_default(),
        }
    }

    async fn put_multipart(
        &self,
        bucket: &str,
        object: &str,
        content_type: &str,
        mut parts: Parts,
        first: Bytes,
        expected_sha256: Option<&str>,
    ) -> Result<(String, u64), BlobError> {
        let mut create = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(object)
            .content_type(content_type);
        // The metadata is fixed at creation; an announced hash is checked
        // before completing, otherwise it is set by a copy afterwards.
        if let Some(sha) = expected_sha256 {
            create = create.metadata(SHA_META, sha.to_ascii_lowercase());
        }
        let created = create
            .send()
            .await
            .map_err(|e| classify(&format!("create multipart upload in bucket {bucket}"), e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| BlobError::Backend("create multipart upload: no upload id".into()))?
            .to_owned();
        let pending = PendingUpload {
            client: self.client.clone(),
            bucket: bucket.to_owned(),
            key: object.to_owned(),
            upload_id: upload_id.clone(),
            armed: true,
        };

        let mut completed = Vec::new();
        let mut part = first;
        let mut last = false;
        let outcome: Result<(), BlobError> = async {
            loop {
                let number = i32::try_from(completed.len() + 1).unwrap_or(i32::MAX);
                if number > MAX_PARTS {
                    return Err(BlobError::TooLarge {
                        limit: self.part_size as u64 * MAX_PARTS as u64,
                    });
                }
                let uploaded = self
                    .client
                    .upload_part()
                    .bucket(bucket)
                    .key(object)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .content_length(part.len() as i64)
                    .body(S3Body::from(std::mem::take(&mut part)))
                    .send()
                    .await
                    .map_err(|e| classify("upload part", e))?;
                completed.push(
                    CompletedPart::builder()
                        .set_e_tag(uploaded.e_tag().map(str::to_owned))
                        .part_number(number)
                        .build(),
                );
                if last {
                    return Ok(());
                }
                (part, last) = parts.next().await?;
            }
        }
        .await;
        let sha256 = parts.sha256();
        if let Err(e) = outcome.and_then(|()| check_sha256(expected_sha256, &sha256)) {
            pending.abort().await;
            return Err(e);
        }
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(object)
            .upload_id(&upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
            .send()
            .await;
        if let Err(e) = done {
            pending.abort().await;
            return Err(classify("complete multipart upload", e));
        }
        let mut pending = pending;
        pending.armed = false;

        if expected_sha256.is_none() {
            // Visible without its hash until this copy lands (milliseconds;
            // the server copies metadata, or at worst the bytes, itself).
            let copied = self
                .client
                .copy_object()
                .bucket(bucket)
                .key(object)
                .copy_source(format!(
                    "{bucket}/{}",
                    percent_encoding::utf8_percent_encode(object, COPY_SOURCE)
                ))
                .metadata_directive(MetadataDirective::Replace)
                .content_type(content_type)
                .metadata(SHA_META, &sha256)
                .send()
                .await;
            if let Err(e) = copied {
                // Better no blob than one without its hash.
                let _ = self.client.delete_object().bucket(bucket).key(object).send().await;
                return Err(classify("set the SHA-256 metadata", e));
            }
        }
        Ok((sha256, parts.size))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        body: ByteStream,
        expected_sha256: Option<&str>,
    ) -> Result<BlobInfo, BlobError> {
        let (bucket, object) = self.locate(key)?;
        let mut parts = Parts {
            body,
            carry: Bytes::new(),
            part_size: self.part_size,
            hasher: Sha256::new(),
            size: 0,
        };
        let (first, last) = parts.next().await?;
        let (sha256, size) = if last {
            // One part: the hash is known before anything is sent.
            let sha256 = parts.sha256();
            check_sha256(expected_sha256, &sha256)?;
            self.client
                .put_object()
                .bucket(&bucket)
                .key(&object)
                .content_type(content_type)
                .content_length(first.len() as i64)
                .metadata(SHA_META, &sha256)
                .body(S3Body::from(first))
                .send()
                .await
                .map_err(|e| classify(&format!("put object into bucket {bucket}"), e))?;
            (sha256, parts.size)
        } else {
            self.put_multipart(&bucket, &object, content_type, parts, first, expected_sha256)
                .await?
        };
        Ok(BlobInfo {
            key: key.to_owned(),
            size,
            content_type: content_type.to_owned(),
            sha256,
        })
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        let (bucket, object) = self.locate(key)?;
        let mut request = self.client.get_object().bucket(&bucket).key(&object);
        if let Some(r) = range {
            request = request.range(r.header());
        }
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                let size = self.head(key).await?.ok_or(BlobError::NotFound)?.size;
                return Err(BlobError::InvalidRange { size });
            }
            Err(e) => return Err(classify(&format!("get object from bucket {bucket}"), e)),
        };
        let length = u64::try_from(out.content_length().unwrap_or_default()).unwrap_or_default();
        let content_range = out.content_range().and_then(parse_content_range);
        let size = content_range.map_or(length, |(_, size)| size);
        // Resolved here with the port's own rule, so that every server
        // serves the same bytes; a server that disagrees is an error.
        let served = match range {
            None => None,
            Some(r) => {
                let want = r.resolve(size).ok_or(BlobError::InvalidRange { size })?;
                let got = match content_range {
                    Some((got, _)) => got,
                    // The whole body (some servers ignore ranges covering it).
                    None => (size > 0).then(|| (0, size - 1)),
                };
                if got != Some(want) {
                    return Err(BlobError::Backend(format!(
                        "get object: asked for bytes {want:?}, the server sent {got:?}"
                    )));
                }
                Some(want)
            }
        };
        let info = Self::info_from(key, size, out.content_type(), out.metadata());
        // The SDK's operation timeout ends with the response headers; a
        // server that stalls mid-body would hold the download (and its
        // client) forever, so each chunk gets the same bound.
        let idle = self.body_idle;
        let body = futures::stream::unfold(Some(out.body), move |body| async move {
            let mut body = body?;
            match tokio::time::timeout(idle, body.next()).await {
                Ok(None) => None,
                Ok(Some(item)) => Some((
                    item.map_err(|e| BlobError::Unavailable(format!("reading object body: {e}"))),
                    Some(body),
                )),
                Err(_) => Some((
                    Err(BlobError::Unavailable(format!(
                        "reading object body: no data for {} ms",
                        idle.as_millis()
                    ))),
                    None,
                )),
            }
        });
        Ok(BlobRead {
            info,
            range: served,
            body: Box::pin(body),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<BlobInfo>, BlobError> {
        let (bucket, object) = self.locate(key)?;
        match self.client.head_object().bucket(&bucket).key(&object).send().await {
            Ok(out) => {
                let size = u64::try_from(out.content_length().unwrap_or_default()).unwrap_or_default();
                Ok(Some(Self::info_from(key, size, out.content_type(), out.metadata())))
            }
            Err(e) => match classify("head object", e) {
                BlobError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let (bucket, object) = self.locate(key)?;
        match self.client.delete_object().bucket(&bucket).key(&object).send().await {
            Ok(_) => Ok(()),
            Err(e) => match classify("delete object", e) {
                BlobError::NotFound => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn presign_get(
        &self,
        key: &str,
        expires: Duration,
        filename: Option<&str>,
    ) -> Result<Option<String>, BlobError> {
        let (bucket, object) = self.locate(key)?;
        let config = PresigningConfig::expires_in(expires).map_err(|e| BlobError::Backend(format!("presign: {e}")))?;
        let signed = self
            .presigner
            .get_object()
            .bucket(&bucket)
            .key(&object)
            .set_response_content_disposition(filename.map(casewire_ports::blob::content_disposition))
            .presigned(config)
            .await
            .map_err(|e| classify("presign get", e))?;
        Ok(Some(signed.uri().to_owned()))
    }

    /// The client must send `Content-Type: <content_type>` with its PUT:
    /// the header is part of the signature.
    async fn presign_put(&self, key: &str, content_type: &str, expires: Duration) -> Result<Option<String>, BlobError> {
        let (bucket, object) = self.locate(key)?;
        let config = PresigningConfig::expires_in(expires).map_err(|e| BlobError::Backend(format!("presign: {e}")))?;
        let signed = self
            .presigner
            .put_object()
            .bucket(&bucket)
            .key(&object)
            .content_type(content_type)
            .presigned(config)
            .await
            .map_err(|e| classify("presign put", e))?;
        Ok(Some(signed.uri().to_owned()))
    }

    async fn ping(&self) -> Result<(), BlobError> {
        if self.tenant_buckets {
            // No one bucket to look at: tenants' buckets come and go with
            // the tenants. Any S3 answer, a refusal included, means the
            // server is up; a missing bucket shows on use, with its name.
            return match self.client.list_buckets().max_buckets(1).send().await {
                Ok(_) => Ok(()),
                Err(e) => match classify("list buckets", e) {
                    BlobError::Unavailable(why) => Err(BlobError::Unavailable(why)),
                    _ => Ok(()),
                },
            };
        }
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => match classify("head bucket", e) {
                BlobError::NotFound => Err(BlobError::Backend(format!("bucket {} does not exist", self.bucket))),
                other => Err(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn settings_come_from_the_url() {
        let s = S3Settings::from_url(
            "s3://files?endpoint=http://127.0.0.1:3900/&region=garage&path_style=true\
             &public_endpoint=https://files.example.com&prefix=x/&part_size=5242880",
        )
        .unwrap();
        assert_eq!(s.bucket, "files");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(s.public_endpoint.as_deref(), Some("https://files.example.com"));
        assert_eq!(
            (s.region.as_str(), s.path_style, s.prefix.as_str()),
            ("garage", true, "x/")
        );
        assert_eq!(s.part_size, 5 * MIB);
        assert!(s.access_key.is_none() && s.secret_key.is_none());

        let d = S3Settings::from_url("s3://b").unwrap();
        assert_eq!(
            (d.region.as_str(), d.part_size, d.path_style),
            ("us-east-1", 8 * MIB, false)
        );
        assert_eq!(d.connect_timeout, Duration::from_secs(3));
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "s3://",
            "http://bucket",
            "s3://b?endpoint=ftp://x",
            "s3://b?part_size=1024",
            "s3://b?path_style=maybe",
            "s3://b?regoin=x",
            "s3://b/some/path",
            "s3://AK:SK@b",
            "s3://b?access_key=AK",
        ] {
            assert!(
                matches!(S3Settings::from_url(url), Err(BlobError::Backend(_))),
                "{url} must be refused"
            );
        }
    }

    #[tokio::test]
    async fn tenant_buckets_map_the_first_key_segment_to_a_bucket() {
        let url = "s3://cw?endpoint=http://127.0.0.1:1&access_key=AK&secret_key=SK&prefix=files/";
        let shared = S3BlobStore::connect(S3Settings::from_url(url).unwrap()).await.unwrap();
        assert_eq!(
            shared.locate("acme/0198-abc").unwrap(),
            ("cw".into(), "files/acme/0198-abc".into()),
            "off: one bucket, the tenant is a key prefix"
        );

        let s = S3Settings::from_url(&format!("{url}&tenant_buckets=true")).unwrap();
        assert!(s.tenant_buckets);
        let store = S3BlobStore::connect(s).await.unwrap();
        assert_eq!(
            store.locate("acme/0198-abc").unwrap(),
            ("cw-acme".into(), "files/0198-abc".into())
        );
        assert_eq!(
            store.locate("globex/a/b.pdf").unwrap(),
            ("cw-globex".into(), "files/a/b.pdf".into())
        );
        // A tenant that S3 cannot name a bucket after, and a key without a
        // tenant, are errors that say so; never a fallback to a shared bucket.
        for (key, says) in [
            ("Acme/x", "not a valid S3 bucket name"),
            ("acme_corp/x", "not a valid S3 bucket name"),
            (&format!("{}/x", "t".repeat(61)), "not a valid S3 bucket name"),
            ("lonely", "<tenant>/<name>"),
        ] {
            match store.locate(key) {
                Err(BlobError::Backend(msg)) => assert!(msg.contains(says), "{key}: {msg}"),
                other => panic!("{key}: expected an error, got {other:?}"),
            }
        }
        // The bucket name has to leave room for a tenant and be valid itself.
        for bad in ["s3://CW?tenant_buckets=true", "s3://cw.?tenant_buckets=true"] {
            assert!(
                matches!(S3Settings::from_url(bad), Err(BlobError::Backend(_))),
                "{bad} must be refused"
            );
        }
        let long = format!("s3://{}?tenant_buckets=true", "b".repeat(62));
        assert!(S3Settings::from_url(&long).is_err(), "no room left for a tenant");
        assert!(S3Settings::from_url(&long.replace("true", "false")).is_ok());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = S3Settings::from_url("s3://b?access_key=AKID&secret_key=very-secret-value").unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("AKID") && shown.contains("***"), "{shown}");
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((Some((0, 9)), 100)));
        assert_eq!(parse_content_range("bytes */100"), Some((None, 100)));
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(ByteRange::Suffix(5).header(), "bytes=-5");
        assert_eq!(ByteRange::From { start: 3, end: None }.header(), "bytes=3-");
    }

    #[test]
    fn dispositions_cannot_break_the_header() {
        let d = casewire_ports::blob::content_disposition("r\u{e9}sum\u{e9} \"final\"\r\n.pdf");
        assert!(!d.contains('\r') && !d.contains('\n'), "{d}");
        assert!(d.starts_with("attachment; filename=\"r_sum_ _final___.pdf\""), "{d}");
        assert!(
            d.ends_with("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%0D%0A.pdf"),
            "{d}"
        );
    }

    #[tokio::test]
    async fn parts_are_exact_and_hashed() {
        let chunks: Vec<Result<Bytes, BlobError>> = vec![
            Ok(Bytes::from(vec![1u8; 7])),
            Ok(Bytes::new()),
            Ok(Bytes::from(vec![2u8; 6])),
        ];
        let mut parts = Parts {
            body: Box::pin(futures::stream::iter(chunks)),
            carry: Bytes::new(),
            part_size: 5,
            hasher: Sha256::new(),
            size: 0,
        };
        let mut got = Vec::new();
        loop {
            let (part, last) = parts.next().await.unwrap();
            got.push(part.len());
            if last {
                break;
            }
        }
        assert_eq!(got, vec![5, 5, 3], "13 bytes in parts of 5");
        assert_eq!(parts.size, 13);
        let mut all = vec![1u8; 7];
        all.extend([2u8; 6]);
        assert_eq!(parts.sha256(), hex(&Sha256::digest(&all)));

        // Exactly two parts: no empty third one.
        let mut exact = Parts {
            body: Box::pin(futures::stream::iter(vec![Ok(Bytes::from(vec![0u8; 10]))])),
            carry: Bytes::new(),
            part_size: 5,
            hasher: Sha256::new(),
            size: 0,
        };
        assert!(!exact.next().await.unwrap().1, "a full part with more to come");
        let (part, last) = exact.next().await.unwrap();
        assert_eq!((part.len(), last), (5, true));
    }
}
