//! `vigil load`, `images`, `image inspect`, `tag` and `rmi` against the real
//! binary, with images built in memory (every compression, every input
//! format, hostile manifests) and, when `scripts/make-test-images` has been
//! run, images made by umoci, skopeo and podman.

mod image_support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use image_support::Tar;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

// ---- Running vigil ----------------------------------------------------------

fn vigil_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("VIGIL_BINARY") {
        return PathBuf::from(path);
    }
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/vigil");
    if release.is_file() {
        return release;
    }
    PathBuf::from(env!("CARGO_BIN_EXE_vigil"))
}

struct Vigil {
    root: tempfile::TempDir,
}

impl Vigil {
    fn new() -> Vigil {
        Vigil {
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn store(&self) -> &Path {
        self.root.path()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(vigil_binary());
        cmd.arg("--root")
            .arg(self.root.path())
            .arg("--runroot")
            .arg(self.root.path().join("run"))
            .args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running vigil")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vigil {args:?} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command that must fail; returns its exit code and stderr.
    fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "vigil {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn inspect(&self, name: &str) -> Value {
        let out = self.ok(&["image", "inspect", name]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    }

    /// Layer directories of `name`, lowest first.
    fn layers(&self, name: &str) -> Vec<PathBuf> {
        let lower = self.inspect(name)["GraphDriver"]["Data"]["LowerDir"]
            .as_str()
            .unwrap()
            .to_string();
        let mut dirs: Vec<PathBuf> = lower.split(':').map(PathBuf::from).collect();
        dirs.reverse();
        dirs
    }

    /// Everything stored (layers, blobs, records), for "nothing half-imported" checks.
    fn stored(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["layers", "blobs/sha256", "images"] {
            if let Ok(rd) = fs::read_dir(self.store().join(sub)) {
                out.extend(
                    rd.map(|e| format!("{sub}/{}", e.unwrap().file_name().to_string_lossy())),
                );
            }
        }
        out.sort();
        out
    }
}

// ---- Building images in memory ------------------------------------------------

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Clone, Copy, Debug)]
enum Comp {
    Plain,
    Gzip,
    /// Two concatenated gzip members plus trailing zero bytes.
    MultiGzip,
    /// A skippable frame, then two zstd frames.
    Zstd,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn compress(tar: &[u8], comp: Comp) -> Vec<u8> {
    match comp {
        Comp::Plain => tar.to_vec(),
        Comp::Gzip => gzip(tar),
        Comp::MultiGzip => {
            let mid = tar.len() / 2;
            let mut out = gzip(&tar[..mid]);
            out.extend(gzip(&tar[mid..]));
            out.extend([0u8; 64]);
            out
        }
        Comp::Zstd => {
            let mid = tar.len() / 2;
            let mut out = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
            out.extend(zstd::encode_all(&tar[..mid], 3).unwrap());
            out.extend(zstd::encode_all(&tar[mid..], 3).unwrap());
            out
        }
    }
}

fn layer_media_type(comp: Comp) -> &'static str {
    match comp {
        Comp::Plain => "application/vnd.oci.image.layer.v1.tar",
        Comp::Gzip | Comp::MultiGzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

fn config_json(diff_ids: &[String], arch: &str) -> Value {
    json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin", "FOO=bar"],
            "Entrypoint": ["/bin/sh"],
            "Cmd": ["-c", "echo hi"],
            "WorkingDir": "/work",
            "User": "1000:1000",
            "ExposedPorts": {"80/tcp": {}},
            "Labels": {"a": "b"},
            "StopSignal": "SIGINT"
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"}]
    })
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An OCI image layout written to a directory.
struct Layout {
    dir: tempfile::TempDir,
    index: Vec<Value>,
}

impl Layout {
    fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Layout {
            dir,
            index: Vec::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Stores a blob; returns its descriptor.
    fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = sha(bytes);
        fs::write(self.blob_path(&digest), bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// Stores an image; returns its manifest descriptor (not yet in the index).
    fn image_with(
        &self,
        layers: &[(Vec<u8>, Comp)],
        arch: &str,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> Value {
        let diff_ids: Vec<String> = layers.iter().map(|(tar, _)| sha(tar)).collect();
        let mut config = config_json(&diff_ids, arch);
        let layer_descs: Vec<Value> = layers
            .iter()
            .map(|(tar, comp)| self.blob(layer_media_type(*comp), &compress(tar, *comp)))
            .collect();
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "layers": layer_descs,
        });
        edit(&mut config, &mut manifest);
        let config_desc = self.blob(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&config).unwrap(),
        );
        if manifest.get("config").is_none() {
            manifest["config"] = config_desc;
        }
        self.blob(
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&manifest).unwrap(),
        )
    }

    fn image(&self, layers: &[(Vec<u8>, Comp)]) -> Value {
        self.image_with(layers, host_arch(), |_, _| {})
    }

    fn add(&mut self, mut desc: Value, name: Option<&str>) -> &mut Self {
        if let Some(name) = name {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        }
        self.index.push(desc);
        self
    }

    fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": self.index});
        fs::write(
            self.path().join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    fn load(&self, vigil: &Vigil) -> String {
        self.write_index();
        vigil.ok(&["load", "--layout", self.path().to_str().unwrap()])
    }

    fn load_fails(&self, vigil: &Vigil) -> String {
        self.write_index();
        let (code, stderr) = vigil.fails(&["load", "--layout", self.path().to_str().unwrap()]);
        assert_eq!(code, 125, "{stderr}");
        stderr
    }

    /// The layout as an oci-archive (tar of the directory).
    fn archive(&self) -> Vec<u8> {
        self.write_index();
        let mut t = Tar::new();
        t.file(
            "oci-layout",
            &fs::read(self.path().join("oci-layout")).unwrap(),
        );
        t.file(
            "index.json",
            &fs::read(self.path().join("index.json")).unwrap(),
        );
        t.dir("blobs/").dir("blobs/sha256/");
        for entry in fs::read_dir(self.path().join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let name = format!("blobs/sha256/{}", entry.file_name().to_string_lossy());
            t.file(&name, &fs::read(entry.path()).unwrap());
        }
        t.finish()
    }
}

fn layer1() -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("bin/")
        .file_with("bin/tool", b"#!/bin/sh\necho tool\n", |h| h.mode = 0o755)
        .dir("etc/")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .dir("dir/")
        .file("dir/gone", b"lower")
        .dir("dir/sub/")
        .file("dir/sub/x", b"x")
        .file_with("owned", b"mine", |h| {
            h.uid = 1000;
            h.gid = 1000;
            h.mode = 0o4750;
        })
        .symlink("link", "/etc/passwd");
    t.finish()
}

fn layer2() -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("dir/")
        .file("dir/.wh.gone", b"")
        .file("dir/sub/.wh..wh..opq", b"")
        .file("dir/sub/y", b"y")
        .file("new", b"layer2");
    t.finish()
}

fn layer3() -> Vec<u8> {
    let mut t = Tar::new();
    t.hardlink("bin/tool-link", "bin/tool").file("l3", b"three");
    t.finish()
}

fn layer4() -> Vec<u8> {
    let mut t = Tar::new();
    t.file("l4", b"four");
    // Extra zero blocks after the end of the archive must be hashed too.
    let mut tar = t.finish();
    tar.extend([0u8; 2048]);
    tar
}

fn is_whiteout(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .map(|m| m.file_type().is_char_device() && m.rdev() == 0)
        .unwrap_or(false)
}

fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C strings and buffer.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

/// Checks the unpacked layers of the four-layer test image.
fn check_four_layers(dirs: &[PathBuf]) {
    assert_eq!(dirs.len(), 4);
    let owned = fs::symlink_metadata(dirs[0].join("owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1000, 1000, 0o4750)
    );
    assert_eq!(
        fs::read_link(dirs[0].join("link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert!(is_whiteout(&dirs[1].join("dir/gone")));
    assert_eq!(
        getxattr(&dirs[1].join("dir/sub"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(fs::read_to_string(dirs[1].join("dir/sub/y")).unwrap(), "y");
    // Cross-layer hard link: the target was copied up into layer 3.
    let link = fs::symlink_metadata(dirs[2].join("bin/tool-link")).unwrap();
    assert_eq!(link.nlink(), 2);
    assert_eq!(
        fs::read_to_string(dirs[2].join("bin/tool")).unwrap(),
        "#!/bin/sh\necho tool\n"
    );
    assert_eq!(fs::read_to_string(dirs[3].join("l4")).unwrap(), "four");
}

fn four_layers(comps: [Comp; 4]) -> Vec<(Vec<u8>, Comp)> {
    vec![
        (layer1(), comps[0]),
        (layer2(), comps[1]),
        (layer3(), comps[2]),
        (layer4(), comps[3]),
    ]
}

// ---- Loading: formats and compressions ----------------------------------------

#[test]
fn layout_with_gzip_multigzip_zstd_and_plain_layers() {
    let vigil = Vigil::new();
    let mut layout = Layout::new();
    let desc = layout.image(&four_layers([
        Comp::Gzip,
        Comp::MultiGzip,
        Comp::Zstd,
        Comp::Plain,
    ]));
    layout.add(desc, Some("localhost/test:mixed"));
    let out = layout.load(&vigil);
    assert_eq!(out, "Loaded image: localhost/test:mixed\n");
    check_four_layers(&vigil.layers("test:mixed"));

    let images = vigil.ok(&["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{images}");
    for col in ["TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(lines[0].contains(col), "{images}");
    }
    assert_eq!(lines.len(), 2, "{images}");
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&cols[..2], &["localhost/test", "mixed"], "{images}");
    assert_eq!(cols[2].len(), 12);
    assert!(lines[1].contains("ago"), "{images}");
}

#[test]
fn each_compression_alone_unpacks_the_same() {
    for comp in [Comp::Plain, Comp::Gzip, Comp::MultiGzip, Comp::Zstd] {
        let vigil = Vigil::new();
        let mut layout = Layout::new();
        let desc = layout.image(&four_layers([comp; 4]));
        layout.add(desc, Some("img"));
        layout.load(&vigil);
        check_four_layers(&vigil.layers("img"));
    }
}

#[test]
fn inspect_reports_config_rootfs_and_names() {
    let vigil = Vigil::new();
    let mut layout = Layout::new();
    let layers = vec![(layer1(), Comp::Gzip), (layer2(), Comp::Gzip)];
    let desc = layout.image(&layers);
    let manifest_digest = desc["digest"].as_str().unwrap().to_string();
    layout.add(desc, Some("localhost/test:one"));
    layout.load(&vigil);
    let v = vigil.inspect("localhost/test:one");
    assert_eq!(v["Id"].as_str().unwrap().len(), 64);
    assert_eq!(v["Digest"], json!(manifest_digest));
    assert_eq!(v["RepoTags"], json!(["localhost/test:one"]));
    assert_eq!(
        v["RepoDigests"],
        json!([format!("localhost/test@{manifest_digest}")])
    );
    assert_eq!(v["Config"]["Env"], json!(["PATH=/bin", "FOO=bar"]));
    assert_eq!(v["Config"]["Entrypoint"], json!(["/bin/sh"]));
    assert_eq!(v["Config"]["Cmd"], json!(["-c", "echo hi"]));
    assert_eq!(v["Config"]["WorkingDir"], json!("/work"));
    assert_eq!(v["Config"]["User"], json!("1000:1000"));
    assert_eq!(v["Config"]["StopSignal"], json!("SIGINT"));
    assert_eq!(v["Config"]["ExposedPorts"], json!({"80/tcp": {}}));
    assert_eq!(v["Labels"], json!({"a": "b"}));
    assert_eq!(v["RootFS"]["Type"], json!("layers"));
    assert_eq!(
        v["RootFS"]["Layers"],
        json!([sha(&layer1()), sha(&layer2())])
    );
    assert_eq!(v["Size"], json!(layer1().len() + layer2().len()));
    assert_eq!(v["Created"], json!("2024-01-02T03:04:05Z"));
    assert_eq!(v["Architecture"], json!(host_arch()));
    // The ID, a prefix and the short name all resolve to the same image.
    let id = v["Id"].as_str().unwrap();
    for q in [id, &id[..12], &format!("sha256:{id}"), "test:one"] {
        assert_eq!(vigil.inspect(q)["Id"], v["Id"], "{q}");
    }
    let (code, stderr) = vigil.fails(&["image", "inspect", "nosuch"]);
    assert_eq!(code, 125);
    assert!(stderr.contains("nosuch"), "{stderr}");
}

#[test]
fn oci_archive_from_file_and_compressed_from_stdin() {
    let mut layout = Layout::new();
    let desc = layout.image(&four_layers([Comp::Gzip; 4]));
    layout.add(desc, Some("localhost/test:arch"));
    let archive = layout.archive();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("img.tar");
    fs::write(&file, &archive).unwrap();

    let vigil = Vigil::new();
    assert_eq!(
        vigil.ok(&["load", "-i", file.to_str().unwrap()]),
        "Loaded image: localhost/test:arch\n"
    );
    check_four_layers(&vigil.layers("test:arch"));

    let vigil = Vigil::new();
    let mut child = vigil
        .cmd(&["load", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&gzip(&archive))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_four_layers(&vigil.layers("test:arch"));
}

/// A docker-archive as podman/skopeo write it: `<diffid>.tar` layers (one of
/// them gzip-compressed), legacy `<id>/layer.tar` symlinks, `<config>.json`.
fn docker_archive(images: &[(&[&str], Vec<Vec<u8>>)]) -> Vec<u8> {
    let mut t = Tar::new();
    let mut manifest = Vec::new();
    for (tags, layers) in images {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
        let config = serde_json::to_vec(&config_json(&diff_ids, host_arch())).unwrap();
        let config_name = format!("{}.json", &sha(&config)[7..]);
        t.file(&config_name, &config);
        let mut paths = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let hex = &sha(layer)[7..];
            let data = if i % 2 == 0 {
                gzip(layer)
            } else {
                layer.clone()
            };
            t.file(&format!("{hex}.tar"), &data);
            let legacy = format!("legacy{i}{}", &hex[..8]);
            t.dir(&format!("{legacy}/"));
            t.symlink(&format!("{legacy}/layer.tar"), &format!("../{hex}.tar"));
            paths.push(format!("{legacy}/layer.tar"));
        }
        manifest.push(json!({"Config": config_name, "RepoTags": tags, "Layers": paths}));
    }
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    t.finish()
}

fn load_bytes(vigil: &Vigil, bytes: &[u8]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.tar");
    fs::write(&file, bytes).unwrap();
    vigil.run(&["load", "-i", file.to_str().unwrap()])
}

#[test]
fn docker_archive_with_several_images_and_legacy_symlinks() {
    let vigil = Vigil::new();
    let archive = docker_archive(&[
        (
            &["busybox:latest", "me/app:1"],
            vec![layer1(), layer2(), layer3(), layer4()],
        ),
        (&["other"], vec![layer1()]),
    ]);
    let out = load_bytes(&vigil, &archive);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: docker.io/library/busybox:latest\nLoaded image: docker.io/me/app:1\nLoaded image: docker.io/library/other:latest\n"
    );
    check_four_layers(&vigil.layers("busybox"));
    // The shared base layer is stored once.
    assert_eq!(vigil.layers("other")[0], vigil.layers("busybox")[0]);
    assert_eq!(
        fs::read_dir(vigil.store().join("layers")).unwrap().count(),
        4
    );
}

#[test]
fn docker_archive_paths_resolve_only_inside_the_archive() {
    let vigil = Vigil::new();
    let layer = layer1();
    let config = serde_json::to_vec(&config_json(&[sha(&layer)], host_arch())).unwrap();
    let mut t = Tar::new();
    t.file("c.json", &config).file("l.tar", &layer);
    let manifest =
        json!([{"Config": "c.json", "RepoTags": ["x"], "Layers": ["../../../../etc/passwd"]}]);
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let out = load_bytes(&vigil, &t.finish());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Layer count differs from diff_ids.
    let mut t = Tar::new();
    t.file("c.json", &config).file("l.tar", &layer);
    let manifest = json!([{"Config": "c.json", "RepoTags": ["x"], "Layers": ["l.tar", "l.tar"]}]);
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let out = load_bytes(&vigil, &t.finish());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("diff_ids"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(vigil.stored().is_empty(), "{:?}", vigil.stored());
}

#[test]
fn docker_25_archive_is_an_oci_layout_with_manifest_json() {
    let mut layout = Layout::new();
    let desc = layout.image(&[(layer1(), Comp::Plain)]);
    layout.add(desc, None);
    layout.write_index();
    let index: Value =
        serde_json::from_slice(&fs::read(layout.path().join("index.json")).unwrap()).unwrap();
    let manifest_blob = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value =
        serde_json::from_slice(&fs::read(layout.blob_path(manifest_blob)).unwrap()).unwrap();
    let config_path = format!(
        "blobs/sha256/{}",
        &manifest["config"]["digest"].as_str().unwrap()[7..]
    );
    let layer_path = format!(
        "blobs/sha256/{}",
        &manifest["layers"][0]["digest"].as_str().unwrap()[7..]
    );
    let mut archive = layout.archive();
    archive.truncate(archive.len() - 1024);
    let mut t = Tar::new();
    t.bytes(&archive);
    let mj = json!([{"Config": config_path, "RepoTags": ["busybox:25"], "Layers": [layer_path]}]);
    t.file("manifest.json", &serde_json::to_vec(&mj).unwrap());
    let vigil = Vigil::new();
    let out = load_bytes(&vigil, &t.finish());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: docker.io/library/busybox:25\n"
    );
}

// ---- Verification: nothing half-imported --------------------------------------

#[test]
fn corrupted_layer_blob_is_named_and_nothing_is_left() {
    let vigil = Vigil::new();
    let mut layout = Layout::new();
    let desc = layout.image(&four_layers([Comp::Gzip; 4]));
    layout.add(desc.clone(), Some("bad"));
    // Flip a byte in the last layer's blob (same size).
    let manifest: Value = serde_json::from_slice(
        &fs::read(layout.blob_path(desc["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let last = manifest["layers"][3]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = layout.blob_path(&last);
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let stderr = layout.load_fails(&vigil);
    assert!(
        stderr.contains(&last) && stderr.contains("digest mismatch"),
        "{stderr}"
    );
    assert!(vigil.stored().is_empty(), "{:?}", vigil.stored());
    assert_eq!(vigil.ok(&["images", "-q"]), "");
}

#[test]
fn diff_id_mismatch_is_refused() {
    let vigil = Vigil::new();
    let mut layout = Layout::new();
    let desc = layout.image_with(&[(layer1(), Comp::Gzip)], host_arch(), |config, _| {
        config["rootfs"]["diff_ids"] = json!([sha(b"something else")]);
    });
    layout.add(desc, Some("bad"));
    let stderr = layout.load_fails(&vigil);
    assert!(stderr.contains("diff_id"), "{stderr}");
    assert!(vigil.stored().is_empty(), "{:?}", vigil.stored());
}

#[test]
fn hostile_descriptors_are_refused() {
    let hex = "a".repeat(64);
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "size mismatch",
            Box::new(|m: &mut Value| {
                m["layers"][0]["size"] = json!(m["layers"][0]["size"].as_i64().unwrap() - 1)
            }),
        ),
        (
            "negative size",
            Box::new(|m: &mut Value| m["layers"][0]["size"] = json!(-1)),
        ),
        (
            "invalid sha256",
            Box::new(|m: &mut Value| {
                m["layers"][0]["digest"] = json!(format!("sha256:../../{}", &"a".repeat(58)))
            }),
        ),
        (
            "invalid sha256",
            Box::new(move |m: &mut Value| {
                m["layers"][0]["digest"] = json!(format!("sha256:{}", hex.to_uppercase()))
            }),
        ),
        (
            "invalid sha256",
            Box::new(|m: &mut Value| m["layers"][0]["digest"] = json!("sha256:abc")),
        ),
        (
            "unsupported digest algorithm",
            Box::new(|m: &mut Value| {
                m["layers"][0]["digest"] = json!(format!("md5:{}", "a".repeat(32)))
            }),
        ),
    ];
    for (expect, edit) in cases {
        let vigil = Vigil::new();
        let mut layout = Layout::new();
        let desc = layout.image_with(&[(layer1(), Comp::Gzip)], host_arch(), |config, manifest| {
            let bytes = serde_json::to_vec(&config).unwrap();
            manifest["config"] = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&bytes), "size": bytes.len()});
            edit(manifest);
        });
        layout.add(desc, Some("bad"));
        let stderr = layout.load_fails(&vigil);
        assert!(stderr.contains(expect), "{expect}: {stderr}");
        assert!(vigil.stored().is_empty(), "{expect}: {:?}", vigil.stored());
    }
}

#[test]
fn corrupted_config_and_manifest_blobs_are_refused() {
    for which in ["config", "manifest"] {
        let vigil = Vigil::new();
        let mut layout = Layout::new();
        let desc = layout.image(&[(layer1(), Comp::Gzip)]);
        layout.add(desc.clone(), Some("bad"));
        let manifest_path = layout.blob_path(desc["digest"].as_str().unwrap());
        let manifest: Value = serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
        let path = match which {
            "config" => layout.blob_path(manifest["config"]["digest"].as_str().unwrap()),
            _ => manifest_path,
        };
        let mut bytes = fs::read(&path).unwrap();
        let i = bytes.iter().position(|&b| b == b'"').unwrap();
        bytes[i + 1] ^= 0x20; // same size, other content
        fs::write(&path, &bytes).unwrap();
        let stderr = layout.load_fails(&vigil);
        assert!(
            stderr.contains(which) && stderr.contains("digest mismatch"),
            "{which}: {stderr}"
        );
        assert!(vigil.stored().is_empty());
    }
}

#[test]
fn blob_that_is_a_symlink_out_of_the_layout_is_refused() {
    let vigil = Vigil::new();
    let mut layout = Layout::new();
    let desc = layout.image(&[(layer1(), Comp::Plain)]);
    layout.add(desc.clone(), Some("bad"));
    let manifest: Value = serde_json::from_slice(
        &fs::read(layout.blob_path(desc["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let blob = layout.blob_path(manifest["layers"][0]["digest"].as_str().unwrap());
    let outside = tempfile::NamedTempFile::new().unwrap();
    fs::copy(&blob, outside.path()).unwrap();
    fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink(outside.path(), &blob).unwrap();
    let stderr = layout.load_fails(&vigil);
    assert!(stderr.contains("blobs/sha256"), "{stderr}");
    assert!(vigil.stored().is_empty());
}

// ---- Index resolution ------------------------------------------------------------

#[test]
fn nested_index_picks_the_host_platform_and_skips_unknown_types() {
    let vigil = Vigil::new();
    let mut layout = Layout::new();
    let host = layout.image(&[(layer1(), Comp::Gzip)]);
    let other = layout.image_with(&[(layer2(), Comp::Gzip)], "s390x", |_, _| {});
    let mut host_entry = host.clone();
    host_entry["platform"] = json!({"architecture": host_arch(), "os": "linux"});
    let mut other_entry = other;
    other_entry["platform"] = json!({"architecture": "s390x", "os": "linux"});
    let nested = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [other_entry, host_entry]});
    let nested_desc = layout.blob(
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&nested).unwrap(),
    );
    layout.add(nested_desc, Some("localhost/multi:arch"));
    let unknown = layout.blob("application/vnd.example.unknown+json", b"{}");
    layout.add(unknown, Some("ignored"));
    assert_eq!(layout.load(&vigil), "Loaded image: localhost/multi:arch\n");
    assert_eq!(vigil.inspect("multi:arch")["Digest"], host["digest"]);
}

#[test]
fn empty_index_artifacts_and_mixed_documents_are_refused() {
    let vigil = Vigil::new();
    let layout = Layout::new();
    assert!(layout.load_fails(&vigil).contains("no image"));

    let mut layout = Layout::new();
    let artifact = layout.image_with(&[(layer1(), Comp::Gzip)], host_arch(), |_, manifest| {
        manifest["config"] = json!({"mediaType": "application/vnd.example.artifact+json", "digest": sha(b"{}"), "size": 2});
    });
    fs::write(layout.blob_path(&sha(b"{}")), b"{}").unwrap();
    layout.add(artifact, Some("art"));
    assert!(layout.load_fails(&vigil).contains("artifact"));

    let mut layout = Layout::new();
    let mixed = layout.image_with(&[(layer1(), Comp::Gzip)], host_arch(), |_, manifest| {
        manifest["manifests"] = json!([]);
    });
    layout.add(mixed, Some("mixed"));
    assert!(layout.load_fails(&vigil).contains("ambiguous"));
    assert!(vigil.stored().is_empty());
}

// ---- tag and rmi -------------------------------------------------------------------

#[test]
fn tag_and_rmi_untag_then_delete_with_shared_layers_kept() {
    let vigil = Vigil::new();
    let mut layout = Layout::new();
    let a = layout.image(&[(layer1(), Comp::Gzip), (layer2(), Comp::Gzip)]);
    let b = layout.image(&[(layer1(), Comp::Gzip)]);
    layout
        .add(a, Some("localhost/a:1"))
        .add(b, Some("localhost/b:1"));
    layout.load(&vigil);
    vigil.ok(&["tag", "a:1", "second", "quay.io/x/y:2"]);
    let tags = vigil.inspect("a:1")["RepoTags"].clone();
    assert_eq!(
        tags,
        json!(["localhost/a:1", "localhost/second:latest", "quay.io/x/y:2"])
    );
    assert!(vigil.ok(&["images"]).contains("localhost/second"));

    // By a name among several: only untag.
    assert_eq!(
        vigil.ok(&["rmi", "second"]),
        "Untagged: localhost/second:latest\n"
    );
    let id = vigil.inspect("a:1")["Id"].as_str().unwrap().to_string();
    // By ID: all names go, and the image.
    let out = vigil.ok(&["rmi", &id[..12]]);
    assert_eq!(
        out,
        format!("Untagged: localhost/a:1\nUntagged: quay.io/x/y:2\nDeleted: {id}\n")
    );
    // The layer shared with b stays; a's own top layer is gone.
    let b_layers = vigil.layers("b:1");
    assert!(b_layers[0].exists());
    assert_eq!(
        fs::read_dir(vigil.store().join("layers")).unwrap().count(),
        1
    );

    let (code, stderr) = vigil.fails(&["rmi", "a:1"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("image not known"), "{stderr}");
    vigil.ok(&["rmi", "b:1"]);
    assert!(vigil.stored().is_empty(), "{:?}", vigil.stored());

    let (code, _) = vigil.fails(&["tag", "b:1", "x"]);
    assert_eq!(code, 125);
}

#[test]
fn loading_twice_reuses_layers_and_moves_names() {
    let vigil = Vigil::new();
    let mut layout = Layout::new();
    let a = layout.image(&[(layer1(), Comp::Gzip)]);
    layout.add(a, Some("localhost/app:latest"));
    layout.load(&vigil);
    layout.load(&vigil);
    let mut layout2 = Layout::new();
    let b = layout2.image(&[(layer1(), Comp::Zstd), (layer3(), Comp::Zstd)]);
    layout2.add(b, Some("localhost/app:latest"));
    layout2.load(&vigil);
    let images = vigil.ok(&["images"]);
    assert_eq!(images.lines().count(), 3, "{images}");
    assert!(images.contains("<none>"), "{images}");
    assert_eq!(
        vigil.inspect("app")["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        fs::read_dir(vigil.store().join("layers")).unwrap().count(),
        2
    );
}

// ---- Images made by umoci, skopeo and podman (scripts/make-test-images) ----------------

fn test_images() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-images"));
    if dir.join("MANIFEST").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} not built; run scripts/make-test-images",
            dir.display()
        );
        None
    }
}

fn built(dir: &Path, what: &str) -> bool {
    let manifest = fs::read_to_string(dir.join("MANIFEST")).unwrap_or_default();
    let ok = manifest.lines().any(|l| l == what);
    if !ok {
        eprintln!("SKIP: {what} was not built by scripts/make-test-images on this machine");
    }
    ok
}

/// Checks the layers of the `multi` image of scripts/make-test-images.
fn check_multi(vigil: &Vigil, name: &str) {
    let dirs = vigil.layers(name);
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    let base = &dirs[0];
    assert!(
        fs::symlink_metadata(base.join("bin/busybox"))
            .unwrap()
            .len()
            > 100_000
    );
    assert_eq!(
        fs::read_link(base.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(base.join("abs-link")).unwrap(),
        Path::new("/etc/passwd")
    );
    let file = fs::symlink_metadata(base.join("dir1/file")).unwrap();
    assert_eq!(file.nlink(), 2);
    assert_eq!(
        file.ino(),
        fs::symlink_metadata(base.join("dir1/hardlink"))
            .unwrap()
            .ino()
    );
    assert_eq!(
        getxattr(&base.join("dir1/file"), "user.testattr").as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        fs::symlink_metadata(base.join("bin/suid-busybox"))
            .unwrap()
            .mode()
            & 0o7777,
        0o4755
    );
    assert_eq!(
        fs::symlink_metadata(base.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert!(fs::symlink_metadata(base.join("dir1/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let dev = fs::symlink_metadata(base.join("dev/null-test")).unwrap();
    assert!(dev.file_type().is_char_device());
    assert_eq!(dev.rdev(), libc::makedev(1, 3));
    let owned = fs::symlink_metadata(base.join("home/app/owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
    if Path::new("/usr/sbin/setcap").exists() || Path::new("/sbin/setcap").exists() {
        assert!(getxattr(&base.join("bin/cap-busybox"), "security.capability").is_some());
    }
    assert!(is_whiteout(&dirs[1].join("dir1/todelete")));
    assert!(is_whiteout(&dirs[1].join("dir1/sub")));
    assert_eq!(
        fs::read_to_string(dirs[1].join("dir1/added")).unwrap(),
        "added in layer 2\n"
    );
    assert_eq!(
        getxattr(&dirs[2].join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    // The copied-up link target keeps its other name: file, hardlink and hl-to-lower.
    assert_eq!(
        fs::symlink_metadata(dirs[2].join("dir1/hl-to-lower"))
            .unwrap()
            .nlink(),
        3
    );
    assert_eq!(
        fs::symlink_metadata(dirs[2].join("dir1/hardlink"))
            .unwrap()
            .ino(),
        fs::symlink_metadata(dirs[2].join("dir1/hl-to-lower"))
            .unwrap()
            .ino()
    );

    let cfg = vigil.inspect(name)["Config"].clone();
    assert_eq!(cfg["Entrypoint"], json!(["/bin/sh"]));
    assert_eq!(cfg["Cmd"], json!(["-c", "echo hi"]));
    assert_eq!(cfg["User"], json!("1000:1000"));
    assert_eq!(cfg["WorkingDir"], json!("/dir1"));
    assert_eq!(cfg["StopSignal"], json!("SIGINT"));
}

#[test]
fn generated_images_in_every_format_unpack_the_same() {
    let Some(dir) = test_images() else { return };
    let mut ids = Vec::new();
    for (what, args, name) in [
        ("docker.tar", vec!["load", "-i"], "localhost/test:multi"),
        ("oci.tar", vec!["load", "-i"], "localhost/test:multi"),
        ("oci", vec!["load", "--layout"], "localhost/multi:latest"),
        ("zstd", vec!["load", "--layout"], "localhost/multi:latest"),
        ("plain", vec!["load", "--layout"], "localhost/multi:latest"),
    ] {
        if !built(&dir, what) {
            continue;
        }
        let vigil = Vigil::new();
        let mut args: Vec<String> = args.into_iter().map(String::from).collect();
        args.push(dir.join(what).to_str().unwrap().to_string());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vigil.ok(&argv);
        assert!(
            out.contains(&format!("Loaded image: {name}")),
            "{what}: {out}"
        );
        check_multi(&vigil, name);
        ids.push((what, vigil.inspect(name)["Id"].clone()));
    }
    // umoci's layout and skopeo's docker/oci archives carry the same config.
    let reference = ids
        .iter()
        .find(|(w, _)| *w == "oci")
        .map(|(_, id)| id.clone());
    for (what, id) in &ids {
        if matches!(*what, "docker.tar" | "oci.tar") {
            assert_eq!(Some(id.clone()), reference, "{what}");
        }
    }
}

#[test]
fn generated_podman_archive_loads() {
    let Some(dir) = test_images() else { return };
    if !built(&dir, "podman-docker.tar") {
        return;
    }
    let vigil = Vigil::new();
    let out = vigil.ok(&[
        "load",
        "-i",
        dir.join("podman-docker.tar").to_str().unwrap(),
    ]);
    assert!(out.contains("localhost/imp:1"), "{out}");
    let dirs = vigil.layers("imp:1");
    assert_eq!(dirs.len(), 1);
    assert!(dirs[0].join("bin/busybox").is_file());
    assert_eq!(vigil.inspect("imp:1")["Config"]["Cmd"], json!(["/bin/sh"]));
}

#[test]
fn generated_multi_image_mounts_as_overlay() {
    let Some(dir) = test_images() else { return };
    if !built(&dir, "oci") {
        return;
    }
    let vigil = Vigil::new();
    vigil.ok(&["load", "--layout", dir.join("oci").to_str().unwrap()]);
    let lower = vigil.inspect("multi")["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    let mnt = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args([
            "-t",
            "overlay",
            "overlay",
            "-o",
            &format!("ro,lowerdir={lower}"),
        ])
        .arg(mnt.path())
        .stderr(Stdio::null())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("SKIP: cannot mount overlayfs here");
        return;
    }
    let m = mnt.path();
    let check = || {
        assert!(!m.join("dir1/todelete").exists());
        assert!(!m.join("dir1/sub").exists());
        assert!(m.join("dir1/added").exists());
        assert!(!m.join("opq/old").exists());
        assert_eq!(fs::read_to_string(m.join("opq/new")).unwrap(), "new\n");
        assert_eq!(
            fs::read_to_string(m.join("dir1/hl-to-lower")).unwrap(),
            "file content\n"
        );
    };
    let result = std::panic::catch_unwind(check);
    let _ = Command::new("umount").arg(m).status();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

// ---- Flat copy (fallback without overlayfs) ------------------------------------------

/// Name, type, mode, owner, size, link target and content of every path,
/// without link counts (overlay copy-up changes those).
fn tree(dir: &Path) -> Vec<(PathBuf, image_support::Node)> {
    image_support::snapshot(dir, Path::new("/nonexistent"))
        .into_iter()
        .filter(|(p, _)| !p.as_os_str().is_empty())
        .map(|(p, mut n)| {
            n.nlink = 0;
            (p, n)
        })
        .collect()
}

#[test]
fn flattened_copy_equals_the_overlay_view() {
    let vigil = Vigil::new();
    let mut layout = Layout::new();
    let desc = layout.image(&four_layers([
        Comp::Gzip,
        Comp::Zstd,
        Comp::Plain,
        Comp::MultiGzip,
    ]));
    layout.add(desc, Some("flat"));
    layout.load(&vigil);
    let store = vigil_runner::image::Store::open_dir(vigil.store()).unwrap();
    let record = store.resolve("flat").unwrap();
    let flat = tempfile::tempdir().unwrap();
    let warnings = record.flatten_into(flat.path()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let f = flat.path();
    assert!(!f.join("dir/gone").exists());
    assert!(!f.join("dir/sub/x").exists());
    assert_eq!(fs::read_to_string(f.join("dir/sub/y")).unwrap(), "y");
    assert_eq!(fs::read_to_string(f.join("l4")).unwrap(), "four");
    let tool = fs::symlink_metadata(f.join("bin/tool")).unwrap();
    assert_eq!(
        tool.ino(),
        fs::symlink_metadata(f.join("bin/tool-link")).unwrap().ino()
    );
    let owned = fs::symlink_metadata(f.join("owned")).unwrap();
    assert_eq!((owned.uid(), owned.mode() & 0o7777), (1000, 0o4750));

    assert_flat_is_the_overlay_view(&record, f);
}

#[test]
fn generated_multi_image_flattens_like_overlay() {
    let Some(dir) = test_images() else { return };
    if !built(&dir, "oci") {
        return;
    }
    let vigil = Vigil::new();
    vigil.ok(&["load", "--layout", dir.join("oci").to_str().unwrap()]);
    let store = vigil_runner::image::Store::open_dir(vigil.store()).unwrap();
    let record = store.resolve("multi").unwrap();
    let flat = tempfile::tempdir().unwrap();
    record.flatten_into(flat.path()).unwrap();
    let f = flat.path();
    assert!(!f.join("dir1/todelete").exists());
    assert!(!f.join("dir1/sub").exists());
    assert!(!f.join("opq/old").exists());
    assert_eq!(fs::read_to_string(f.join("opq/new")).unwrap(), "new\n");
    assert_eq!(
        fs::symlink_metadata(f.join("bin/suid-busybox"))
            .unwrap()
            .mode()
            & 0o7777,
        0o4755
    );
    assert_eq!(
        fs::symlink_metadata(f.join("dir1/hl-to-lower"))
            .unwrap()
            .ino(),
        fs::symlink_metadata(f.join("dir1/file")).unwrap().ino()
    );
    assert_flat_is_the_overlay_view(&record, f);
}

/// `flat` (the record flattened) has the tree an overlay mount of the
/// record's layers shows (skipped where overlayfs cannot be mounted).
fn assert_flat_is_the_overlay_view(record: &vigil_runner::image::ImageRecord, flat: &Path) {
    let mnt = tempfile::tempdir().unwrap();
    let mut lower: Vec<String> = record
        .layer_dirs()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    lower.reverse();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "overlay",
            "overlay",
            "-o",
            &format!("ro,lowerdir={}", lower.join(":")),
        ])
        .arg(mnt.path())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIP (overlay comparison): cannot mount overlayfs here");
        return;
    }
    let view = tree(mnt.path());
    let _ = Command::new("umount").arg(mnt.path()).status();
    assert_eq!(tree(flat), view);
}
