//! AWS access shared by the S3 source and `download` from `s3://`: the
//! client settings from the environment and the shared AWS files
//! ([`profile`]), with the EC2 instance profile as the last resort
//! (object_store's default chain).

use object_store::aws::AmazonS3Builder;

pub mod profile;

/// The environment's settings, completed from the shared AWS files: keys
/// only when the environment has none (so the instance profile is the last
/// resort), region and endpoint only when the environment names none.
pub fn s3_builder() -> AmazonS3Builder {
    let mut b = AmazonS3Builder::from_env();
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
    let p = profile::from_env();
    if !set("AWS_ACCESS_KEY_ID")
        && let (Some(id), Some(secret)) = (p.access_key_id, p.secret_access_key)
    {
        b = b.with_access_key_id(id).with_secret_access_key(secret);
        if let Some(t) = p.session_token {
            b = b.with_token(t);
        }
    }
    if !set("AWS_REGION")
        && !set("AWS_DEFAULT_REGION")
        && let Some(r) = p.region
    {
        b = b.with_region(r);
    }
    if !set("AWS_ENDPOINT")
        && !set("AWS_ENDPOINT_URL")
        && let Some(e) = p.endpoint_url
    {
        if e.starts_with("http://") {
            b = b.with_allow_http(true);
        }
        b = b.with_endpoint(e);
    }
    b
}
