//! What a registry can get wrong, against real processes on 127.0.0.1: a
//! blob whose bytes do not match its digest, a blob longer than the
//! manifest says, a registry that only answers 429 (bounded retries with
//! Podman's warnings), a registry that is down; and two pulls of the same
//! image at once. Nothing partial is ever stored.

mod registry_support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use registry_support::{
    assert_failed, oci_src, seed, skopeo_json, text, Fixture, Registry, RegistryConfig, Vigil,
};

/// The file a docker-registry keeps blob `digest` in.
fn blob_file(reg: &Registry, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    reg.data
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// Nothing of a failed pull is left in the store: no image, no layer, no
/// temporary file. (The directories are read before vigil runs again: its
/// store would sweep what a dead pull left in `tmp`.)
fn assert_store_empty(fx: &Fixture, v: &Vigil) {
    for dir in ["layers", "tmp", "images"] {
        let path: &Path = &v.root().join(dir);
        let left: Vec<_> = fs::read_dir(path)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir} not empty: {left:?}");
    }
    assert_eq!(fx.ok(v, &["images", "-q"]), "");
}

#[test]
fn tampered_and_oversized_blobs_are_refused_and_nothing_is_stored() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let reg = Registry::start(&fx, "a", &RegistryConfig::default());
    let image = format!("{}/test/multi:1", reg.addr);
    seed(&fx, &oci_src("multi"), &image, false, false);
    let raw: serde_json::Value = skopeo_json(&fx, &image, true);
    let last = raw["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = blob_file(&reg, &last);
    let original = fs::read(&file).unwrap();

    // Same size, one byte changed.
    let mut tampered = original.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0xff;
    fs::write(&file, &tampered).unwrap();
    let v = Vigil::new().unwrap();
    let out = fx.run(&v, &["pull", "--tls-verify=false", &image]);
    assert_failed(&out, &format!("blob {last}: digest mismatch"));
    assert_store_empty(&fx, &v);

    // Longer than the manifest says.
    let mut longer = original.clone();
    longer.extend_from_slice(&[0u8; 512]);
    fs::write(&file, &longer).unwrap();
    let out = fx.run(&v, &["pull", "--tls-verify=false", &image]);
    assert_failed(&out, &format!("blob {last}: the registry announces"));
    assert_store_empty(&fx, &v);

    // Restored: the pull works.
    fs::write(&file, &original).unwrap();
    assert_eq!(
        fx.ok(&v, &["pull", "-q", "--tls-verify=false", &image])
            .trim()
            .len(),
        64
    );
}

#[test]
fn concurrent_pulls_of_one_image_both_succeed() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let reg = Registry::start(&fx, "a", &RegistryConfig::default());
    let image = format!("{}/test/multi:1", reg.addr);
    seed(&fx, &oci_src("multi"), &image, false, false);
    let v = Vigil::new().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            fx.vigil(&v, &["pull", "-q", "--tls-verify=false", &image])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| registry_support::e2e_support::wait_bounded(c, Duration::from_secs(120), "pull"))
        .collect();
    for out in &outs {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    assert_eq!(outs[0].stdout, outs[1].stdout);
    assert_eq!(fx.ok(&v, &["images", "-q"]).lines().count(), 1);
    assert_eq!(fs::read_dir(v.root().join("tmp")).unwrap().count(), 0);
}

/// A fake registry on 127.0.0.1 (plain HTTP): `answer` turns each request
/// line into a full HTTP response; requests are counted.
struct FaultServer {
    addr: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultServer {
    /// A registry that answers its ping and then only 429.
    fn too_many_requests() -> FaultServer {
        FaultServer::start(|line| {
            let (status, body) = if line.starts_with("GET /v2/ ") {
                ("200 OK", "{}".to_string())
            } else {
                (
                    "429 Too Many Requests",
                    r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_string(),
                )
            };
            format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nRetry-After: 0\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        })
    }

    fn start(answer: fn(&str) -> String) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut first = [0u8; 1];
                if stream.peek(&mut first).unwrap_or(0) == 0 || first[0] == 0x16 {
                    continue; // a TLS handshake: this server speaks plain HTTP only
                }
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                // Keep-alive: answer every request on this connection.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    let response = answer(&line);
                    let _ = stream.write_all(response.as_bytes());
                    if body_cut_short(&response) {
                        // A stalled download: hold the connection until the
                        // client closes it (or a minute passes), so that only
                        // the client can end the stall.
                        let _ = reader.get_ref().set_read_timeout(Some(STALL_HOLD));
                    }
                }
                let _ = reader.read(&mut [0u8; 1]);
            }
        });
        FaultServer {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

/// How long a [`FaultServer`] keeps a stalled download's connection open.
const STALL_HOLD: Duration = Duration::from_secs(60);

/// Does `response` announce more body bytes than it holds?
fn body_cut_short(response: &str) -> bool {
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .is_some_and(|n| n > body.len())
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn too_many_requests_and_a_dead_registry_are_retried_a_bounded_number_of_times() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let server = FaultServer::too_many_requests();
    let v = Vigil::new().unwrap();
    let out = fx.run(
        &v,
        &[
            "pull",
            "--tls-verify=false",
            &format!("{}/x:1", server.addr),
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    for i in 1..=3 {
        assert!(
            err.contains(&format!(
                "WARNING: Failed, retrying in 1s ... ({i}/3). Error: "
            )),
            "{err}"
        );
    }
    assert!(err.contains("toomanyrequests: slow down"), "{err}");
    assert!(!err.contains("(4/3)"));
    // 4 attempts, each: a ping and 3 manifest requests (2 retries of the 429).
    assert_eq!(server.requests.load(Ordering::SeqCst), 16);

    let dead = registry_support::free_port();
    let out = fx.run(
        &v,
        &[
            "pull",
            "--tls-verify=false",
            &format!("127.0.0.1:{dead}/x:1"),
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(err.contains("(3/3)"), "{err}");
    assert!(
        err.contains(&format!(
            "pinging container registry 127.0.0.1:{dead}: Get \"http://127.0.0.1:{dead}/v2/\""
        )),
        "{err}"
    );
    assert_store_empty(&fx, &v);
}

fn json_response(content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn ping_or(line: &str, other: impl FnOnce(&str) -> String) -> String {
    if line.starts_with("GET /v2/ ") {
        json_response("application/json", "{}")
    } else {
        other(line)
    }
}

fn layer_list(n: usize) -> String {
    let layer = format!(
        r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}","size":1}}"#,
        "b".repeat(64)
    );
    vec![layer; n].join(",")
}

fn manifest_with(layers: usize, media_type: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":2}},"layers":[{}]}}"#,
        "a".repeat(64),
        layer_list(layers)
    )
}

#[test]
fn hostile_registries_are_refused_with_clear_errors() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let v = Vigil::new().unwrap();
    let pull = |server: &FaultServer| {
        let out = fx.run(
            &v,
            &[
                "pull",
                "--tls-verify=false",
                &format!("{}/x:1", server.addr),
            ],
        );
        assert_eq!(out.status.code(), Some(125));
        text(&out.stderr)
    };

    // A redirect loop: stopped after 10 hops.
    let server = FaultServer::start(|line| {
        ping_or(line, |line| {
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {path}\r\nContent-Length: 0\r\n\r\n"
            )
        })
    });
    let err = pull(&server);
    assert!(err.contains("stopped after 10 redirects"), "{err}");
    assert!(server.requests.load(Ordering::SeqCst) <= 12);

    // A manifest announced over 4 MiB.
    let server = FaultServer::start(|line| {
        ping_or(line, |_| {
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 5242880\r\n\r\n{".to_string()
        })
    });
    let err = pull(&server);
    assert!(
        err.contains("manifest is larger than 4194304 bytes"),
        "{err}"
    );

    // More than 1000 layers.
    let server = FaultServer::start(|line| {
        ping_or(line, |_| {
            json_response(
                "application/vnd.oci.image.manifest.v1+json",
                &manifest_with(1001, "application/vnd.oci.image.manifest.v1+json"),
            )
        })
    });
    let err = pull(&server);
    assert!(
        err.contains("image has 1001 layers, more than the 1000 allowed"),
        "{err}"
    );

    // Served as an OCI manifest, but the document says Docker's.
    let server = FaultServer::start(|line| {
        ping_or(line, |_| {
            json_response(
                "application/vnd.oci.image.manifest.v1+json",
                &manifest_with(1, "application/vnd.docker.distribution.manifest.v2+json"),
            )
        })
    });
    let err = pull(&server);
    assert!(err.contains("manifest media type mismatch"), "{err}");

    // A config larger than its descriptor says.
    let server = FaultServer::start(|line| {
        ping_or(line, |line| {
            if line.contains("/manifests/") {
                json_response(
                    "application/vnd.oci.image.manifest.v1+json",
                    &manifest_with(1, "application/vnd.oci.image.manifest.v1+json"),
                )
            } else {
                json_response("application/octet-stream", "{\"architecture\":\"amd64\"}")
            }
        })
    });
    let err = pull(&server);
    assert!(err.contains("size mismatch"), "{err}");
    assert_store_empty(&fx, &v);
}

/// A registry that serves a one-layer image but stalls in the layer: the
/// headers announce 1 MiB, 4 KiB follow, then nothing for a minute
/// ([`STALL_HOLD`]) or until the client closes the connection.
fn stalled_layer(line: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let layer = "b".repeat(64);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        "c".repeat(64)
    );
    let config_digest = format!("{:x}", Sha256::digest(config.as_bytes()));
    ping_or(line, |line| {
        if line.contains("/manifests/") {
            json_response(
                "application/vnd.oci.image.manifest.v1+json",
                &format!(
                    r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{layer}","size":1048576}}]}}"#,
                    config.len()
                ),
            )
        } else if line.contains(&config_digest) {
            json_response("application/octet-stream", &config)
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n{}",
                "x".repeat(4096)
            )
        }
    })
}

/// `vigil ARGS` (with `--tls-verify=false` after the command), output piped.
fn spawn_vigil(fx: &Fixture, v: &Vigil, command: &str, args: &[&str]) -> std::process::Child {
    let mut all = vec![command, "--tls-verify=false"];
    all.extend_from_slice(args);
    fx.vigil(v, &all)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (≤ 60 s) until a pull directory under `<store>/tmp` other than
/// those in `known` holds a layer being downloaded; returns that directory.
fn wait_download(v: &Vigil, known: &[PathBuf]) -> PathBuf {
    let tmp = v.root().join("tmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = fs::read_dir(&tmp)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| !known.contains(p) && p.join("layer-0").exists());
        if let Some(dir) = found {
            return dir;
        }
        assert!(Instant::now() < deadline, "the layer download never began");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to `child` and waits (≤ 60 s) for its end, which must be
/// by that signal; returns how long that took.
fn signal_and_expect_death(child: std::process::Child, signal: i32, what: &str) -> Duration {
    use std::os::unix::process::ExitStatusExt;
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child, which has not been reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let out = registry_support::e2e_support::wait_bounded(child, Duration::from_secs(60), what);
    assert_eq!(
        out.status.signal(),
        Some(signal),
        "{what}: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    sent.elapsed()
}

/// A ^C ends a pull stalled in a download at once: it closes the
/// connection rather than wait out the read timeout (120 s) or the
/// registry's [`STALL_HOLD`]. The bound leaves room for a loaded machine.
fn assert_prompt(took: Duration, what: &str) {
    assert!(
        took < Duration::from_secs(15),
        "{what} took {took:?} to end after the signal: it waited for the stalled registry"
    );
}

/// A fixture, a vigil, and the [`stalled_layer`] registry with the name of
/// its image.
fn stalled_pull_setup() -> (Fixture, Vigil, FaultServer, String) {
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let v = Vigil::new().unwrap();
    let server = FaultServer::start(stalled_layer);
    let image = format!("{}/x:1", server.addr);
    (fx, v, server, image)
}

/// SIGINT while a layer downloads: the pull stops, deletes what it had
/// downloaded, and vigil ends by the signal, as Podman (killed by it) ends.
#[test]
fn an_interrupted_pull_leaves_nothing_and_ends_by_the_signal() {
    crate::require_registry!();
    let (fx, v, _server, image) = stalled_pull_setup();
    let child = spawn_vigil(&fx, &v, "pull", &[&image]);
    wait_download(&v, &[]);
    let took = signal_and_expect_death(child, libc::SIGINT, "pull");
    assert_prompt(took, "pull");
    assert_store_empty(&fx, &v);
}

/// The same for the pull `vigil run` makes of an image it does not have:
/// no container is made and nothing is left in the store.
#[test]
fn an_interrupted_implicit_pull_by_run_leaves_nothing_and_ends_by_the_signal() {
    crate::require_registry!();
    let (fx, v, _server, image) = stalled_pull_setup();
    let child = spawn_vigil(&fx, &v, "run", &["--rm", &image, "true"]);
    wait_download(&v, &[]);
    let took = signal_and_expect_death(child, libc::SIGINT, "run");
    assert_prompt(took, "run");
    assert_store_empty(&fx, &v);
    assert_eq!(fx.ok(&v, &["ps", "-a", "-q"]), "");
}

/// A pull killed outright cannot clean up: the next command that opens the
/// store removes its directory, but not that of a pull still running.
#[test]
fn a_killed_pulls_directory_is_swept_and_a_running_ones_is_not() {
    crate::require_registry!();
    let (fx, v, _server, image) = stalled_pull_setup();

    let killed = spawn_vigil(&fx, &v, "pull", &[&image]);
    let dead_dir = wait_download(&v, &[]);
    signal_and_expect_death(killed, libc::SIGKILL, "killed pull");
    assert!(
        dead_dir.join("layer-0").exists(),
        "SIGKILL left the download"
    );

    // The fake registry serves one connection at a time: this pull begins
    // once the killed one's connection is closed.
    let mut running = spawn_vigil(&fx, &v, "create", &[&image, "true"]);
    let live_dir = wait_download(&v, std::slice::from_ref(&dead_dir));
    assert_eq!(fx.ok(&v, &["images", "-q"]), "");
    assert!(!dead_dir.exists(), "the killed pull's directory stayed");
    assert!(
        running.try_wait().unwrap().is_none(),
        "the running pull ended before the sweep could be checked"
    );
    assert!(
        live_dir.join("layer-0").exists(),
        "a running pull's directory was swept"
    );
    let took = signal_and_expect_death(running, libc::SIGTERM, "create");
    assert_prompt(took, "create");
    assert_store_empty(&fx, &v);
    assert_eq!(fx.ok(&v, &["ps", "-a", "-q"]), "");
}
