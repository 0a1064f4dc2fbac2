//! Blobs as files under a root directory: `<root>/<key>` holds the bytes,
//! `<root>/<key>.meta.json` (the sidecar) the content type, size and SHA-256.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use casewire_ports::{BlobError, BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::{check_sha256, hex, validate_key};

pub(crate) const SIDECAR_SUFFIX: &str = ".meta.json";
/// Read chunk size: bounded memory per reader, few syscalls.
const CHUNK: usize = 64 * 1024;

/// A blob store on local disk. Writes go to a temporary file in the target
/// directory and are renamed into place once complete, checked and synced,
/// so a reader never sees a partial blob and a crash leaves at most a
/// hidden temporary file behind. A second put of a key replaces it, like
/// S3; the port's callers write each key once, so two concurrent puts of
/// one key (whose sidecar and blob could then come from different writers)
/// do not happen.
#[derive(Debug, Clone)]
pub struct FileBlobStore {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Sidecar {
    content_type: String,
    sha256: String,
    size: u64,
}

fn io_error(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> BlobError {
    let what = format!("{what} {}", path.display());
    move |e| BlobError::Backend(format!("{what}: {e}"))
}

/// "Nothing there": also when a key's parent is a file (`a` stored, `a/b` asked).
fn is_missing(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// Removes the temporary file unless disarmed: on errors, and when the
/// `put` future is dropped midway (a client that went away).
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    fn beside(target: &Path) -> Result<Self, BlobError> {
        let name = target
            .file_name()
            .ok_or_else(|| BlobError::Backend(format!("no file name in {}", target.display())))?;
        // Keys never have segments starting with '.', so this cannot collide.
        let tmp = format!(".{}.{}.tmp", name.to_string_lossy(), uuid::Uuid::now_v7().simple());
        Ok(Self {
            path: target.with_file_name(tmp),
            armed: true,
        })
    }

    async fn commit(mut self, target: &Path) -> Result<(), BlobError> {
        tokio::fs::rename(&self.path, target)
            .await
            .map_err(io_error("rename into", target))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Makes renames in `dir` durable.
async fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    let owned = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&owned).and_then(|d| d.sync_all()))
        .await
        .map_err(|e| BlobError::Backend(format!("sync task failed: {e}")))?
        .map_err(io_error("fsync directory", dir))
}

impl FileBlobStore {
    /// Uses `root` (absolute; created if missing).
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        if !root.is_absolute() {
            return Err(BlobError::Backend(format!(
                "blob root must be an absolute path, got {}",
                root.display()
            )));
        }
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(io_error("create blob root", &root))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob's path and its sidecar's.
    fn paths(&self, key: &str) -> Result<(PathBuf, PathBuf), BlobError> {
        validate_key(key)?;
        Ok((self.root.join(key), self.root.join(format!("{key}{SIDECAR_SUFFIX}"))))
    }

    /// The stored info, or `None`. The blob file's presence decides (its
    /// rename is the commit point); a sidecar without a blob is a leftover.
    async fn info(&self, key: &str, blob: &Path, sidecar: &Path) -> Result<Option<BlobInfo>, BlobError> {
        let meta = match tokio::fs::metadata(blob).await {
            Ok(m) => m,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(io_error("stat", blob)(e)),
        };
        let raw = tokio::fs::read(sidecar)
            .await
            .map_err(io_error("read metadata", sidecar))?;
        let side: Sidecar = serde_json::from_slice(&raw)
            .map_err(|e| BlobError::Backend(format!("corrupt metadata {}: {e}", sidecar.display())))?;
        if side.size != meta.len() {
            return Err(BlobError::Backend(format!(
                "{} holds {} bytes, its metadata says {}",
                blob.display(),
                meta.len(),
                side.size
            )));
        }
        Ok(Some(BlobInfo {
            key: key.to_owned(),
            size: side.size,
            content_type: side.content_type,
            sha256: side.sha256,
        }))
    }
}

#[async_trait]
impl BlobStore for FileBlobStore {
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        mut body: ByteStream,
        expected_sha256: Option<&str>,
    ) -> Result<BlobInfo, BlobError> {
        let (blob_path, sidecar_path) = self.paths(key)?;
        let dir = blob_path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_error("create directory", &dir))?;

        let blob_tmp = TempFile::beside(&blob_path)?;
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&blob_tmp.path)
            .await
            .map_err(io_error("create", &blob_tmp.path))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        // Any early return drops `blob_tmp`, which removes the partial file.
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(io_error("write", &blob_tmp.path))?;
        }
        file.flush().await.map_err(io_error("write", &blob_tmp.path))?;
        file.sync_all().await.map_err(io_error("fsync", &blob_tmp.path))?;
        drop(file);
        let sha256 = hex(&hasher.finalize());
        check_sha256(expected_sha256, &sha256)?;

        // The sidecar goes in first and the blob's rename is the commit
        // point: readers look for the blob file, so they never see a blob
        // without its metadata, and a crash in between leaves only a
        // sidecar that the next put of the key overwrites.
        let side = Sidecar {
            content_type: content_type.to_owned(),
            sha256: sha256.clone(),
            size,
        };
        let json = serde_json::to_vec(&side).map_err(|e| BlobError::Backend(format!("encode metadata: {e}")))?;
        let side_tmp = TempFile::beside(&sidecar_path)?;
        let mut side_file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&side_tmp.path)
            .await
            .map_err(io_error("create", &side_tmp.path))?;
        side_file
            .write_all(&json)
            .await
            .map_err(io_error("write", &side_tmp.path))?;
        side_file.flush().await.map_err(io_error("write", &side_tmp.path))?;
        side_file.sync_all().await.map_err(io_error("fsync", &side_tmp.path))?;
        drop(side_file);
        side_tmp.commit(&sidecar_path).await?;
        blob_tmp.commit(&blob_path).await?;
        sync_dir(&dir).await?;

        Ok(BlobInfo {
            key: key.to_owned(),
            size,
            content_type: content_type.to_owned(),
            sha256,
        })
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        let (blob_path, sidecar_path) = self.paths(key)?;
        // Open first: the open file stays readable even if deleted meanwhile.
        let mut file = match tokio::fs::File::open(&blob_path).await {
            Ok(f) => f,
            Err(e) if is_missing(&e) => return Err(BlobError::NotFound),
            Err(e) => return Err(io_error("open", &blob_path)(e)),
        };
        let info = self
            .info(key, &blob_path, &sidecar_path)
            .await?
            .ok_or(BlobError::NotFound)?;
        let (start, len, served) = match range {
            None => (0, info.size, None),
            Some(r) => {
                let (start, end) = r
                    .resolve(info.size)
                    .ok_or(BlobError::InvalidRange { size: info.size })?;
                (start, end - start + 1, Some((start, end)))
            }
        };
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(io_error("seek", &blob_path))?;
        }
        let path = blob_path.display().to_string();
        let body = ReaderStream::with_capacity(file.take(len), CHUNK)
            .map_err(move |e| BlobError::Backend(format!("read {path}: {e}")));
        Ok(BlobRead {
            info,
            range: served,
            body: Box::pin(body),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<BlobInfo>, BlobError> {
        let (blob_path, sidecar_path) = self.paths(key)?;
        self.info(key, &blob_path, &sidecar_path).await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let (blob_path, sidecar_path) = self.paths(key)?;
        // Blob first: once it is gone the key reads as absent, whatever
        // happens to the sidecar.
        for path in [&blob_path, &sidecar_path] {
            match tokio::fs::remove_file(path).await {
                Ok(()) => {}
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(io_error("remove", path)(e)),
            }
        }
        Ok(())
    }

    async fn presign_get(
        &self,
        _key: &str,
        _expires: Duration,
        _filename: Option<&str>,
    ) -> Result<Option<String>, BlobError> {
        Ok(None)
    }

    async fn presign_put(
        &self,
        _key: &str,
        _content_type: &str,
        _expires: Duration,
    ) -> Result<Option<String>, BlobError> {
        Ok(None)
    }

    async fn ping(&self) -> Result<(), BlobError> {
        let probe = self.root.join(format!(".ping.{}.tmp", uuid::Uuid::now_v7().simple()));
        let unavailable = |e: std::io::Error| {
            BlobError::Unavailable(format!("blob root {} is not writable: {e}", self.root.display()))
        };
        tokio::fs::write(&probe, b"ping").await.map_err(unavailable)?;
        tokio::fs::remove_file(&probe).await.map_err(unavailable)
    }
}
