//! Hostile input against a real tend-server (the release build, as shipped):
//! deep nesting, huge keys, alias bombs, oversized and slow bodies, floods
//! of anonymous requests, hostile text and a full disk. Each test asserts
//! that the server does not crash, that `/healthz` answers within 100 ms
//! throughout, that its memory stays under [`RSS_BOUND_MIB`], and that
//! nothing it acknowledged is lost. The limits are in docs/limits.md.
//!
//! Needs `target/release/tend-server`, `tend` and `tend-agent` (`.ci/run`
//! builds them first, for the packaging tests). The disk-full test runs the
//! server in its own mount namespace on an 8 MiB tmpfs (`unshare -m`): the
//! machine's own mounts never change.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most resident memory the server may reach in any test here.
const RSS_BOUND_MIB: u64 = 256;
/// The longest `/healthz` may take while the server is under attack.
const HEALTHZ_BOUND: Duration = Duration::from_millis(100);
/// `--body-timeout` of the servers here (the default is 30 s).
const BODY_TIMEOUT: u64 = 3;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

fn release(bin: &str) -> PathBuf {
    let p = repo().join("target/release").join(bin);
    assert!(p.exists(), "{} is missing: cargo build --release -p tend-server -p tend-agent -p tend-cli", p.display());
    p
}

// ------------------------------------------------------------------ the server

struct Server {
    child: Child,
    addr: String,
    data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    /// Runs the server inside this process's mount namespace (disk-full test).
    netns_holder: Option<u32>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
        let data = dir.path().join("data");
        let mut s = Server::spawn(None, &data, "127.0.0.1:0", extra);
        s._dir = Some(dir);
        s
    }

    fn spawn(holder: Option<u32>, data: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut cmd = match holder {
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.args(["-t", &pid.to_string(), "-m", "--"]).arg(release("tend-server"));
                c
            }
            None => Command::new(release("tend-server")),
        };
        cmd.args(["serve", "--listen", listen, "--body-timeout", &BODY_TIMEOUT.to_string(), "--data-dir"])
            .arg(data)
            .args(extra);
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start tend-server");
        let mut addr = String::new();
        for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
            if let Some(u) = line.expect("read").strip_prefix("tend-server listening on https://") {
                addr = u.trim().to_string();
                break;
            }
        }
        assert!(!addr.is_empty(), "the server did not start");
        Server { child, addr, data: data.to_path_buf(), _dir: None, netns_holder: holder }
    }

    /// A file of the data directory, as the server sees it.
    fn file(&self, name: &str) -> PathBuf {
        match self.netns_holder {
            Some(pid) => {
                PathBuf::from(format!("/proc/{pid}/root")).join(self.data.strip_prefix("/").expect("abs")).join(name)
            }
            None => self.data.join(name),
        }
    }

    fn admin(&self) -> String {
        std::fs::read_to_string(self.file("admin.token")).expect("admin.token").trim().to_string()
    }

    fn client(&self) -> Client {
        Client::new(&self.addr, &std::fs::read(self.file("ca.pem")).expect("ca.pem"), None)
    }

    fn tend(&self, args: &[&str]) -> Output {
        let ca = tempfile::NamedTempFile::new().expect("ca");
        std::fs::copy(self.file("ca.pem"), ca.path()).expect("copy ca");
        Command::new(release("tend"))
            .args(["--server", &format!("https://{}", self.addr), "--ca"])
            .arg(ca.path())
            .args(["--token", &self.admin()])
            .args(args)
            .output()
            .expect("tend")
    }

    fn tend_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.tend(&all);
        assert!(out.status.success(), "tend {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    fn pid(&self) -> u32 {
        // Through nsenter the server is nsenter's child (nsenter execs it: same pid).
        self.child.id()
    }

    /// (VmRSS, VmHWM) in MiB.
    fn memory_mib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
                / 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn assert_alive_and_bounded(&self) {
        let status = self.client().request("GET", "/healthz", &[], b"").0;
        assert_eq!(status, 200, "the server must still answer");
        let (rss, peak) = self.memory_mib();
        assert!(peak < RSS_BOUND_MIB, "peak RSS {peak} MiB (now {rss} MiB) is over {RSS_BOUND_MIB} MiB");
    }

    /// Measures `/healthz` every 20 ms on its own connections until dropped.
    fn watch_health(&self) -> HealthWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let worst = Arc::new(Mutex::new((Duration::ZERO, 0u32)));
        let (client, s, w) = (self.client(), stop.clone(), worst.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let t = Instant::now();
                let (status, _) = client.request("GET", "/healthz", &[], b"");
                let took = t.elapsed();
                let mut w = w.lock().expect("lock");
                w.0 = w.0.max(took);
                if status != 200 {
                    w.1 += 1;
                }
                drop(w);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        HealthWatch { stop, worst, handle: Some(handle) }
    }
}

struct HealthWatch {
    stop: Arc<AtomicBool>,
    worst: Arc<Mutex<(Duration, u32)>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl HealthWatch {
    /// Stops watching; asserts every probe answered 200 within the bound.
    fn finish(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().expect("watcher");
        }
        let (worst, failed) = *self.worst.lock().expect("lock");
        assert_eq!(failed, 0, "/healthz failed {failed} time(s)");
        assert!(worst <= HEALTHZ_BOUND, "/healthz took {worst:?} under attack (bound {HEALTHZ_BOUND:?})");
    }
}

// ------------------------------------------------------------------ a raw HTTPS client

/// HTTP/1.1 over rustls by hand, so that a test controls every byte and
/// every pause (what a hostile client does).
#[derive(Clone)]
struct Client {
    addr: String,
    config: Arc<rustls::ClientConfig>,
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

impl Client {
    fn new(addr: &str, ca_pem: &[u8], identity: Option<(&[u8], &[u8])>) -> Client {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca_pem).expect("ca")).expect("root");
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert).collect::<Result<Vec<_>, _>>().expect("cert"),
                    PrivateKeyDer::from_pem_slice(key).expect("key"),
                )
                .expect("client auth"),
            None => builder.with_no_client_auth(),
        };
        Client { addr: addr.to_string(), config: Arc::new(config) }
    }

    fn connect(&self) -> Tls {
        let tcp = TcpStream::connect(&self.addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(self.config.clone(), name).expect("tls");
        rustls::StreamOwned::new(conn, tcp)
    }

    /// Sends the head of a request (no body).
    fn head(tls: &mut Tls, method: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<()> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes())
    }

    /// Opens a connection and sends the head of a JSON POST declaring
    /// `length` bytes of body, and no body yet.
    fn start_post(&self, path: &str, length: usize, auth: Option<&str>) -> Tls {
        let mut tls = self.connect();
        let length = length.to_string();
        let mut headers = vec![("Content-Length", length.as_str()), ("Content-Type", "application/json")];
        headers.extend(auth.map(|a| ("Authorization", a)));
        Self::head(&mut tls, "POST", path, &headers).expect("write head");
        tls
    }

    /// Reads one response: (status, body). (0, "") if the connection closed first.
    fn response(tls: &mut Tls) -> (u16, String) {
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_string();
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                let len = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                while raw.len() < end + 4 + len {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => raw.extend_from_slice(&buf[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&raw[end + 4..]).to_string();
                return (status, body);
            }
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => return (0, String::new()),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        let mut tls = self.connect();
        let len = body.len().to_string();
        let mut all = headers.to_vec();
        all.extend([("Content-Length", len.as_str()), ("Content-Type", "application/json"), ("Connection", "close")]);
        if Self::head(&mut tls, method, path, &all).is_err() || tls.write_all(body).is_err() {
            return (0, String::new());
        }
        Self::response(&mut tls)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A recipe bundle of one file, as `tend recipe push` sends it.
fn bundle(text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "name": "hostile", "root": "r.yaml", "files": { "r.yaml": text } }))
        .expect("json")
}

// ------------------------------------------------------------------ the tests

#[test]
fn nesting_huge_keys_and_alias_bombs_are_refused_fast_and_located() {
    let s = Server::start(&[]);
    let c = s.client();
    let auth = bearer(&s.admin());
    let watch = s.watch_health();
    let deep_template = format!(
        "name: hostile\nresources:\n  - file: /tmp/x\n    content: \"{}x{}\"\n",
        "{{#if true}}".repeat(5_000),
        "{{/if}}".repeat(5_000)
    );
    let deep_flow = format!("name: hostile\nresources: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let deep_block: String = (0..200).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect();
    let huge_key = format!("? {}\n:\n{}", "k".repeat(100_000), "  - x\n".repeat(10_000));
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let j = i - 1;
        bomb.push_str(&format!("a{i}: &a{i} [*a{j}, *a{j}, *a{j}, *a{j}, *a{j}, *a{j}, *a{j}, *a{j}, *a{j}, *a{j}]\n"));
    }
    bomb.push_str("name: hostile\nresources: *a8\n");
    let many_aliases = format!("a: &a x\nname: hostile\nresources: [{}]\n", vec!["*a"; 2_000].join(", "));
    for (what, text, limit) in [
        ("5,000 nested template blocks", deep_template.as_str(), "template.max_block_depth"),
        ("flow sequences 100,000 deep", deep_flow.as_str(), "yaml.max_depth"),
        ("block mappings 200 deep", deep_block.as_str(), "yaml.max_depth"),
        ("a 100,000-character key above 10,000 items", huge_key.as_str(), "yaml.max_key_len"),
        ("a billion-laughs alias bomb", bomb.as_str(), "yaml.max_nodes"),
        ("2,000 aliases", many_aliases.as_str(), "yaml.max_aliases"),
    ] {
        let t = Instant::now();
        let (status, body) = c.request("POST", "/v1/recipes", &[("Authorization", &auth)], &bundle(text));
        let took = t.elapsed();
        assert_eq!(status, 422, "{what}: {body}");
        assert!(body.contains(limit), "{what}: the answer names {limit}: {body}");
        assert!(body.contains("\"line\":"), "{what}: located: {body}");
        assert!(took < Duration::from_secs(2), "{what}: took {took:?}");
    }
    // The same bounds hold for command and automation documents.
    let doc = format!("name: Deep\nkind: Command\nsteps: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let body = serde_json::to_vec(&serde_json::json!({ "file": "deep.yaml", "text": doc })).expect("json");
    let (status, answer) = c.request("POST", "/v1/documents", &[("Authorization", &auth)], &body);
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("yaml.max_depth"), "{answer}");
    watch.finish();
    s.assert_alive_and_bounded();
}

#[test]
fn bodies_are_bounded_by_role_size_and_time() {
    let s = Server::start(&["--max-anonymous", "8"]);
    let c = s.client();
    let watch = s.watch_health();

    // Declared too large: refused at once, before a byte of the body.
    let t = Instant::now();
    let refusals: Vec<(u16, String)> =
        (0..20).map(|_| Client::response(&mut c.start_post("/v1/register", 33_000_000, None))).collect();
    for (status, body) in &refusals {
        assert_eq!(*status, 413, "{body}");
        assert!(body.contains("http.max_body"), "{body}");
    }
    assert!(t.elapsed() < Duration::from_secs(5), "20 refusals took {:?}", t.elapsed());

    // A viewer's large body to an operator route: refused on the role, unread.
    let viewer = s.tend_json(&["token", "create", "--name", "viewer", "--role", "viewer"]);
    let viewer = bearer(viewer["token"].as_str().expect("token"));
    let (status, body) = Client::response(&mut c.start_post("/v1/assignments", 15_000_000, Some(&viewer)));
    assert_eq!(status, 403, "{body}");

    // Slow bodies: a declared 10 KB that trickles in is cut off at the body timeout.
    let slow: Vec<_> = (0..6)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut tls = c.start_post("/v1/register", 10_000, None);
                let t = Instant::now();
                let _ = tls.write_all(b"{\"activation_id\": \"");
                let mut answered = None;
                for _ in 0..30 {
                    if tls.write_all(b"a").is_err() {
                        break;
                    }
                    tls.sock.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
                    let (status, _) = Client::response(&mut tls);
                    if status != 0 || t.elapsed() > Duration::from_secs(BODY_TIMEOUT + 5) {
                        answered = Some((status, t.elapsed()));
                        break;
                    }
                }
                answered.unwrap_or((0, t.elapsed()))
            })
        })
        .collect();
    // Meanwhile the anonymous permits (8) are partly held: more anonymous
    // requests than permits are turned away at once with 503, not queued.
    let (status, body) = c.request("POST", "/v1/register", &[], b"{}");
    assert!(matches!(status, 400 | 422 | 503), "{status} {body}");
    for h in slow {
        let (status, took) = h.join().expect("slow client");
        assert!(matches!(status, 408 | 503), "a slow body got {status} after {took:?}");
        assert!(took < Duration::from_secs(BODY_TIMEOUT + 4), "a slow body held its connection {took:?}");
    }
    let extra: Vec<_> = (0..12)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || Client::response(&mut c.start_post("/v1/register", 100, None)).0)
        })
        .collect();
    let statuses: Vec<u16> = extra.into_iter().map(|h| h.join().expect("client")).collect();
    assert!(statuses.contains(&503), "12 held anonymous requests over 8 permits: {statuses:?}");
    assert!(statuses.iter().all(|s| matches!(s, 408 | 503)), "{statuses:?}");
    let metrics = c.request("GET", "/metrics", &[], b"").1;
    assert!(metrics.contains("tend_limit_refusals_total{limit=\"body_too_large\"}"), "{metrics}");
    assert!(metrics.contains("limit=\"anonymous_inflight\""), "{metrics}");
    watch.finish();
    s.assert_alive_and_bounded();
}

#[test]
fn anonymous_floods_do_not_grow_the_audit_log_and_errors_are_json() {
    let s = Server::start(&[]);
    let c = s.client();
    let before = s.tend_json(&["audit"]).as_array().expect("audit").len();
    let db_before = std::fs::metadata(s.file("tend.db")).map(|m| m.len()).unwrap_or(0);
    let watch = s.watch_health();
    // A real certificate request, so that refusals come from the activation check.
    let key = rcgen::KeyPair::generate().expect("key");
    let csr =
        rcgen::CertificateParams::new(Vec::<String>::new()).expect("params").serialize_request(&key).expect("csr");
    let csr = csr.pem().expect("pem");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (c, csr) = (c.clone(), csr.clone());
            std::thread::spawn(move || {
                for i in 0..150 {
                    let id = if i % 3 == 0 { "x".repeat(15_000) } else { format!("act-{t}{i}") };
                    let body = serde_json::json!({
                        "activation_id": id, "activation_code": "wrong", "csr_pem": csr, "hostname": "flood-1",
                    });
                    let (status, answer) = c.request("POST", "/v1/register", &[], body.to_string().as_bytes());
                    assert!(matches!(status, 403 | 503), "{status}: {answer}");
                    if status == 403 {
                        assert!(answer.starts_with("{\"error\":"), "{answer}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("flood");
    }
    watch.finish();
    let audit = s.tend_json(&["audit"]);
    let added = audit.as_array().expect("audit").len() - before;
    assert!(added <= 2, "600 refused registrations added {added} audit entries");
    let growth = std::fs::metadata(s.file("tend.db")).map(|m| m.len()).unwrap_or(0).saturating_sub(db_before);
    assert!(growth < 1 << 20, "the database grew {growth} bytes");
    // The CLI prints the audit log (it once panicked on long cells).
    let out = s.tend(&["audit"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Errors are JSON everywhere, axum's own rejections included.
    for (method, path, body) in
        [("POST", "/v1/register", &b"{not json"[..]), ("GET", "/v1/nope", b""), ("DELETE", "/healthz", b"")]
    {
        let (status, answer) = c.request(method, path, &[], body);
        assert!(status >= 400, "{method} {path}: {status}");
        assert!(answer.starts_with("{\"error\":"), "{method} {path}: {answer}");
    }
    s.assert_alive_and_bounded();
}

#[test]
fn hostile_text_is_refused_at_the_door() {
    let s = Server::start(&[]);
    let c = s.client();
    let auth = bearer(&s.admin());
    for hostname in ["web\u{1b}[2J", "a\nb", "\u{202e}gnp.exe", "a\0b", "-bad-", &"a".repeat(300)] {
        let body = serde_json::json!({
            "activation_id": "act-1", "activation_code": "c", "csr_pem": "-", "hostname": hostname,
        });
        let (status, answer) = c.request("POST", "/v1/register", &[], body.to_string().as_bytes());
        assert_eq!(status, 400, "{hostname:?}: {answer}");
        assert!(answer.contains("host name") && !answer.contains('\u{1b}'), "{answer}");
    }
    for tags in [serde_json::json!({"role": "a\u{1b}[31m"}), serde_json::json!({"ro\nle": "web"})] {
        let body = serde_json::json!({ "tags": tags, "limit": 1, "expires_in": 60 });
        let (status, answer) =
            c.request("POST", "/v1/activations", &[("Authorization", &auth)], body.to_string().as_bytes());
        assert_eq!(status, 400, "{answer}");
    }
    let many: serde_json::Map<String, serde_json::Value> = (0..100).map(|i| (format!("k{i}"), "v".into())).collect();
    let body = serde_json::json!({ "tags": many, "limit": 1, "expires_in": 60 });
    let (status, answer) =
        c.request("POST", "/v1/activations", &[("Authorization", &auth)], body.to_string().as_bytes());
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("node.max_tags"), "{answer}");
    for name in ["../../t", "a@b/c", ".hidden"] {
        let text = format!("name: {name:?}\nresources: []\n");
        let (status, answer) = c.request("POST", "/v1/recipes", &[("Authorization", &auth)], &bundle(&text));
        assert!(matches!(status, 400 | 422), "{name}: {status} {answer}");
    }
    s.assert_alive_and_bounded();
}

/// An 8 MiB tmpfs, mounted in a mount namespace of its own held by a
/// `sleep`: the server runs there (nsenter), and the machine's mounts never change.
struct SmallDisk {
    holder: Child,
    dir: PathBuf,
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

impl SmallDisk {
    fn new() -> SmallDisk {
        let dir = tempfile::tempdir_in("/var/tmp").expect("dir").keep();
        let script = format!("mount -t tmpfs -o size=8m tmpfs {} && exec sleep 100000", dir.display());
        let holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .spawn()
            .expect("unshare");
        let d = SmallDisk { holder, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !d.sh(&format!("mountpoint -q {}", d.dir.display())) {
            assert!(Instant::now() < deadline, "the tmpfs did not appear");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// Runs a shell command inside the namespace.
    fn sh(&self, cmd: &str) -> bool {
        Command::new("nsenter")
            .args(["-t", &self.holder.id().to_string(), "-m", "--", "sh", "-c", cmd])
            .status()
            .is_ok_and(|s| s.success())
    }
}

#[test]
fn a_full_disk_loses_nothing_acknowledged_and_recovers_alone() {
    let disk = SmallDisk::new();
    let data = disk.dir.join("data");
    let keep = ["--reports-kept", "1000"];
    let mut s = Server::spawn(Some(disk.holder.id()), &data, "127.0.0.1:0", &keep);

    // An agent of this server: its own key and certificate.
    let state = tempfile::tempdir_in("/var/tmp").expect("state");
    let act = s.tend_json(&["activation", "create", "--tags", "role=disk", "--limit", "1", "--expires", "1h"]);
    let ca = state.path().join("ca.pem");
    std::fs::copy(s.file("ca.pem"), &ca).expect("ca");
    let reg = Command::new(release("tend-agent"))
        .args(["register", "--server", &format!("https://{}", s.addr), "--ca"])
        .arg(&ca)
        .args([
            "--activation-id",
            act["id"].as_str().expect("id"),
            "--activation-code",
            act["code"].as_str().expect("code"),
        ])
        .env("TEND_STATE_DIR", state.path())
        .output()
        .expect("register");
    assert!(reg.status.success(), "{}", String::from_utf8_lossy(&reg.stderr));
    let read = |f: &str| std::fs::read(state.path().join("identity").join(f)).expect("identity");
    let ca_pem = std::fs::read(&ca).expect("ca");
    let (cert, key) = (read("cert.pem"), read("key.pem"));
    let agent = Client::new(&s.addr, &ca_pem, Some((&cert, &key)));
    let report = |i: usize| {
        serde_json::json!({
            "summary": { "changed": 1, "failed": 0 }, "started_at": format!("2026-12-02T00:00:{:02}Z", i % 60),
            "seq": i, "pad": "x".repeat(200_000),
        })
        .to_string()
    };
    let mut acked = Vec::new();
    let post = |i: usize, acked: &mut Vec<usize>| {
        let (status, body) = agent.request("POST", "/v1/agent/reports", &[], report(i).as_bytes());
        assert!(matches!(status, 204 | 500 | 503), "report {i}: {status} {body}");
        if status == 204 {
            acked.push(i);
        }
        status
    };

    // Fill the disk with a file beside the database, then report until refused.
    assert!(disk.sh(&format!("fallocate -l 5M {}/filler", disk.dir.display())));
    let mut refused = 0;
    for i in 0..60 {
        if post(i, &mut acked) != 204 {
            refused += 1;
        }
    }
    assert!(refused > 0, "the disk never filled");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = s.client().request("GET", "/metrics", &[], b"").1;
        if m.contains("tend_store_write_failing 1") {
            break;
        }
        assert!(Instant::now() < deadline, "the failing store is not shown in /metrics");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.client().request("GET", "/healthz", &[], b"").0, 200);

    // Space comes back: writes succeed again within seconds, with no restart.
    assert!(disk.sh(&format!("rm {}/filler", disk.dir.display())));
    let t = Instant::now();
    let mut recovered = None;
    let mut after = 0;
    for i in 60..100 {
        if post(i, &mut acked) == 204 {
            recovered.get_or_insert(t.elapsed());
            after += 1;
        }
        if after >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let recovered = recovered.expect("writes never succeeded again after space came back");
    assert!(recovered < Duration::from_secs(5), "recovery took {recovered:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.client().request("GET", "/metrics", &[], b"").1.contains("tend_store_write_failing 0") {
        assert!(Instant::now() < deadline, "/metrics still shows the store failing");
        std::thread::sleep(Duration::from_millis(200));
    }

    // After a crash and a restart, every acknowledged report is there.
    let _ = s.child.kill();
    let _ = s.child.wait();
    let addr = s.addr.clone();
    s = Server::spawn(Some(disk.holder.id()), &data, &addr, &keep);
    let node = s.tend_json(&["nodes", "list"]);
    let id = node[0]["id"].as_str().expect("node id").to_string();
    let reports = s.tend_json(&["reports", "--node", &id]);
    let stored = reports.as_array().expect("reports").len();
    assert_eq!(stored, acked.len(), "reports acknowledged: {acked:?}");
    drop(s);
}

#[test]
fn connections_past_the_cap_are_closed_at_once_and_the_cap_frees() {
    let s = Server::start(&["--max-connections", "6"]);
    let c = s.client();
    // Six idle TLS connections (handshake done, no request): the cap is reached.
    let held: Vec<Tls> = (0..6)
        .map(|_| {
            let mut tls = c.connect();
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock).expect("handshake");
            }
            tls
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let (status, _) = c.request("GET", "/healthz", &[], b"");
    assert_eq!(status, 0, "a seventh connection must be closed");
    assert!(t.elapsed() < Duration::from_secs(2), "closed at once, not left waiting: {:?}", t.elapsed());
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.request("GET", "/healthz", &[], b"").0 != 200 {
        assert!(Instant::now() < deadline, "the cap did not free");
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = c.request("GET", "/metrics", &[], b"").1;
    assert!(metrics.contains("limit=\"max_connections\""), "{metrics}");
    s.assert_alive_and_bounded();
}
