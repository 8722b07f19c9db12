//! Copy of one object to its destination under `BASE_PATH`.
//!
//! The body is streamed to `<dest>.<16 hex>.part` in the destination's directory (bounded
//! memory whatever the size), checked (length, and MD5 when the ETag is one), fsynced, chowned
//! if asked, then published with a hard link, which fails when the destination exists, so a
//! file that appeared meanwhile is never overwritten. A crash leaves at most a `.part` file,
//! which the next run removes before copying ([`Copier::remove_stale_parts`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};

use crate::plan::CopyItem;

/// Write and read buffer per object in flight.
const BUFFER: usize = 1 << 20;
/// Attempts at a download that failed for a transient reason (network, 5xx).
const ATTEMPTS: u32 = 3;
const PART_SUFFIX: &str = ".part";
const TOKEN_LEN: usize = 16;

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Downloaded and published.
    Copied { bytes: u64 },
    /// The destination already holds the same content.
    Skipped,
    /// The destination holds something else; left untouched.
    Conflict(String),
    /// The copy failed; nothing was published.
    Failed(String),
}

/// Copies objects from S3 under one canonical base directory.
pub struct Copier {
    s3: aws_sdk_s3::Client,
    base: PathBuf,
    owner_uid: Option<u32>,
    owner_gid: Option<u32>,
    /// Compare the content of existing files even when size and modification time match.
    checksum: bool,
}

/// Why one attempt at a download failed.
enum AttemptError {
    /// Worth another try (network, throttling, 5xx).
    Transient(String),
    /// Won't get better (missing object, not restored, access denied, local I/O).
    Permanent(String),
}

impl Copier {
    /// `base` must be canonical (symlinks resolved); see [`crate::run`].
    pub fn new(
        s3: aws_sdk_s3::Client,
        base: PathBuf,
        owner_uid: Option<u32>,
        owner_gid: Option<u32>,
    ) -> Self {
        Copier {
            s3,
            base,
            owner_uid,
            owner_gid,
            checksum: false,
        }
    }

    /// Always compare content of existing files (`WORKER_CHECKSUM=true`), instead of trusting
    /// a file whose size and modification time match the object's (what this worker writes).
    pub fn with_checksum(mut self, checksum: bool) -> Self {
        self.checksum = checksum;
        self
    }

    fn chowning(&self) -> bool {
        self.owner_uid.is_some() || self.owner_gid.is_some()
    }

    /// Removes the `.part` files an earlier, interrupted run left beside the planned
    /// destinations: one directory listing per directory, before any copy starts, and only
    /// files named `<planned name>.<16 hex>.part`. Returns how many were removed.
    pub async fn remove_stale_parts(&self, items: &[CopyItem]) -> usize {
        let mut by_dir: BTreeMap<PathBuf, BTreeSet<OsString>> = BTreeMap::new();
        for item in items {
            let dest = self.base.join(&item.relative);
            if let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) {
                by_dir
                    .entry(dir.to_path_buf())
                    .or_default()
                    .insert(name.to_os_string());
            }
        }
        let mut removed = 0;
        for (dir, names) in by_dir {
            let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
                continue; // not created yet: nothing stale in it
            };
            while let Ok(Some(entry)) = entries.next_entry().await {
                let file_name = entry.file_name();
                let Some(name) = file_name.to_str() else {
                    continue;
                };
                let Some(stem) = stale_part_target(name) else {
                    continue;
                };
                if names.contains(std::ffi::OsStr::new(stem))
                    && tokio::fs::remove_file(entry.path()).await.is_ok()
                {
                    tracing::info!(path = %entry.path().display(), "removed stale partial download");
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Copies one object; never panics, never overwrites.
    pub async fn copy(&self, item: &CopyItem) -> Outcome {
        let dest = self.base.join(&item.relative);
        let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
            return Outcome::Failed("key has no file name".into());
        };
        if let Err(e) = self.make_dirs(&item.relative).await {
            return Outcome::Failed(format!("creating directory {}: {e}", dir.display()));
        }
        // A symlinked directory under BASE_PATH must not lead the copy elsewhere.
        match tokio::fs::canonicalize(dir).await {
            Ok(real) if real.starts_with(&self.base) => {}
            Ok(real) => {
                return Outcome::Failed(format!(
                    "directory {} resolves to {}, outside BASE_PATH",
                    dir.display(),
                    real.display()
                ))
            }
            Err(e) => return Outcome::Failed(format!("resolving {}: {e}", dir.display())),
        }
        match tokio::fs::symlink_metadata(&dest).await {
            Ok(meta) if meta.is_file() => return self.compare_existing(item, &dest, &meta).await,
            Ok(_) => {
                return Outcome::Conflict("destination exists and is not a regular file".into())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Outcome::Failed(format!("inspecting {}: {e}", dest.display())),
        }
        let mut attempt = 1;
        loop {
            let part = dir.join(format!(
                "{}.{:016x}{PART_SUFFIX}",
                name.to_string_lossy(),
                fastrand::u64(..)
            ));
            let result = self.download(item, &part).await;
            let result = match result {
                Ok(bytes) => self.publish(item, &part, &dest, bytes).await,
                Err(e) => Err(e),
            };
            if result.is_err() {
                let _ = tokio::fs::remove_file(&part).await;
            }
            match result {
                Ok(outcome) => return outcome,
                Err(AttemptError::Transient(message)) if attempt < ATTEMPTS => {
                    tracing::warn!(bucket = %item.bucket, key = %item.key, attempt, error = %message, "download failed, retrying");
                    tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
                    attempt += 1;
                }
                Err(AttemptError::Transient(message) | AttemptError::Permanent(message)) => {
                    return Outcome::Failed(message)
                }
            }
        }
    }

    /// Creates the missing directories between the base and the destination, giving each
    /// one the configured owner.
    async fn make_dirs(&self, relative: &Path) -> std::io::Result<()> {
        let mut dir = self.base.clone();
        let Some(parent) = relative.parent() else {
            return Ok(());
        };
        for component in parent.components() {
            dir.push(component);
            match tokio::fs::create_dir(&dir).await {
                Ok(()) => {
                    if self.chowning() {
                        std::os::unix::fs::chown(&dir, self.owner_uid, self.owner_gid)?;
                    }
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    // Never descend through a symlink that leads out of BASE_PATH (creating
                    // directories there would already be writing outside).
                    let real = tokio::fs::canonicalize(&dir).await?;
                    if !real.starts_with(&self.base) {
                        return Err(std::io::Error::other(format!(
                            "{} resolves to {}, outside BASE_PATH",
                            dir.display(),
                            real.display()
                        )));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// GetObject of the exact version the manifest names.
    async fn get_object(
        &self,
        item: &CopyItem,
    ) -> Result<GetObjectOutput, SdkError<GetObjectError, HttpResponse>> {
        self.s3
            .get_object()
            .bucket(&item.bucket)
            .key(&item.key)
            .set_version_id(item.version_id.clone())
            .send()
            .await
    }

    /// Streams the object into `part`; returns the bytes written after checking them.
    async fn download(&self, item: &CopyItem, part: &Path) -> Result<u64, AttemptError> {
        let response = self.get_object(item).await.map_err(|e| {
            // 4xx (missing, not restored, denied) won't change; 429, 5xx and transport
            // errors (after the SDK's own retries) might.
            let permanent = e
                .raw_response()
                .is_some_and(|r| r.status().is_client_error() && r.status().as_u16() != 429);
            let message = format!("GetObject: {}", DisplayErrorContext(&e));
            if permanent {
                AttemptError::Permanent(message)
            } else {
                AttemptError::Transient(message)
            }
        })?;
        let expected_len = response.content_length().map(|n| n.max(0) as u64);
        let modified = response
            .last_modified()
            .and_then(|t| std::time::SystemTime::try_from(*t).ok());
        let expected_md5 = md5_etag(
            response.e_tag(),
            response.server_side_encryption().map(|s| s.as_str()),
            response.sse_customer_algorithm(),
        );
        let local =
            |e: std::io::Error| AttemptError::Permanent(format!("writing {}: {e}", part.display()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(part)
            .await
            .map_err(local)?;
        let mut writer = BufWriter::with_capacity(BUFFER, file);
        let mut body = response.body;
        let mut hasher = Md5::new();
        let mut written = 0u64;
        loop {
            let chunk = body.try_next().await.map_err(|e| {
                AttemptError::Transient(format!(
                    "reading the object body: {}",
                    DisplayErrorContext(&e)
                ))
            })?;
            let Some(chunk) = chunk else { break };
            hasher.update(&chunk);
            writer.write_all(&chunk).await.map_err(local)?;
            written += chunk.len() as u64;
        }
        writer.flush().await.map_err(local)?;
        let file = writer.into_inner().into_std().await;
        if let Some(modified) = modified {
            // The object's time: lets a rerun recognise the file without reading it again.
            file.set_modified(modified).map_err(local)?;
        }
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(|e| AttemptError::Permanent(format!("syncing {}: {e}", part.display())))?
            .map_err(local)?;
        if let Some(expected) = expected_len {
            if written != expected {
                return Err(AttemptError::Transient(format!(
                    "body ended after {written} of {expected} bytes"
                )));
            }
        }
        if let Some(expected) = expected_md5 {
            let actual = hex(&hasher.finalize());
            if actual != expected {
                return Err(AttemptError::Transient(format!(
                    "downloaded content has MD5 {actual}, object ETag says {expected}"
                )));
            }
        }
        Ok(written)
    }

    /// Gives the finished `.part` its owner and links it to `dest` without clobbering.
    async fn publish(
        &self,
        item: &CopyItem,
        part: &Path,
        dest: &Path,
        bytes: u64,
    ) -> Result<Outcome, AttemptError> {
        let local = |what: &str, e: std::io::Error| {
            AttemptError::Permanent(format!("{what} {}: {e}", dest.display()))
        };
        if self.chowning() {
            std::os::unix::fs::chown(part, self.owner_uid, self.owner_gid)
                .map_err(|e| local("changing the owner of", e))?;
        }
        match tokio::fs::hard_link(part, dest).await {
            Ok(()) => {
                let _ = tokio::fs::remove_file(part).await;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                // Someone else wrote it meanwhile: judge it like any existing file.
                let _ = tokio::fs::remove_file(part).await;
                let meta = tokio::fs::metadata(dest)
                    .await
                    .map_err(|e| local("inspecting", e))?;
                return Ok(self.compare_existing(item, dest, &meta).await);
            }
            Err(_) => {
                // File systems without hard links: rename, after checking (small race window).
                if tokio::fs::symlink_metadata(dest).await.is_ok() {
                    let _ = tokio::fs::remove_file(part).await;
                    let meta = tokio::fs::metadata(dest)
                        .await
                        .map_err(|e| local("inspecting", e))?;
                    return Ok(self.compare_existing(item, dest, &meta).await);
                }
                tokio::fs::rename(part, dest)
                    .await
                    .map_err(|e| local("renaming into", e))?;
            }
        }
        if let Some(dir) = dest.parent() {
            // Make the new directory entry durable too.
            if let Ok(handle) = tokio::fs::File::open(dir).await {
                let _ = handle.sync_all().await;
            }
        }
        Ok(Outcome::Copied { bytes })
    }

    /// Decides whether an existing destination already holds the object: size first; then, like
    /// rsync's quick check, a modification time equal to the object's (the worker sets it on
    /// every file it writes, so a resumed run doesn't re-read terabytes); else the MD5 when the
    /// ETag is one, else a streamed byte-by-byte comparison.
    async fn compare_existing(
        &self,
        item: &CopyItem,
        dest: &Path,
        local: &std::fs::Metadata,
    ) -> Outcome {
        let local_len = local.len();
        let head = match self
            .s3
            .head_object()
            .bucket(&item.bucket)
            .key(&item.key)
            .set_version_id(item.version_id.clone())
            .send()
            .await
        {
            Ok(head) => head,
            Err(e) => return Outcome::Failed(format!("HeadObject: {}", DisplayErrorContext(&e))),
        };
        let remote_len = head.content_length().unwrap_or(0).max(0) as u64;
        if local_len != remote_len {
            return Outcome::Conflict(format!(
                "a different file exists ({local_len} bytes, the object has {remote_len})"
            ));
        }
        if !self.checksum {
            let local_secs = local
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64);
            if local_secs.is_some() && local_secs == head.last_modified().map(|t| t.secs()) {
                return Outcome::Skipped;
            }
        }
        let expected_md5 = md5_etag(
            head.e_tag(),
            head.server_side_encryption().map(|s| s.as_str()),
            head.sse_customer_algorithm(),
        );
        if let Some(expected) = expected_md5 {
            let path = dest.to_path_buf();
            return match tokio::task::spawn_blocking(move || md5_file(&path)).await {
                Ok(Ok(actual)) if actual == expected => Outcome::Skipped,
                Ok(Ok(_)) => Outcome::Conflict(
                    "a different file exists (same size, different content)".into(),
                ),
                Ok(Err(e)) => Outcome::Failed(format!("reading {}: {e}", dest.display())),
                Err(e) => Outcome::Failed(format!("hashing {}: {e}", dest.display())),
            };
        }
        match self.same_bytes(item, dest).await {
            Ok(true) => Outcome::Skipped,
            Ok(false) => {
                Outcome::Conflict("a different file exists (same size, different content)".into())
            }
            Err(message) => Outcome::Failed(message),
        }
    }

    /// Streams the object and the local file side by side (multipart or KMS objects, whose
    /// ETag is not an MD5).
    async fn same_bytes(&self, item: &CopyItem, dest: &Path) -> Result<bool, String> {
        let response = self
            .get_object(item)
            .await
            .map_err(|e| format!("GetObject: {}", DisplayErrorContext(&e)))?;
        let file = tokio::fs::File::open(dest)
            .await
            .map_err(|e| format!("reading {}: {e}", dest.display()))?;
        let mut local = BufReader::with_capacity(BUFFER, file);
        let mut body = response.body;
        let mut buffer = Vec::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| format!("reading the object body: {}", DisplayErrorContext(&e)))?
        {
            buffer.resize(chunk.len(), 0);
            match local.read_exact(&mut buffer).await {
                Ok(_) if buffer[..] == chunk[..] => {}
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(format!("reading {}: {e}", dest.display())),
            }
        }
        let mut probe = [0u8; 1];
        match local.read(&mut probe).await {
            Ok(0) => Ok(true),
            Ok(_) => Ok(false),
            Err(e) => Err(format!("reading {}: {e}", dest.display())),
        }
    }
}

/// The name a `.part` file stands for: `<name>.<16 lowercase hex>.part` → `<name>`.
fn stale_part_target(file_name: &str) -> Option<&str> {
    let rest = file_name.strip_suffix(PART_SUFFIX)?;
    let (stem, token) = rest.rsplit_once('.')?;
    let is_token = token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (is_token && !stem.is_empty()).then_some(stem)
}

/// The MD5 an ETag stands for, when it stands for one: single-part uploads without SSE-KMS or
/// SSE-C (multipart ETags end in `-<parts>`).
fn md5_etag(etag: Option<&str>, sse: Option<&str>, sse_customer: Option<&str>) -> Option<String> {
    if sse.is_some_and(|s| s.starts_with("aws:kms")) || sse_customer.is_some() {
        return None;
    }
    let etag = etag?.trim_matches('"').to_ascii_lowercase();
    (etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())).then_some(etag)
}

fn md5_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; BUFFER];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_part_names_are_stale() {
        assert_eq!(
            stale_part_target("clip 1.mov.0123456789abcdef.part"),
            Some("clip 1.mov")
        );
        assert_eq!(stale_part_target("clip.mov.part"), None);
        assert_eq!(stale_part_target("clip.mov.0123.part"), None);
        assert_eq!(stale_part_target("clip.mov.0123456789ABCDEF.part"), None);
        assert_eq!(stale_part_target(".0123456789abcdef.part"), None);
    }

    #[test]
    fn etag_is_an_md5_only_for_plain_uploads() {
        let md5 = "\"9E107D9D372BB6826BD81D3542A419D6\"";
        assert_eq!(
            md5_etag(Some(md5), None, None).as_deref(),
            Some("9e107d9d372bb6826bd81d3542a419d6")
        );
        assert_eq!(
            md5_etag(Some(md5), Some("AES256"), None).as_deref(),
            Some("9e107d9d372bb6826bd81d3542a419d6")
        );
        assert_eq!(md5_etag(Some(md5), Some("aws:kms"), None), None);
        assert_eq!(md5_etag(Some(md5), None, Some("AES256")), None);
        assert_eq!(
            md5_etag(Some("\"9e107d9d372bb6826bd81d3542a419d6-3\""), None, None),
            None
        );
        assert_eq!(md5_etag(None, None, None), None);
    }

    #[test]
    fn md5_hex_of_known_input() {
        assert_eq!(
            hex(&Md5::digest(b"The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
    }
}
