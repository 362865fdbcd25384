//! Recipe signatures: with trusted keys configured, the agent converges only
//! bundles signed (ed25519) by one of them. A server, or an S3 bucket, that
//! hands out anything else gets it refused.

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use tend_model::bundle::Bundle;

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Ok when no keys are trusted (signing not required) or the bundle is
/// signed by a trusted key over its exact content.
pub fn check(bundle: &Bundle, trusted: &[String]) -> Result<(), String> {
    if trusted.is_empty() {
        return Ok(());
    }
    let Some(sig) = &bundle.signature else {
        return Err(format!("recipe {} is not signed, and this agent accepts only signed recipes", bundle.name));
    };
    if !trusted.iter().any(|k| k.trim().eq_ignore_ascii_case(sig.public_key.trim())) {
        return Err(format!("recipe {} is signed by a key this agent does not trust", bundle.name));
    }
    let (Some(key), Some(signature)) = (unhex(&sig.public_key), unhex(&sig.signature)) else {
        return Err(format!("recipe {} has a malformed signature", bundle.name));
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&bundle.canonical(), &signature)
        .map_err(|_| format!("recipe {}: the signature does not match its content (tampered?)", bundle.name))
}
