//! The S3 source against a real S3-API server on loopback (moto's server,
//! with authentication on: SigV4 with an access key created through IAM).
//! Signed recipe sets converge; tampered ones and wrong secrets are refused,
//! and nothing changes on the host.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

struct Moto {
    child: Child,
    endpoint: String,
    python: PathBuf,
    key: String,
    secret: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server() -> PathBuf {
    PathBuf::from(std::env::var("TEND_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into()))
}

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let server = moto_server();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // The first three calls (IAM setup) are free; after that, SigV4 is enforced.
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {} ({e}): `bash .ci/run` installs moto[server]", server.display())
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let python = match server.parent().map(|d| d.join("python")) {
            Some(p) if p.exists() => p,
            _ => PathBuf::from("python3"),
        };
        let mut moto = Moto { child, endpoint, python, key: String::new(), secret: String::new() };
        let out = moto.py(
            r#"
import boto3, json, sys
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="tend")
k = iam.create_access_key(UserName="tend")["AccessKey"]
iam.put_user_policy(UserName="tend", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
print(k["AccessKeyId"], k["SecretAccessKey"])
"#,
            &[],
        );
        let mut it = out.split_whitespace();
        moto.key = it.next().expect("key").to_string();
        moto.secret = it.next().expect("secret").to_string();
        moto
    }

    fn py(&self, script: &str, args: &[&str]) -> String {
        let out =
            Command::new(&self.python).arg("-c").arg(script).arg(&self.endpoint).args(args).output().expect("python");
        assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Uploads a file with the IAM user's key (SigV4).
    fn put(&self, bucket: &str, key: &str, file: &Path) {
        self.py(
            r#"
import boto3, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
try:
    s3.create_bucket(Bucket=sys.argv[4])
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
s3.put_object(Bucket=sys.argv[4], Key=sys.argv[5], Body=open(sys.argv[6], "rb").read())
"#,
            &[&self.key, &self.secret, bucket, key, file.to_str().expect("path")],
        );
    }
}

/// A binary of another package of this build (target/<profile>/NAME).
fn sibling_bin(name: &str, package: &str) -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_tend-server")).with_file_name(name);
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p {package}`", bin.display());
    bin
}

fn agent_bin() -> PathBuf {
    sibling_bin("tend-agent", "tend-agent")
}

fn tend(args: &[&str]) -> Output {
    Command::new(sibling_bin("tend", "tend-cli")).args(args).output().expect("tend")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const RECIPE: &str = "name: s3web\nparameters:\n  greeting: { type: string }\nresources:\n  - file: \"{{facts.custom.root}}/etc/s3.conf\"\n    content: \"{{params.greeting}}\\n\"\n";

#[test]
fn signed_recipe_sets_from_s3_converge_and_tampered_ones_change_nothing() {
    let moto = Moto::start();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let (root, state, facts) = (w.join("root"), w.join("state"), w.join("facts.d"));
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::create_dir_all(&facts).expect("mkdir");
    std::fs::write(facts.join("t.yaml"), format!("root: {}\n", root.display())).expect("facts");

    let key = w.join("signing.key");
    let out = tend(&["recipe", "keygen", "--out", key.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let recipe = w.join("s3web.yaml");
    std::fs::write(&recipe, RECIPE).expect("write");
    let params = w.join("params.yaml");
    std::fs::write(&params, "greeting: hello from s3\n").expect("write");
    let set = w.join("recipes.json");
    let out = tend(&[
        "recipe",
        "bundle",
        recipe.to_str().expect("p"),
        "--sign",
        key.to_str().expect("p"),
        "--params",
        params.to_str().expect("p"),
        "--out",
        set.to_str().expect("p"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    moto.put("tend-recipes", "web/recipes.json", &set);

    let cfg = w.join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {}\nfacts_dir: {}\nec2: \"off\"\nsource: s3://tend-recipes/web/\ntrusted_keys: [{public}]\n",
            state.display(),
            facts.display()
        ),
    )
    .expect("config");
    let run = |secret: &str| {
        Command::new(agent_bin())
            .args(["run", "--once", "--config", cfg.to_str().expect("path")])
            .env("AWS_ACCESS_KEY_ID", &moto.key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_ENDPOINT", &moto.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", "us-east-1")
            .env("TEND_LOG", "info")
            .output()
            .expect("agent")
    };

    // A wrong secret key is refused by S3 (SigV4), and nothing happens.
    let out = run("not-the-secret");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("SignatureDoesNotMatch") || stderr(&out).to_lowercase().contains("signature"),
        "{}",
        stderr(&out)
    );
    assert!(!root.join("etc/s3.conf").exists());

    let out = run(&moto.secret);
    assert_eq!(out.status.code(), Some(2), "{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(std::fs::read_to_string(root.join("etc/s3.conf")).expect("converged"), "hello from s3\n");
    let out = run(&moto.secret);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Credentials, region and endpoint from the shared AWS files instead of
    // the environment (a named profile): the same set, nothing to change.
    let aws = w.join("aws");
    std::fs::create_dir_all(&aws).expect("mkdir");
    std::fs::write(
        aws.join("credentials"),
        format!("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n[ops]\naws_access_key_id = {}\naws_secret_access_key = {}\n", moto.key, moto.secret),
    )
    .expect("credentials");
    std::fs::write(
        aws.join("config"),
        format!("[profile ops]\nregion = us-east-1\nendpoint_url = {}\n", moto.endpoint),
    )
    .expect("config");
    let out = Command::new(agent_bin())
        .args(["run", "--once", "--config", cfg.to_str().expect("path")])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_ENDPOINT")
        .env_remove("AWS_REGION")
        .env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"))
        .env("AWS_CONFIG_FILE", aws.join("config"))
        .env("AWS_PROFILE", "ops")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("agent");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Tampered in the bucket: the content changes, the signature stays.
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&set).expect("set")).expect("json");
    doc["recipes"][0]["bundle"]["files"]["s3web.yaml"] =
        serde_json::Value::from(RECIPE.replace("{{params.greeting}}", "pwned"));
    let tampered = w.join("tampered.json");
    std::fs::File::create(&tampered).and_then(|mut f| f.write_all(doc.to_string().as_bytes())).expect("write");
    moto.put("tend-recipes", "web/recipes.json", &tampered);
    let out = run(&moto.secret);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not match its content"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(root.join("etc/s3.conf")).expect("kept"), "hello from s3\n", "nothing changed");
}

#[test]
fn an_s3_source_without_trusted_keys_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let cfg = work.path().join("agent.yaml");
    std::fs::write(&cfg, format!("state_dir: {}\nsource: s3://b/p/\n", work.path().join("s").display()))
        .expect("config");
    let out = Command::new(agent_bin())
        .args(["run", "--once", "--config", cfg.to_str().expect("path")])
        .output()
        .expect("agent");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs trusted_keys"), "{}", stderr(&out));
}

/// `download` from `s3://` (the S3 source's credentials and endpoint, here
/// moto's), verified by its checksum and then extracted by an `archive`
/// declared before it (ordered after its download implicitly): a dry-run
/// says so and changes nothing, a second run fetches nothing, a wrong
/// checksum fails without touching the file. Paths under a temporary
/// directory: nothing on this machine changes.
#[test]
fn an_s3_download_is_verified_then_extracted() {
    let moto = Moto::start();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    std::fs::create_dir_all(w.join("src/app/bin")).expect("mkdir");
    std::fs::write(w.join("src/app/bin/tool"), "#!/bin/sh\necho tool\n").expect("write");
    let tarball = w.join("app.tar.gz");
    let out =
        Command::new("tar").arg("-czf").arg(&tarball).arg("-C").arg(w.join("src")).arg("app").output().expect("tar");
    assert!(out.status.success(), "{}", stderr(&out));
    moto.put("tend-artifacts", "releases/app.tar.gz", &tarball);
    let sums = Command::new("sha256sum").arg(&tarball).output().expect("sha256sum");
    let sha = String::from_utf8_lossy(&sums.stdout).split_whitespace().next().unwrap_or_default().to_string();
    let (root, state) = (w.join("root"), w.join("state"));
    std::fs::create_dir_all(root.join("var")).and_then(|_| std::fs::create_dir_all(root.join("opt"))).expect("mkdir");
    let recipe = |sha: &str| {
        format!(
            "name: s3get\nresources:\n  - archive: {r}/opt/app\n    source: {r}/var/app.tar.gz\n    \
             strip_components: 1\n  - directory: {r}/opt/app\n  - download: {r}/var/app.tar.gz\n    \
             source: s3://tend-artifacts/releases/app.tar.gz\n    sha256: {sha}\n",
            r = root.display()
        )
    };
    let file = w.join("s3get.yaml");
    let apply = |extra: &[&str]| {
        Command::new(agent_bin())
            .arg("apply")
            .arg(&file)
            .args(["--ec2", "off", "--output", "json", "--state-dir", state.to_str().expect("path")])
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", &moto.key)
            .env("AWS_SECRET_ACCESS_KEY", &moto.secret)
            .env("AWS_ENDPOINT", &moto.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("agent")
    };
    std::fs::write(&file, recipe(&sha)).expect("write");
    let out = apply(&["--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(downloaded in this run)"));
    assert!(!root.join("var/app.tar.gz").exists() && !root.join("opt/app").exists(), "dry-run changed nothing");
    let out = apply(&[]);
    assert_eq!(out.status.code(), Some(2), "{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(std::fs::read_to_string(root.join("opt/app/bin/tool")).expect("extracted"), "#!/bin/sh\necho tool\n");
    let fetched = std::fs::metadata(root.join("var/app.tar.gz")).expect("downloaded");
    let out = apply(&[]);
    assert_eq!(out.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let again = std::fs::metadata(root.join("var/app.tar.gz")).expect("kept");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fetched),
        std::os::unix::fs::MetadataExt::ino(&again),
        "a matching file is never fetched again"
    );

    std::fs::write(&file, recipe(&"0".repeat(64))).expect("write");
    let out = apply(&[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("checksum mismatch"), "{report}");
    let kept = std::fs::metadata(root.join("var/app.tar.gz")).expect("kept");
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&kept), std::os::unix::fs::MetadataExt::ino(&fetched));
}
