//! `download`: a file fetched over HTTPS (rustls; the system's CA store and
//! an optional `ca`) or from S3 (object_store, with the S3 source's
//! credentials), verified by its SHA-256. The file on disk is hashed to
//! decide: a match is never fetched again. The body streams into a temporary
//! file in the same directory, bounded in size and time, and is renamed over
//! the target only when its checksum matches; otherwise the target is
//! untouched and the temporary file removed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use tend_model::resources::Presence;
use tend_model::resources::download::{DownloadProps, is_sha256};
use tend_model::{CompiledResource, Spec};

use super::support::fsmeta::{Meta, kind_of, lstat, require_parent};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct DownloadType;

/// The largest checksum list read from `sha256_url`.
const SUMS_LIMIT: usize = 1024 * 1024;

fn props(r: &CompiledResource) -> Result<&DownloadProps> {
    match &r.spec {
        Spec::Download(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a file on disk.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(Error::io(format!("read {}", path.display())))?;
    hash_reader(&mut f, path)
}

/// The SHA-256 of what `r` holds to its end (`path` names it in errors).
pub fn hash_reader(r: &mut impl Read, path: &Path) -> Result<String> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf).map_err(Error::io(format!("read {}", path.display())))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex(ctx.finish().as_ref()))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the download runtime: {e}")))
}

/// Fetches a small document over HTTPS (a checksum list, a signing key),
/// bounded in size and time.
pub fn fetch_small(url: &str, ca: Option<&str>, limit: usize, timeout: u64) -> Result<Vec<u8>> {
    let client = client(ca)?;
    let mut body = Vec::new();
    let limit_s = Duration::from_secs(timeout);
    runtime()?.block_on(async {
        tokio::time::timeout(limit_s, async {
            let resp = get(&client, url).await?;
            stream(resp, url, limit as u64, |c| {
                body.extend_from_slice(c);
                Ok(())
            })
            .await
        })
        .await
        .unwrap_or_else(|_| Err(Error::Failed(format!("{url}: timed out after {timeout} s"))))
    })?;
    Ok(body)
}

fn client(ca: Option<&str>) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder().https_only(true).connect_timeout(Duration::from_secs(30));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(Error::io(format!("read the CA file {ca}")))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::Failed(format!("{ca} holds no PEM certificate: {e}")))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| Error::Failed(format!("cannot build the HTTPS client: {e}")))
}

/// Reads a body in chunks, passing each to `sink`; fails past `limit` bytes.
async fn stream(
    mut resp: reqwest::Response,
    url: &str,
    limit: u64,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    if let Some(n) = resp.content_length().filter(|n| *n > limit) {
        return Err(Error::Failed(format!("{url} is {n} bytes, over the limit of {limit} (`max_size`)")));
    }
    let mut total = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| Error::Failed(format!("{url}: {e}")))? {
        total += chunk.len() as u64;
        if total > limit {
            return Err(Error::Failed(format!("{url} is over the limit of {limit} bytes (`max_size`)")));
        }
        sink(&chunk)?;
    }
    Ok(total)
}

async fn get(client: &reqwest::Client, url: &str) -> Result<reqwest::Response> {
    let resp = client.get(url).send().await.map_err(|e| Error::Failed(format!("{url}: {}", chain(&e))))?;
    if !resp.status().is_success() {
        return Err(Error::Failed(format!("{url}: the server answered {}", resp.status())));
    }
    Ok(resp)
}

/// An error with its causes (reqwest's own message hides the TLS reason).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Runs `f` with the download's time limit.
fn timed<T>(p: &DownloadProps, what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let limit = Duration::from_secs(p.timeout);
    runtime()?.block_on(async {
        tokio::time::timeout(limit, f)
            .await
            .unwrap_or_else(|_| Err(Error::Failed(format!("{what}: timed out after {} s (`timeout`)", p.timeout))))
    })
}

/// The checksum wanted: `sha256`, or the line of `sha256_url` for the
/// source's file name (or its only checksum).
fn wanted_sha(p: &DownloadProps) -> Result<String> {
    if let Some(h) = &p.sha256 {
        return Ok(h.to_ascii_lowercase());
    }
    let url = p.sha256_url.as_deref().unwrap_or_default();
    let body = fetch_small(url, p.ca.as_deref(), SUMS_LIMIT, p.timeout)?;
    let text = String::from_utf8_lossy(&body);
    let name = p.source.as_deref().and_then(|s| s.rsplit('/').next()).unwrap_or_default();
    let mut only = None;
    let mut count = 0;
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let (Some(sum), file) = (w.next(), w.next()) else { continue };
        if !is_sha256(sum) {
            continue;
        }
        count += 1;
        only = Some(sum);
        if file.map(|f| f.trim_start_matches(['*', '.', '/'])) == Some(name) {
            return Ok(sum.to_ascii_lowercase());
        }
    }
    match (count, only) {
        (1, Some(sum)) => Ok(sum.to_ascii_lowercase()),
        _ => Err(Error::Failed(format!("{url} has no SHA-256 for {name:?}"))),
    }
}

impl ResourceType for DownloadType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        let path = Path::new(&r.id.name);
        let md = lstat(path)?;
        if p.state == Presence::Absent {
            return Ok(match md {
                None => vec![],
                Some(m) if m.is_file() => vec![Change::new("ensure", Some("file".into()), Some("absent".into()))],
                Some(m) => return Err(Error::Failed(format!("{} is a {}, not a file", path.display(), kind_of(&m)))),
            });
        }
        let want = wanted_sha(p)?;
        let meta = Meta::resolve_in(&r.spec.ownership().unwrap_or_default(), ctx)?;
        match md {
            None => {
                require_parent(path, ctx.dirs)?;
                Ok(vec![
                    Change::new("ensure", Some("absent".into()), Some("file".into())),
                    Change::new("sha256", None, Some(want)),
                ])
            }
            Some(m) if m.is_file() => {
                let have = hash_file(path)?;
                let mut c = Vec::new();
                if have != want {
                    c.push(Change::new("sha256", Some(have), Some(want)));
                }
                c.extend(meta.changes(&m, ctx.accounts));
                Ok(c)
            }
            Some(m) => Err(Error::Failed(format!("{} is a {}, not a file", path.display(), kind_of(&m)))),
        }
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        let path = Path::new(&r.id.name);
        if p.state == Presence::Absent {
            std::fs::remove_file(path).map_err(Error::io(format!("remove {}", path.display())))?;
            if let Some(parent) = path.parent() {
                ctx.staging.note_dir(parent);
            }
            return Ok(Applied::Done);
        }
        let meta = Meta::resolve(&r.spec.ownership().unwrap_or_default(), ctx.accounts)?;
        if !changes.iter().any(|c| c.property == "sha256") {
            meta.apply(path, changes)?;
            return Ok(Applied::Done);
        }
        let want = wanted_sha(p)?;
        let existing = lstat(path)?.filter(|m| m.is_file());
        let uid = meta.uid.or(existing.as_ref().map(|m| m.uid())).unwrap_or_else(|| nix::unistd::geteuid().as_raw());
        let gid = meta.gid.or(existing.as_ref().map(|m| m.gid())).unwrap_or_else(|| nix::unistd::getegid().as_raw());
        let mode = match (&meta.mode, &existing) {
            (Some(m), Some(e)) => m.resolve(e.mode() & 0o7777, false),
            (Some(m), None) => m.for_new(false),
            (None, Some(e)) => e.mode() & 0o7777,
            (None, None) => 0o644,
        };
        let tmp = crate::state::temp_path(path);
        let result = fetch_into(p, &tmp).and_then(|(f, got)| {
            if got != want {
                return Err(Error::Failed(format!(
                    "checksum mismatch for {}: expected {want}, got {got}; {} is unchanged",
                    p.source.as_deref().unwrap_or_default(),
                    path.display()
                )));
            }
            let what = || format!("write {}", tmp.display());
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(Error::io(what()))?;
            f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(Error::io(what()))?;
            f.sync_all().map_err(Error::io(what()))?;
            std::fs::rename(&tmp, path).map_err(Error::io(format!("rename into {}", path.display())))
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        if let Some(parent) = path.parent() {
            ctx.staging.note_dir(parent);
        }
        Ok(Applied::Done)
    }
}

/// Downloads the source into `tmp` (created exclusively, 0600); returns the
/// open file and the SHA-256 of what was written.
fn fetch_into(p: &DownloadProps, tmp: &Path) -> Result<(File, String)> {
    let url = p.source.as_deref().unwrap_or_default();
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(tmp)
        .map_err(Error::io(format!("create {}", tmp.display())))?;
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut sink = |chunk: &[u8]| -> Result<()> {
        digest.update(chunk);
        f.write_all(chunk).map_err(Error::io(format!("write {}", tmp.display())))
    };
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let store = crate::aws::s3_builder()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| Error::Failed(format!("{url}: configuring the S3 client: {e}")))?;
        timed(p, url, async {
            use futures_util::StreamExt;
            use object_store::ObjectStore;
            let res = store
                .get_opts(&object_store::path::Path::from(key), object_store::GetOptions::default())
                .await
                .map_err(|e| Error::Failed(format!("{url}: {e}")))?;
            if res.meta.size > p.max_size {
                return Err(Error::Failed(format!(
                    "{url} is {} bytes, over the limit of {} (`max_size`)",
                    res.meta.size, p.max_size
                )));
            }
            let mut body = res.into_stream();
            let mut total = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| Error::Failed(format!("{url}: {e}")))?;
                total += chunk.len() as u64;
                if total > p.max_size {
                    return Err(Error::Failed(format!("{url} is over the limit of {} bytes (`max_size`)", p.max_size)));
                }
                sink(&chunk)?;
            }
            Ok(())
        })?;
    } else {
        let client = client(p.ca.as_deref())?;
        timed(p, url, async {
            let resp = get(&client, url).await?;
            stream(resp, url, p.max_size, &mut sink).await.map(|_| ())
        })?;
    }
    Ok((f, hex(digest.finish().as_ref())))
}
