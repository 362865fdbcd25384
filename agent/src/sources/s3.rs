//! The S3 source: `source: s3://bucket/prefix/` in the agent configuration.
//! The agent reads `PREFIX/recipes.json` (a recipe set, as `tend recipe
//! bundle` writes it) with SigV4 (object_store), fetching conditionally on
//! the ETag. Credentials come from the environment, then the shared AWS
//! files (`~/.aws/credentials` and `~/.aws/config`, profile `AWS_PROFILE`),
//! then the EC2 instance profile through IMDSv2. S3 says nothing about who wrote an
//! object, so an S3 source requires `trusted_keys`: every recipe must be signed.

use anyhow::Context;
use object_store::{GetOptions, ObjectStore};
use tend_model::wire::AgentRecipes;

use crate::sources::server::{RecipeCache, Source};
use crate::state::StateDir;

/// Fetches the recipe set from S3, or falls back to the cache when S3
/// cannot be reached. Refusals (credentials, permissions, a missing object)
/// are errors: they will not fix themselves.
pub async fn fetch(url: &str, state: &StateDir) -> anyhow::Result<(AgentRecipes, Source)> {
    let (bucket, key) = crate::config::s3_location(url)?;
    let store = crate::aws::s3_builder().with_bucket_name(&bucket).build().context("configuring the S3 client")?;
    let cache = RecipeCache::new(state, "s3.etag");
    let opts = GetOptions { if_none_match: cache.etag(), ..GetOptions::default() };
    let path = object_store::path::Path::from(key.as_str());
    match store.get_opts(&path, opts).await {
        Ok(res) => {
            let etag = res.meta.e_tag.clone();
            let body = res.bytes().await.context("reading the recipe set from S3")?;
            let set = cache.store(&body, etag.as_deref()).with_context(|| format!("s3://{bucket}/{key}"))?;
            Ok((set, Source::Fresh))
        }
        Err(object_store::Error::NotModified { .. }) => Ok((cache.load()?, Source::NotModified)),
        Err(e @ object_store::Error::Generic { .. }) if cache.exists() && is_transport(&e) => {
            Ok((cache.load()?, Source::Cached(e.to_string())))
        }
        Err(e) => Err(anyhow::anyhow!("s3://{bucket}/{key}: {e}")),
    }
}

/// True for errors of reaching S3 (connection, timeout), not of S3 refusing.
fn is_transport(e: &object_store::Error) -> bool {
    let text = e.to_string().to_lowercase();
    ["connect", "timed out", "timeout", "dns", "unreachable", "connection"].iter().any(|w| text.contains(w))
        && !["signature", "forbidden", "access denied", "invalidaccesskeyid"].iter().any(|w| text.contains(w))
}
