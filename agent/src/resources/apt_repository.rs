//! `apt_repository`: a deb822 source in `/etc/apt/sources.list.d/NAME.sources`
//! and its key in `/etc/apt/keyrings/NAME.asc` (named by `Signed-By`, so the
//! key vouches for this repository only). A key from `key_url` is checked
//! against `key_fingerprint` before it is written, and is fetched only when
//! the installed key does not already have that fingerprint. A changed
//! repository makes the next package install in this run refresh apt's lists
//! first (every package is ordered after every repository).

use std::path::{Path, PathBuf};

use tend_model::resources::Presence;
use tend_model::resources::apt_repository::{AptRepositoryProps, normal_fingerprint};
use tend_model::{CompiledResource, Spec};

use super::support::edit::Part;
use super::support::openpgp::fingerprints;
use super::{Applied, Ctx, Error, ResourceType, Result, download, mismatch};
use crate::report::Change;

pub struct AptRepositoryType;

/// The largest key fetched from `key_url`.
const KEY_LIMIT: usize = 1024 * 1024;

fn props(r: &CompiledResource) -> Result<&AptRepositoryProps> {
    match &r.spec {
        Spec::AptRepository(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

struct Files {
    sources: PathBuf,
    sources_text: Option<String>,
    keyring: PathBuf,
    key_text: Option<String>,
}

fn render(p: &AptRepositoryProps, keyring: &Path, id: &str) -> String {
    let mut s = format!("# Managed by tend ({id}).\n");
    let mut field = |k: &str, v: &[String]| {
        if !v.is_empty() {
            s.push_str(&format!("{k}: {}\n", v.join(" ")));
        }
    };
    field("Types", &p.types);
    field("URIs", &p.uris);
    field("Suites", &p.suites);
    field("Components", &p.components);
    if let Some(a) = &p.architectures {
        field("Architectures", a);
    }
    if p.key.is_some() || p.key_url.is_some() {
        s.push_str(&format!("Signed-By: {}\n", keyring.display()));
    }
    if !p.enabled {
        s.push_str("Enabled: no\n");
    }
    s
}

/// Checks the key against the trusted fingerprint, if one is given.
fn check_key(text: &str, p: &AptRepositoryProps, source: &str) -> Result<()> {
    let Some(want) = p.key_fingerprint.as_deref().and_then(normal_fingerprint) else {
        return Ok(());
    };
    let keys = fingerprints(text).map_err(|e| Error::Failed(format!("the key from {source} is not usable: {e}")))?;
    // Signed-By trusts every key in the file: exactly the one trusted key
    // (found by its own fingerprint or one of its subkeys').
    if keys.primary.len() > 1 {
        return Err(Error::Failed(format!(
            "the key file from {source} holds {} keys ({}); only the trusted {want} may be in it; nothing was installed",
            keys.primary.len(),
            keys.primary.join(", ")
        )));
    }
    if keys.primary.contains(&want) || keys.subkeys.contains(&want) {
        return Ok(());
    }
    Err(Error::Failed(format!(
        "the key from {source} has fingerprint {}, not the trusted {want}; nothing was installed",
        keys.primary.join(", ")
    )))
}

fn files(name: &str, p: &AptRepositoryProps, id: &str) -> Result<Files> {
    let sources = Path::new("/etc/apt/sources.list.d").join(format!("{name}.sources"));
    let keyring = Path::new("/etc/apt/keyrings").join(format!("{name}.asc"));
    if p.state == Presence::Absent {
        return Ok(Files { sources, sources_text: None, keyring, key_text: None });
    }
    let key_text = match (&p.key, &p.key_url) {
        (Some(k), _) => {
            check_key(k, p, "`key`")?;
            Some(format!("{}\n", k.trim_end()))
        }
        (None, Some(url)) => {
            // The installed key already has the fingerprint: not fetched again.
            let installed = std::fs::read_to_string(&keyring).ok().filter(|t| check_key(t, p, "").is_ok());
            match installed {
                Some(t) => Some(t),
                None => {
                    let body = download::fetch_small(url, None, KEY_LIMIT, 60)?;
                    let text =
                        String::from_utf8(body).map_err(|_| Error::Failed(format!("{url} is not an armored key")))?;
                    check_key(&text, p, url)?;
                    Some(format!("{}\n", text.trim_end()))
                }
            }
        }
        (None, None) => None,
    };
    let sources_text = Some(render(p, &keyring, id));
    Ok(Files { sources, sources_text, keyring, key_text })
}

impl Files {
    fn parts(&self) -> [Part<'_>; 2] {
        [Part::owned(&self.keyring, &self.key_text), Part::owned(&self.sources, &self.sources_text)]
    }
}

impl ResourceType for AptRepositoryType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let f = files(&r.id.name, props(r)?, &r.id.to_string())?;
        let mut changes = Vec::new();
        for part in f.parts() {
            changes.extend(part.check(ctx)?);
        }
        Ok(changes)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let f = files(&r.id.name, props(r)?, &r.id.to_string())?;
        for part in f.parts() {
            part.apply(changes, ctx)?;
        }
        if !changes.is_empty() {
            ctx.run.packages.apt.lists_changed();
        }
        Ok(Applied::Done)
    }
}
