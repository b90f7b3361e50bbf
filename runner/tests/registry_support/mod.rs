//! Shared by the registry_*.rs tests: real `docker-registry` processes
//! (Debian's Distribution 2.8) on 127.0.0.1 with free ports, a test CA and
//! server certificate made with openssl, htpasswd users, registries.conf and
//! auth files in a private directory, images seeded with skopeo. Every
//! process a fixture starts is killed (by its pid) when it is dropped.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../e2e_support/mod.rs"]
pub mod e2e_support;

#[allow(unused_imports)]
pub use e2e_support::{assert_failed, run_bounded, test_images, text, which, Vigil};

/// Why the registry tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    for tool in ["docker-registry", "skopeo", "openssl", "htpasswd"] {
        if which(tool).is_none() {
            return Some(format!("{tool} not installed"));
        }
    }
    if let Err(e) = e2e_support::vigil_binaries() {
        return Some(e);
    }
    if let Err(e) = test_images() {
        return Some(e);
    }
    None
}

/// Returns from the calling test, saying why, when the registry tests
/// cannot run here ([`unavailable`]).
#[macro_export]
macro_rules! require_registry {
    () => {
        if let Some(why) = $crate::registry_support::unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// `oci:LAYOUT:TAG` of the test images' OCI layout, a source for [`seed`].
pub fn oci_src(tag: &str) -> String {
    format!("oci:{}:{tag}", oci_layout().display())
}

/// A port nobody listens on right now (the kernel picks it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn must(cmd: &mut Command, what: &str) -> Output {
    let out = run_bounded(cmd, b"", Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// The test's private directory with a CA, a server certificate for
/// 127.0.0.1, an htpasswd file, and registries.conf / auth.json paths.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("vigil-registry-")
            .tempdir()
            .expect("tempdir");
        Fixture { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// CA + server certificate (IP SAN 127.0.0.1), as the spec's recipe;
    /// the CA also goes into `certs/ca.crt` for `--cert-dir`.
    pub fn make_tls(&self) {
        let d = self.dir.path();
        let sh = |args: &[&str]| {
            must(
                Command::new("openssl")
                    .current_dir(d)
                    .args(args)
                    .stdin(Stdio::null()),
                "openssl",
            );
        };
        sh(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "30",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=vigil test CA",
        ]);
        sh(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        fs::write(
            d.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        sh(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "san.ext",
        ]);
        fs::create_dir_all(d.join("certs")).unwrap();
        fs::copy(d.join("ca.crt"), d.join("certs/ca.crt")).unwrap();
    }

    /// An htpasswd file with `user`:`password` (bcrypt cost 4; the password
    /// goes through stdin, never argv).
    pub fn add_user(&self, user: &str, password: &str) {
        let out = run_bounded(
            Command::new("htpasswd").args(["-niB", "-C", "4", user]),
            format!("{password}\n").as_bytes(),
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "htpasswd: {}", text(&out.stderr));
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("htpasswd"))
            .unwrap();
        f.write_all(text(&out.stdout).trim().as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }

    /// `vigil` with this fixture's registries.conf, auth file and an empty
    /// drop-in directory (nothing from /etc or the real $HOME).
    pub fn vigil(&self, v: &Vigil, args: &[&str]) -> Command {
        let mut c = v.command(args);
        fs::create_dir_all(self.path("conf.d")).unwrap();
        fs::create_dir_all(self.path("home")).unwrap();
        c.env("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf"))
            .env("VIGIL_REGISTRIES_CONF_DIR", self.path("conf.d"))
            .env("REGISTRY_AUTH_FILE", self.path("auth.json"))
            .env("HOME", self.path("home"))
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY");
        c
    }

    pub fn run(&self, v: &Vigil, args: &[&str]) -> Output {
        run_bounded(&mut self.vigil(v, args), b"", Duration::from_secs(180))
    }

    pub fn run_input(&self, v: &Vigil, args: &[&str], stdin: &[u8]) -> Output {
        run_bounded(&mut self.vigil(v, args), stdin, Duration::from_secs(180))
    }

    /// Runs vigil, asserting success; stdout.
    pub fn ok(&self, v: &Vigil, args: &[&str]) -> String {
        e2e_support::ok_stdout(&self.run(v, args), args)
    }

    /// skopeo's auth file for [`seed`]: `user`/`password` for `addr`.
    pub fn write_seed_auth(&self, addr: &str, user: &str, password: &str) {
        let basic = base64_of(&format!("{user}:{password}"));
        fs::write(
            self.path("seed-auth.json"),
            format!("{{\"auths\":{{\"{addr}\":{{\"auth\":\"{basic}\"}}}}}}"),
        )
        .unwrap();
    }

    /// `vigil login --cert-dir CERTS -u USER --password-stdin ADDR` with
    /// `password` on stdin.
    pub fn login(&self, v: &Vigil, certs: &str, user: &str, addr: &str, password: &[u8]) -> Output {
        self.run_input(
            v,
            &[
                "login",
                "--cert-dir",
                certs,
                "-u",
                user,
                "--password-stdin",
                addr,
            ],
            password,
        )
    }

    pub fn write_registries_conf(&self, text: &str) {
        fs::write(self.path("registries.conf"), text).unwrap();
    }
}

/// How to configure one registry process.
#[derive(Default, Clone)]
pub struct RegistryConfig {
    pub tls: bool,
    pub htpasswd: bool,
    /// Token auth with this realm (`http://127.0.0.1:PORT/token`); the
    /// signing certificate is the fixture's `tok.crt`.
    pub token_realm: Option<String>,
}

/// A running docker-registry.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl Registry {
    /// Starts a registry with its data and log under the fixture's
    /// directory; waits (bounded) until it accepts connections.
    pub fn start(fx: &Fixture, name: &str, cfg: &RegistryConfig) -> Registry {
        let d = fx.dir.path();
        for _ in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let data = d.join(format!("data-{name}"));
            let log = d.join(format!("{name}.log"));
            let mut yaml = format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                data.display()
            );
            if cfg.tls {
                yaml.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    d.join("server.crt").display(),
                    d.join("server.key").display()
                ));
            }
            if cfg.htpasswd {
                yaml.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: vigil-test\n    path: {}\n",
                    d.join("htpasswd").display()
                ));
            }
            if let Some(realm) = &cfg.token_realm {
                yaml.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: vigil-test-registry\n    \
                     issuer: vigil-test-issuer\n    rootcertbundle: {}\n",
                    d.join("tok.crt").display()
                ));
            }
            let conf = d.join(format!("{name}.yml"));
            fs::write(&conf, yaml).unwrap();
            let logf = fs::File::create(&log).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(logf.try_clone().unwrap())
                .stderr(logf)
                .spawn()
                .expect("start docker-registry");
            let mut reg = Registry {
                child,
                addr,
                data,
                log,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if TcpStream::connect(&reg.addr).is_ok() {
                    return reg;
                }
                if let Ok(Some(_)) = reg.child.try_wait() {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = reg.child.kill();
            let _ = reg.child.wait();
        }
        panic!("docker-registry did not start");
    }

    /// The registry's access log lines (`127.0.0.1 - ...`).
    pub fn access_log(&self) -> String {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("127.0.0.1 - "))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// Stops it now (the same as dropping it).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Base64, as auth files hold `user:password`.
pub fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A TLS registry (the fixture's CA) with Basic auth for `user`/`password`,
/// holding the test image as `tests/busybox:1` (seeded by skopeo with its
/// own auth file, `seed-auth.json`).
pub struct TlsBasicRegistry {
    pub registry: Registry,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `ADDR/tests/busybox:1`.
    pub image: String,
    /// The `--cert-dir` with the CA.
    pub certs: String,
}

impl TlsBasicRegistry {
    pub fn start(fx: &Fixture, user: &str, password: &str) -> TlsBasicRegistry {
        fx.make_tls();
        fx.add_user(user, password);
        let registry = Registry::start(
            fx,
            "tls",
            &RegistryConfig {
                tls: true,
                htpasswd: true,
                ..Default::default()
            },
        );
        let addr = registry.addr.clone();
        fx.write_seed_auth(&addr, user, password);
        let image = format!("{addr}/tests/busybox:1");
        seed(fx, &oci_src("multi"), &image, true, false);
        TlsBasicRegistry {
            registry,
            addr,
            image,
            certs: fx.path("certs").display().to_string(),
        }
    }
}

/// Podman (its own configuration, vfs) pulls `image` from a plain-HTTP
/// registry and gets the image `id`; nothing to check where Podman cannot
/// run.
pub fn assert_podman_pulls(image: &str, id: &str) {
    if let Ok(podman) = e2e_support::Podman::new("vfs") {
        let out = podman.ok(&["pull", "-q", "--tls-verify=false", image]);
        assert_eq!(out.trim(), id, "podman pull {image}");
    }
}

/// `skopeo copy [--all] SRC docker://DEST` to a plain-HTTP registry, or a
/// TLS one with the fixture's certs and auth file.
pub fn seed(fx: &Fixture, src: &str, dest: &str, tls: bool, all: bool) {
    let mut c = Command::new("skopeo");
    c.arg("copy");
    if all {
        c.arg("--all");
    }
    if tls {
        c.arg("--dest-cert-dir").arg(fx.path("certs"));
        c.arg("--dest-authfile").arg(fx.path("seed-auth.json"));
    } else {
        c.arg("--dest-tls-verify=false");
    }
    c.arg(src)
        .arg(format!("docker://{dest}"))
        .stdin(Stdio::null());
    must(&mut c, &format!("skopeo copy {src} {dest}"));
}

/// `skopeo inspect` JSON of a plain-HTTP (or TLS with certs) image.
pub fn skopeo_inspect(fx: &Fixture, image: &str, raw: bool, tls: bool) -> String {
    let mut c = Command::new("skopeo");
    c.arg("inspect");
    if raw {
        c.arg("--raw");
    }
    if tls {
        c.arg("--cert-dir").arg(fx.path("certs"));
        c.arg("--authfile").arg(fx.path("seed-auth.json"));
    } else {
        c.arg("--tls-verify=false");
    }
    c.arg(format!("docker://{image}"));
    text(&must(&mut c, "skopeo inspect").stdout)
}

/// [`skopeo_inspect`] of a plain-HTTP registry's image, parsed: the raw
/// manifest (`raw`) or skopeo's summary.
pub fn skopeo_json(fx: &Fixture, image: &str, raw: bool) -> serde_json::Value {
    serde_json::from_str(&skopeo_inspect(fx, image, raw, false)).expect("skopeo inspect JSON")
}

/// The OCI layout of the test images (`base`, `multi`).
pub fn oci_layout() -> PathBuf {
    test_images().expect("test images").join("oci")
}

/// Copies the test OCI layout into `dir` and adds `multiarch`: an index
/// with `base` for linux/amd64 and a copy of it whose config says
/// linux/arm64/v8 (a distinct image ID). Returns (layout dir, amd64 image
/// id, arm64 image id).
pub fn make_multiarch(dir: &Path) -> (PathBuf, String, String) {
    use sha2::{Digest, Sha256};
    let layout = dir.join("oci-multiarch");
    must(
        Command::new("cp").arg("-a").arg(oci_layout()).arg(&layout),
        "cp layout",
    );
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = format!("{:x}", Sha256::digest(bytes));
        fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let base = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .is_some_and(|n| n == "base" || n.ends_with(":base"))
        })
        .expect("base in the layout")
        .clone();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(blob(base["digest"].as_str().unwrap())).unwrap()).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(blob(&config_digest)).unwrap()).unwrap();
    config["architecture"] = "arm64".into();
    config["variant"] = "v8".into();
    let (arm_config, arm_config_size) = put(&serde_json::to_vec(&config).unwrap());
    let mut arm_manifest = manifest.clone();
    arm_manifest["config"]["digest"] = arm_config.clone().into();
    arm_manifest["config"]["size"] = arm_config_size.into();
    let (arm_digest, arm_size) = put(&serde_json::to_vec(&arm_manifest).unwrap());
    let multi = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": base["digest"],
             "size": base["size"], "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_digest,
             "size": arm_size, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}
        ]
    });
    let (idx_digest, idx_size) = put(&serde_json::to_vec(&multi).unwrap());
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": idx_digest, "size": idx_size,
            "annotations": {"org.opencontainers.image.ref.name": "multiarch"}
        }));
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    (
        layout,
        config_digest.trim_start_matches("sha256:").to_string(),
        arm_config.trim_start_matches("sha256:").to_string(),
    )
}

/// A small Bearer token server (Distribution's token auth) on 127.0.0.1:
/// `GET /token?account=&scope=&service=` answers a JWT signed RS256 with
/// the fixture's `tok.key` (openssl), with the `x5c` header naming
/// `tok.crt`, which the registry trusts. Policy: `alice` with her password
/// gets every action asked for; anonymous requests get `pull` on
/// `public/*` only; a wrong password gets 401. Every query string is kept
/// for the test to inspect. Stopped (thread joined) on drop.
pub struct TokenServer {
    pub addr: String,
    pub queries: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    pub fn start(fx: &Fixture, password: &str) -> TokenServer {
        use base64::Engine as _;
        use std::io::{BufRead, BufReader};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let d = fx.dir.path().to_path_buf();
        must(
            Command::new("openssl")
                .current_dir(&d)
                .stdin(Stdio::null())
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-sha256",
                    "-days",
                    "30",
                    "-keyout",
                    "tok.key",
                    "-out",
                    "tok.crt",
                    "-subj",
                    "/CN=vigil token signer",
                ]),
            "openssl token cert",
        );
        let der = must(
            Command::new("openssl")
                .current_dir(&d)
                .args(["x509", "-in", "tok.crt", "-outform", "DER"])
                .stdin(Stdio::null()),
            "openssl der",
        )
        .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"))
        );
        let (q, s) = (queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
            // Bounded: at most 10 minutes of serving.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let mut authorization = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            authorization = Some(v.trim().to_string());
                        }
                    }
                }
                let query = request
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.split_once('?'))
                    .map(|(_, q)| q.to_string())
                    .unwrap_or_default();
                q.lock().unwrap().push(query.clone());
                let mut stream = stream;
                let user = match authorization.as_deref() {
                    None => None,
                    Some(a) if a == good => Some("alice"),
                    Some(_) => {
                        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid username/password"}]}"#;
                        let _ = write!(stream, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                        continue;
                    }
                };
                let mut access = Vec::new();
                for pair in query.split('&') {
                    let Some(scope) = pair.strip_prefix("scope=") else {
                        continue;
                    };
                    let scope = percent_decode(scope);
                    let parts: Vec<&str> = scope.splitn(3, ':').collect();
                    if parts.len() != 3 {
                        continue;
                    }
                    let actions: Vec<&str> = parts[2]
                        .split(',')
                        .filter(|a| {
                            user.is_some() || (*a == "pull" && parts[1].starts_with("public/"))
                        })
                        .collect();
                    access.push(
                        serde_json::json!({"type": parts[0], "name": parts[1], "actions": actions}),
                    );
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
                let claims = serde_json::json!({
                    "iss": "vigil-test-issuer", "sub": user.unwrap_or(""), "aud": "vigil-test-registry",
                    "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", q.lock().unwrap().len()),
                    "access": access,
                });
                let signing_input = format!(
                    "{}.{}",
                    b64(header.to_string().as_bytes()),
                    b64(claims.to_string().as_bytes())
                );
                let signature = run_bounded(
                    Command::new("openssl")
                        .current_dir(&d)
                        .args(["dgst", "-sha256", "-sign", "tok.key"]),
                    signing_input.as_bytes(),
                    Duration::from_secs(30),
                )
                .stdout;
                let token = format!("{signing_input}.{}", b64(&signature));
                let body =
                    serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                        .to_string();
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        });
        TokenServer {
            addr,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
