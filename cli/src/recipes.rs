//! `tend recipe …`: recipes on the server, signing keys and S3 recipe sets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

use crate::client::Client;
use crate::output::{self, Output};

#[derive(Subcommand)]
pub enum RecipeCmd {
    /// Push a recipe file, or every recipe file in a directory.
    Push {
        path: PathBuf,
        /// Sign with this ed25519 key (from `tend recipe keygen`).
        #[arg(long)]
        sign: Option<PathBuf>,
    },
    /// Write a recipe set file (for an S3 source): the recipes, with these
    /// parameters, signed. Upload it as s3://BUCKET/PREFIX/recipes.json.
    Bundle {
        #[arg(required = true)]
        recipes: Vec<PathBuf>,
        #[arg(long)]
        sign: Option<PathBuf>,
        /// Parameter values (YAML or JSON mapping), for every recipe.
        #[arg(long)]
        params: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Make an ed25519 signing key: the private key goes to FILE (0600), the
    /// public key (for agents' trusted_keys) is printed.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    List,
    /// NAME or NAME@VERSION.
    Show {
        spec: String,
    },
    /// The differences between two versions: NAME@A NAME@B.
    Diff {
        a: String,
        b: String,
    },
}

pub async fn run(c: &Client, out: Output, cmd: RecipeCmd) -> anyhow::Result<()> {
    match cmd {
        RecipeCmd::Bundle { recipes, sign, params, out: path } => bundle(&recipes, sign.as_deref(), params, &path),
        RecipeCmd::Keygen { out: path } => keygen(&path),
        RecipeCmd::Push { path, sign } => push(c, out, path, sign.as_deref()).await,
        RecipeCmd::List => {
            let v: Vec<tend_model::wire::RecipeVersion> = c.get("/v1/recipes").await?;
            output::show(out, &v, &["name", "version", "files", "created_at"])
        }
        RecipeCmd::Show { spec } => {
            let v: serde_json::Value = c.get(&format!("/v1/recipes/{spec}")).await?;
            if out == Output::Json {
                return output::json(&v);
            }
            println!(
                "{}@{} ({})",
                v["name"].as_str().unwrap_or(""),
                v["version"].as_str().unwrap_or(""),
                v["created_at"].as_str().unwrap_or("")
            );
            for (path, text) in v["bundle"]["files"].as_object().into_iter().flatten() {
                println!("--- {path}\n{}", text.as_str().unwrap_or(""));
            }
            Ok(())
        }
        RecipeCmd::Diff { a, b } => diff(c, &a, &b).await,
    }
}

/// Loads a signing key written by `tend recipe keygen`.
fn load_signer(path: &Path) -> anyhow::Result<aws_lc_rs::signature::Ed25519KeyPair> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the signing key {}", path.display()))?;
    let der =
        unhex(text.trim()).with_context(|| format!("{} is not a key from `tend recipe keygen`", path.display()))?;
    aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&der)
        .map_err(|_| anyhow::anyhow!("{} is not an ed25519 key", path.display()))
}

fn sign_bundle(bundle: &mut tend_model::bundle::Bundle, kp: &aws_lc_rs::signature::Ed25519KeyPair) {
    use aws_lc_rs::signature::KeyPair;
    bundle.signature = Some(tend_model::bundle::BundleSignature {
        public_key: hex(kp.public_key().as_ref()),
        signature: hex(kp.sign(&bundle.canonical()).as_ref()),
    });
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn bundle(recipes: &[PathBuf], key: Option<&Path>, params: Option<PathBuf>, path: &Path) -> anyhow::Result<()> {
    let signer = key.map(load_signer).transpose()?;
    let params = params.as_deref().map(crate::read_params).transpose()?.unwrap_or_default();
    let skeleton = tend_model::facts::skeleton();
    let mut set = tend_model::wire::AgentRecipes::default();
    for r in recipes {
        let mut bundle = tend_model::bundle::Bundle::from_file(r, &skeleton)?;
        let overrides = tend_model::params::Overrides { raw: Vec::new(), typed: params.clone(), placeholders: false };
        bundle.validate_with(&skeleton, &overrides)?;
        if let Some(kp) = &signer {
            sign_bundle(&mut bundle, kp);
        }
        let version = crate::files::sha256_hex(&serde_json::to_vec(&bundle)?)[..16].to_string();
        set.recipes.push(tend_model::wire::AssignedRecipe {
            assignment: "s3".into(),
            version,
            params: params.clone(),
            bundle,
        });
    }
    crate::files::write_private(path, &serde_json::to_string_pretty(&set)?, 0o644)?;
    println!("wrote {} recipe(s) to {}", set.recipes.len(), path.display());
    Ok(())
}

fn keygen(path: &Path) -> anyhow::Result<()> {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow::anyhow!("key generation failed"))?;
    let kp = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| anyhow::anyhow!("key generation failed"))?;
    crate::files::write_private(path, &format!("{}\n", hex(doc.as_ref())), 0o600)?;
    println!("{}", hex(kp.public_key().as_ref()));
    Ok(())
}

async fn push(c: &Client, out: Output, path: PathBuf, sign: Option<&Path>) -> anyhow::Result<()> {
    let signer = sign.map(load_signer).transpose()?;
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        v.sort();
        v
    } else {
        vec![path]
    };
    let skeleton = tend_model::facts::skeleton();
    let mut pushed = Vec::new();
    for f in files {
        let mut bundle = tend_model::bundle::Bundle::from_file(&f, &skeleton)?;
        if let Some(kp) = &signer {
            sign_bundle(&mut bundle, kp);
        }
        let v: tend_model::wire::RecipeVersion = c.post("/v1/recipes", &bundle).await?;
        pushed.push(v);
    }
    output::show(out, &pushed, &["name", "version", "files", "created_at"])
}

async fn diff(c: &Client, a: &str, b: &str) -> anyhow::Result<()> {
    let va: serde_json::Value = c.get(&format!("/v1/recipes/{a}")).await?;
    let vb: serde_json::Value = c.get(&format!("/v1/recipes/{b}")).await?;
    let files = |v: &serde_json::Value| -> BTreeMap<String, String> {
        v["bundle"]["files"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, t)| (k.clone(), t.as_str().unwrap_or("").to_string()))
            .collect()
    };
    let (fa, fb) = (files(&va), files(&vb));
    let mut names: Vec<&String> = fa.keys().chain(fb.keys()).collect();
    names.sort();
    names.dedup();
    for n in names {
        let (x, y) = (fa.get(n).map(String::as_str).unwrap_or(""), fb.get(n).map(String::as_str).unwrap_or(""));
        if x != y {
            print!(
                "{}",
                similar::TextDiff::from_lines(x, y).unified_diff().header(&format!("{a}/{n}"), &format!("{b}/{n}"))
            );
        }
    }
    Ok(())
}
