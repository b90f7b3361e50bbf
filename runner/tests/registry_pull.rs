//! Pull, mirrors, blocking, platforms, push round trips, search and
//! `run --pull` against real docker-registry processes on 127.0.0.1
//! (plain HTTP: the registries are insecure on purpose; TLS and auth are in
//! registry_auth.rs). Compared with skopeo and Podman where they read the
//! same registry.

mod registry_support;

use std::fs;

use registry_support::{
    assert_failed, assert_podman_pulls, make_multiarch, oci_src, seed, skopeo_json, text, Fixture,
    Registry, RegistryConfig, Vigil,
};

fn plain(fx: &Fixture, name: &str) -> Registry {
    Registry::start(fx, name, &RegistryConfig::default())
}

/// The config digest (image ID) skopeo sees for `image`.
fn skopeo_id(fx: &Fixture, image: &str) -> String {
    let raw: serde_json::Value = skopeo_json(fx, image, true);
    raw["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string()
}

#[test]
fn pull_by_tag_and_by_digest_matches_skopeo() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let reg = plain(&fx, "a");
    let image = format!("{}/test/multi:1", reg.addr);
    seed(&fx, &oci_src("multi"), &image, false, false);
    let want_id = skopeo_id(&fx, &image);

    let v = Vigil::new().unwrap();
    let out = fx.run(&v, &["pull", "--tls-verify=false", &image]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{want_id}\n"));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], format!("Trying to pull {image}..."));
    assert_eq!(lines[1], "Getting image source signatures");
    assert!(
        lines[2..lines.len() - 3]
            .iter()
            .all(|l| l.starts_with("Copying blob sha256:")),
        "{err}"
    );
    assert_eq!(
        lines[lines.len() - 3],
        format!("Copying config sha256:{want_id}")
    );
    assert_eq!(
        lines[lines.len() - 2],
        "Writing manifest to image destination"
    );
    assert_eq!(lines[lines.len() - 1], "Storing signatures");
    let images = fx.ok(&v, &["images"]);
    let row: Vec<&str> = images
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..3],
        [
            format!("{}/test/multi", reg.addr).as_str(),
            "1",
            &want_id[..12]
        ],
        "{images}"
    );

    // -q: only the ID; the layers are present, so nothing is downloaded.
    let before = reg.access_log().matches("/blobs/").count();
    assert_eq!(
        fx.ok(&v, &["pull", "-q", "--tls-verify=false", &image]),
        format!("{want_id}\n")
    );
    let after = reg.access_log().matches("/blobs/").count();
    assert_eq!(after - before, 1, "only the config blob is fetched again");

    // By digest, into another store: the same image, without a tag.
    let manifest: serde_json::Value = skopeo_json(&fx, &image, false);
    let digest = manifest["Digest"].as_str().unwrap();
    let by_digest = format!("{}/test/multi@{digest}", reg.addr);
    let v2 = Vigil::new().unwrap();
    let out = fx.ok(&v2, &["pull", "--tls-verify=false", &by_digest]);
    assert_eq!(out, format!("{want_id}\n"));

    // An unknown tag: Podman's message, exit 125, nothing stored.
    let v3 = Vigil::new().unwrap();
    let out = fx.run(
        &v3,
        &[
            "pull",
            "--tls-verify=false",
            &format!("{}/test/multi:nope", reg.addr),
        ],
    );
    assert_failed(&out, &format!(
            "initializing source docker://{0}/test/multi:nope: reading manifest nope in {0}/test/multi: manifest unknown: manifest unknown",
            reg.addr
        ));
    assert_eq!(fx.ok(&v3, &["images", "-q"]), "");

    // Secure by default: 127.0.0.1 is not implicitly insecure.
    let out = fx.run(&v3, &["pull", &image]);
    assert_failed(&out, &format!(
            "pinging container registry {0}: Get \"https://{0}/v2/\": http: server gave HTTP response to HTTPS client",
            reg.addr
        ));
}

#[test]
fn an_index_resolves_to_the_wanted_platform() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let reg = plain(&fx, "a");
    let (layout, amd64, arm64) = make_multiarch(fx.dir.path());
    let image = format!("{}/multi:1", reg.addr);
    seed(
        &fx,
        &format!("oci:{}:multiarch", layout.display()),
        &image,
        false,
        true,
    );

    let v = Vigil::new().unwrap();
    assert_eq!(
        fx.ok(&v, &["pull", "-q", "--tls-verify=false", &image]),
        format!("{amd64}\n")
    );
    let out = fx.run(
        &v,
        &["pull", "--tls-verify=false", "--arch", "arm64", &image],
    );
    assert_eq!(
        text(&out.stdout),
        format!("{arm64}\n"),
        "{}",
        text(&out.stderr)
    );
    // The config says what was asked for: no platform warning.
    assert!(
        !text(&out.stderr).contains("WARNING"),
        "{}",
        text(&out.stderr)
    );
    let out = fx.ok(
        &v,
        &[
            "pull",
            "-q",
            "--tls-verify=false",
            "--platform",
            "linux/arm64/v8",
            &image,
        ],
    );
    assert_eq!(out, format!("{arm64}\n"));

    let out = fx.run(
        &v,
        &["pull", "--tls-verify=false", "--arch", "s390x", &image],
    );
    assert_failed(&out, &format!(
        "choosing an image from manifest list docker://{image}: no image found in image index for architecture s390x, variant \"\", OS linux"
    ));
    let out = fx.run(
        &v,
        &[
            "pull",
            "--tls-verify=false",
            "--arch",
            "arm64",
            "--variant",
            "v7",
            &image,
        ],
    );
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn mirrors_remaps_blocking_and_insecure_from_registries_conf() {
    crate::require_registry!();
    let fx = Fixture::new();
    let primary = plain(&fx, "primary");
    let mirror = plain(&fx, "mirror");
    let dead = registry_support::free_port();
    seed(
        &fx,
        &oci_src("multi"),
        &format!("{}/mirror/library/busybox:1", mirror.addr),
        false,
        false,
    );
    seed(
        &fx,
        &oci_src("base"),
        &format!("{}/hub/library/busybox:2", primary.addr),
        false,
        false,
    );
    let conf = format!(
        r#"unqualified-search-registries = []
[[registry]]
prefix = "docker.io"
location = "{p}/hub"
insecure = true
[[registry.mirror]]
location = "127.0.0.1:{dead}/dead"
insecure = true
[[registry.mirror]]
location = "{m}/mirror"
insecure = true

[[registry]]
location = "blocked.test"
blocked = true

[[registry]]
location = "{p}"
insecure = true
"#,
        p = primary.addr,
        m = mirror.addr
    );
    fx.write_registries_conf(&conf);
    let v = Vigil::new().unwrap();

    // The dead mirror fails, the live one serves; stored under the requested name.
    let id = fx.ok(&v, &["pull", "-q", "docker.io/busybox:1"]);
    assert_eq!(
        id.trim(),
        skopeo_id(&fx, &format!("{}/mirror/library/busybox:1", mirror.addr))
    );
    assert!(mirror
        .access_log()
        .contains("GET /v2/mirror/library/busybox/manifests/1"));
    let names = fx.ok(&v, &["images"]);
    assert!(names.contains("docker.io/library/busybox "), "{names}");

    // Not on the mirror: the primary location (the remap of docker.io) serves it.
    let id = fx.ok(&v, &["pull", "-q", "docker.io/library/busybox:2"]);
    assert_eq!(
        id.trim(),
        skopeo_id(&fx, &format!("{}/hub/library/busybox:2", primary.addr))
    );

    // Nowhere: one error naming every candidate.
    let out = fx.run(&v, &["pull", "docker.io/library/nothere:1"]);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(err.contains("(Mirrors also failed: [127.0.0.1:"), "{err}");
    assert!(
        err.contains(&format!(
            "{}/hub/library/nothere:1: reading manifest 1",
            primary.addr
        )),
        "{err}"
    );

    // The mirror goes down: the primary still answers.
    mirror.stop();
    seed(
        &fx,
        &oci_src("multi"),
        &format!("{}/hub/library/busybox:3", primary.addr),
        false,
        false,
    );
    let id = fx.ok(&v, &["pull", "-q", "docker.io/library/busybox:3"]);
    assert_eq!(
        id.trim(),
        skopeo_id(&fx, &format!("{}/hub/library/busybox:3", primary.addr))
    );

    // Blocked: refused before any traffic, naming the file.
    let out = fx.run(&v, &["pull", "blocked.test/foo:1"]);
    assert_failed(
        &out,
        &format!(
            "registry blocked.test is blocked in {}",
            fx.path("registries.conf").display()
        ),
    );

    // insecure = true in registries.conf: no --tls-verify needed.
    let id = fx.ok(
        &v,
        &[
            "pull",
            "-q",
            &format!("{}/hub/library/busybox:2", primary.addr),
        ],
    );
    assert_eq!(id.trim().len(), 64);
}

#[test]
fn push_round_trip_is_read_back_by_skopeo_podman_and_vigil() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let reg = plain(&fx, "a");
    let image = format!("{}/test/multi:1", reg.addr);
    seed(&fx, &oci_src("multi"), &image, false, false);
    let v = Vigil::new().unwrap();
    let id = fx.ok(&v, &["pull", "-q", "--tls-verify=false", &image]);
    let id = id.trim();

    let dest = format!("{}/other/multi:2", reg.addr);
    let digestfile = fx.path("digest");
    let out = fx.run(
        &v,
        &[
            "push",
            "--tls-verify=false",
            "--digestfile",
            digestfile.to_str().unwrap(),
            &image,
            &dest,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("Getting image source signatures\nCopying blob sha256:"),
        "{err}"
    );
    assert!(err.ends_with(&format!("Copying config sha256:{id}\nWriting manifest to image destination\nStoring signatures\n")), "{err}");
    let pushed = fs::read_to_string(&digestfile).unwrap();
    let inspect: serde_json::Value = skopeo_json(&fx, &dest, false);
    assert_eq!(inspect["Digest"].as_str().unwrap(), pushed);
    assert_eq!(skopeo_id(&fx, &dest), id);
    // The blobs were mounted from the repository they were pulled from.
    assert!(
        reg.access_log().contains("mount=sha256"),
        "no cross-repository mount"
    );
    // Same blob digests as the source: pushed back byte for byte.
    let a: serde_json::Value = skopeo_json(&fx, &image, true);
    let b: serde_json::Value = skopeo_json(&fx, &dest, true);
    assert_eq!(a["layers"], b["layers"]);

    // Pulled back by a fresh vigil: same ID.
    let v2 = Vigil::new().unwrap();
    assert_eq!(
        fx.ok(&v2, &["pull", "-q", "--tls-verify=false", &dest])
            .trim(),
        id
    );

    // Docker v2s2 and zstd.
    let v2s2 = format!("{}/v2s2/multi:1", reg.addr);
    fx.ok(
        &v,
        &[
            "push",
            "-q",
            "--tls-verify=false",
            "--format",
            "v2s2",
            &image,
            &v2s2,
        ],
    );
    let raw: serde_json::Value = skopeo_json(&fx, &v2s2, true);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let zst = format!("{}/zstd/multi:1", reg.addr);
    fx.ok(
        &v,
        &[
            "push",
            "-q",
            "--tls-verify=false",
            "--compression-format",
            "zstd",
            &image,
            &zst,
        ],
    );
    let raw: serde_json::Value = skopeo_json(&fx, &zst, true);
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(
        fx.ok(&v2, &["pull", "-q", "--tls-verify=false", &zst])
            .trim(),
        id
    );

    // A loaded image (docker-archive, uncompressed layers) is pushed with its
    // layers gzipped: same config, same image ID.
    let archive = registry_support::test_images().unwrap().join("docker.tar");
    let v3 = Vigil::new().unwrap();
    fx.ok(&v3, &["load", "-q", "-i", archive.to_str().unwrap()]);
    let loaded_id = fx.ok(&v3, &["images", "-q", "--no-trunc"]);
    let loaded_id = loaded_id.trim().trim_start_matches("sha256:");
    let loaded = format!("{}/loaded/multi:1", reg.addr);
    fx.ok(
        &v3,
        &[
            "push",
            "-q",
            "--tls-verify=false",
            "localhost/test:multi",
            &loaded,
        ],
    );
    assert_eq!(skopeo_id(&fx, &loaded), loaded_id);
    let raw: serde_json::Value = skopeo_json(&fx, &loaded, true);
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    // Removing the image drops its kept blobs too.
    fx.ok(&v3, &["rmi", "localhost/test:multi"]);
    assert_eq!(
        fs::read_dir(v3.root().join("layer-blobs")).unwrap().count(),
        0
    );

    // Podman pulls what vigil pushed, with the same image ID.
    assert_podman_pulls(&dest, id);
}

/// Blobs larger than the chunk size go up as POST, PATCHes with
/// `Content-Range` (one per chunk, each on the registry's latest upload
/// location) and a closing PUT; the registry reassembles the same blobs,
/// and Podman pulls the same image ID.
#[test]
fn chunked_push_patches_with_content_range() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let from = plain(&fx, "from");
    let to = plain(&fx, "to");
    let image = format!("{}/test/multi:1", from.addr);
    seed(&fx, &oci_src("multi"), &image, false, false);
    let v = Vigil::new().unwrap();
    let id = fx.ok(&v, &["pull", "-q", "--tls-verify=false", &image]);
    let id = id.trim();
    let source: serde_json::Value = skopeo_json(&fx, &image, true);
    let chunk: u64 = 16 << 10;
    let sizes: Vec<u64> = source["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&source["config"]))
        .map(|b| b["size"].as_u64().unwrap())
        .collect();
    let chunks: u64 = sizes
        .iter()
        .filter(|&&s| s > chunk)
        .map(|s| s.div_ceil(chunk))
        .sum();
    assert!(
        chunks >= 2,
        "the test image's blobs are too small: {sizes:?}"
    );

    let dest = format!("{}/chunked/multi:1", to.addr);
    let mut c = fx.vigil(&v, &["push", "-q", "--tls-verify=false", &image, &dest]);
    c.env("VIGIL_PUSH_CHUNK_SIZE", chunk.to_string());
    let out = registry_support::run_bounded(&mut c, b"", std::time::Duration::from_secs(180));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let log = to.access_log();
    let patches = log
        .lines()
        .filter(|l| l.contains("\"PATCH /v2/chunked/multi/blobs/uploads/"))
        .count();
    assert_eq!(patches as u64, chunks, "{log}");
    assert!(
        log.lines()
            .filter(|l| l.contains("\"PATCH "))
            .all(|l| l.contains("\" 202 ")),
        "{log}"
    );
    let pushed: serde_json::Value = skopeo_json(&fx, &dest, true);
    assert_eq!(pushed["layers"], source["layers"]);
    assert_eq!(skopeo_id(&fx, &dest), id);
    let v2 = Vigil::new().unwrap();
    assert_eq!(
        fx.ok(&v2, &["pull", "-q", "--tls-verify=false", &dest])
            .trim(),
        id
    );
    assert_podman_pulls(&dest, id);
}

/// Enforcing short names with two search registries: without a terminal
/// Podman's error; on a pty the selector (Podman's rows, arrows, Enter),
/// the chosen name pulled and recorded in the alias cache only once it
/// pulled, later pulls resolved through the cache; a cancel records nothing.
#[test]
fn short_name_selector_on_a_terminal() {
    crate::require_registry!();
    let fx = Fixture::new();
    let a = plain(&fx, "a");
    let b = plain(&fx, "b");
    seed(
        &fx,
        &oci_src("multi"),
        &format!("{}/tests/shortie:1", b.addr),
        false,
        false,
    );
    fx.write_registries_conf(&format!(
        "unqualified-search-registries = [\"{}\", \"{}\"]\nshort-name-mode = \"enforcing\"\n\
         [[registry]]\nlocation = \"{}\"\ninsecure = true\n[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
        a.addr, b.addr, a.addr, b.addr
    ));
    let cache = fx.path("cache/short-name-aliases.conf");
    let v = Vigil::new().unwrap();
    let cmd = |args: &[&str]| {
        let mut c = fx.vigil(&v, args);
        c.env("VIGIL_SHORT_NAME_ALIASES_CONF", &cache);
        c
    };
    let limit = std::time::Duration::from_secs(120);
    let out = registry_support::run_bounded(&mut cmd(&["pull", "tests/shortie:1"]), b"", limit);
    assert_failed(
        &out,
        "short-name resolution enforced but cannot prompt without a TTY",
    );

    // On a terminal: the list, down to the second registry, Enter.
    let selected = |keys: &[u8]| {
        let pty = registry_support::e2e_support::Pty::open(24, 100);
        let child = pty.spawn(cmd(&["pull", "tests/shortie:1"]));
        let at = pty.expect(b"Please select an image: ", 0, limit);
        pty.expect(
            format!("    {}/tests/shortie:1", b.addr).as_bytes(),
            at,
            limit,
        );
        pty.wait_raw(limit);
        pty.write(keys);
        let status = registry_support::e2e_support::wait_bounded(child, limit, "pull").status;
        (status.code(), text(&pty.finish(limit)))
    };
    let first = format!("  \x1b[1m▸\x1b[0m \x1b[4m{}/tests/shortie:1\x1b[0m", a.addr);
    let (code, shown) = selected(b"\x1b[B\x03");
    assert_eq!(code, Some(125), "{shown}");
    assert!(shown.contains(&first), "{shown:?}");
    assert!(shown.contains("^C"), "{shown:?}");
    assert!(!cache.exists());
    // The first registry does not have it: the pull fails, nothing recorded.
    let (code, shown) = selected(b"\r");
    assert_eq!(code, Some(125), "{shown}");
    assert!(
        shown.contains(&format!("✔\x1b[0m \x1b[2m{}/tests/shortie:1", a.addr)),
        "{shown:?}"
    );
    assert!(!cache.exists());
    let (code, shown) = selected(b"\x1b[B\r");
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains(&format!(
            "  \x1b[1m▸\x1b[0m \x1b[4m{}/tests/shortie:1\x1b[0m",
            b.addr
        )),
        "{shown:?}"
    );
    assert!(
        shown.contains(&format!("Trying to pull {}/tests/shortie:1...", b.addr)),
        "{shown:?}"
    );
    assert_eq!(
        fs::read_to_string(&cache).unwrap(),
        format!(
            "[aliases]\n  \"tests/shortie\" = \"{}/tests/shortie\"\n",
            b.addr
        )
    );

    // Later pulls (no terminal needed; a fresh store, so not found there)
    // resolve through the cache.
    let v2 = Vigil::new().unwrap();
    let mut c = fx.vigil(&v2, &["pull", "tests/shortie:1"]);
    c.env("VIGIL_SHORT_NAME_ALIASES_CONF", &cache);
    let out = registry_support::run_bounded(&mut c, b"", limit);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "Resolved \"tests/shortie\" as an alias ({})",
            cache.display()
        )),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn search_lists_the_catalog_and_tags() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let reg = plain(&fx, "a");
    seed(
        &fx,
        &oci_src("multi"),
        &format!("{}/mono:1", reg.addr),
        false,
        false,
    );
    seed(
        &fx,
        &oci_src("multi"),
        &format!("{}/other:1", reg.addr),
        false,
        false,
    );
    seed(
        &fx,
        &oci_src("base"),
        &format!("{}/other:2", reg.addr),
        false,
        false,
    );
    let v = Vigil::new().unwrap();
    let a = &reg.addr;
    let out = fx.ok(&v, &["search", "--tls-verify=false", &format!("{a}/o")]);
    assert_eq!(
        out,
        format!(
            "NAME{0}DESCRIPTION\n{a}/mono   \n{a}/other  \n",
            " ".repeat(a.len() + 6 - 4 + 2)
        )
    );
    let out = fx.ok(
        &v,
        &[
            "search",
            "--tls-verify=false",
            "--limit",
            "1",
            "--format",
            "json",
            &format!("{a}/"),
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["Name"], format!("{a}/mono"));
    assert_eq!(json[0]["Index"], a.as_str());
    let out = fx.ok(
        &v,
        &[
            "search",
            "--tls-verify=false",
            "--list-tags",
            "--format",
            "{{.Name}} {{.Tag}}",
            &format!("{a}/other"),
        ],
    );
    let mut tags: Vec<&str> = out.lines().collect();
    tags.sort();
    assert_eq!(tags, [format!("{a}/other 1"), format!("{a}/other 2")]);

    // pull --all-tags: every tag of the repository, one ID per line.
    let out = fx.ok(
        &v,
        &[
            "pull",
            "-q",
            "-a",
            "--tls-verify=false",
            &format!("{a}/other"),
        ],
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().all(|l| l.len() == 64));
    let out = fx.run(
        &v,
        &["pull", "-a", "--tls-verify=false", &format!("{a}/other:1")],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("tag can't be used with --all-tags/-a"));
}

#[test]
fn run_pulls_a_missing_image_per_policy() {
    crate::require_registry!();
    let fx = Fixture::new();
    let reg = plain(&fx, "a");
    fx.write_registries_conf(&format!(
        "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
        reg.addr
    ));
    let image = format!("{}/test/multi:1", reg.addr);
    seed(&fx, &oci_src("multi"), &image, false, false);
    let v = Vigil::new().unwrap();

    let out = fx.run(&v, &["run", "--rm", "--pull=never", &image]);
    assert_failed(&out, &format!("{image}: image not known"));

    let out = fx.run(&v, &["run", "--rm", &image]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    assert!(text(&out.stderr).starts_with(&format!("Trying to pull {image}...")));

    // Present: no pull output; newer with the same digest: no pull either.
    let out = fx.run(&v, &["run", "--rm", &image]);
    assert_eq!(
        (text(&out.stdout).as_str(), text(&out.stderr).as_str()),
        ("hi\n", "")
    );
    let out = fx.run(&v, &["run", "--rm", "--pull=newer", &image]);
    assert_eq!(
        (text(&out.stdout).as_str(), text(&out.stderr).as_str()),
        ("hi\n", "")
    );
    let out = fx.run(&v, &["run", "--rm", "--pull=always", &image]);
    assert!(text(&out.stderr).starts_with(&format!("Trying to pull {image}...")));
    assert_eq!(text(&out.stdout), "hi\n");

    let out = fx.run(&v, &["create", &format!("{}/test/none:1", reg.addr)]);
    assert_failed(&out, "manifest unknown");
}
