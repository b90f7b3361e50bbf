//! `vigil build` against `podman build` (runner-build.md §6, §7): the same
//! Containerfile and context built by both from the same busybox base image
//! (a docker-archive made offline from the busybox test rootfs, loaded into
//! vigil's store and into a private Podman store), then the image config
//! fields and the file trees compared. Also: failures (exit status, message,
//! nothing tagged) and a cached rebuild with the same ID.
//!
//! Fields that legitimately differ and are not compared (§6.4): IDs,
//! digests, `created` times, COPY/ADD digests in history, the
//! `io.buildah.version` label, mtimes, and the RUN mount placeholders
//! (0-byte `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, `/run`).

#[allow(dead_code)]
mod e2e_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2e_support::{make_busybox_rootfs, manifest, sha256_hex, text, vigil_or_skip, Podman, Vigil};

const BASE: &str = "localhost/busybox:latest";

/// A docker-archive named `BASE` of a busybox rootfs made for this test in
/// `dir` by scripts/make-test-rootfs, not the shared
/// `target/test-rootfs/busybox`: the base image must have exactly the
/// script's entries, and a tree other suites run containers on could gain
/// some (runc makes missing mount points in the root it is given; stage 1's
/// `RUN mkdir /out` once failed with "File exists" that way).
fn busybox_archive(dir: &Path) -> Option<PathBuf> {
    let rootfs = dir.join("busybox-rootfs");
    if !make_busybox_rootfs(&rootfs) {
        return None;
    }
    let img = dir.join("img");
    fs::create_dir_all(&img).ok()?;
    let ok = Command::new("tar")
        .args([
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "--sort=name",
            "-C",
        ])
        .arg(&rootfs)
        .arg("-cf")
        .arg(img.join("layer.tar"))
        .arg(".")
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let layer = fs::read(img.join("layer.tar")).ok()?;
    let diff_id = sha256_hex(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{diff_id}"]}},"history":[{{"created":"2026-01-01T00:00:00Z","created_by":"busybox-static"}}]}}"#
    );
    let config_name = format!("{}.json", sha256_hex(config.as_bytes()));
    fs::write(img.join(&config_name), config).ok()?;
    fs::write(
        img.join("manifest.json"),
        format!(r#"[{{"Config":"{config_name}","RepoTags":["{BASE}"],"Layers":["layer.tar"]}}]"#),
    )
    .ok()?;
    let archive = dir.join("busybox.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&img)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .ok()?
        .success();
    ok.then_some(archive)
}

struct Setup {
    vigil: Vigil,
    podman: Option<Podman>,
    dir: tempfile::TempDir,
}

fn setup(test: &str, with_podman: bool) -> Option<Setup> {
    let vigil = vigil_or_skip(test)?;
    let dir = tempfile::Builder::new()
        .prefix("vigil-build-")
        .tempdir()
        .ok()?;
    let Some(archive) = busybox_archive(dir.path()) else {
        eprintln!("skipping {test}: no busybox rootfs (scripts/make-test-rootfs)");
        return None;
    };
    vigil.load(&archive);
    let podman = if with_podman {
        match Podman::new("overlay") {
            Ok(p) => {
                p.ok(&["load", "-i", archive.to_str()?]);
                Some(p)
            }
            Err(why) => {
                eprintln!("{test}: podman comparison skipped: {why}");
                None
            }
        }
    } else {
        None
    };
    Some(Setup { vigil, podman, dir })
}

/// Writes `files` (path, content) under `dir`.
fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, content).expect("write");
    }
}

/// `vigil build` under the same conditions as [`podman_build`] (RUN
/// without a network; the default network has a test of its own).
fn vigil_build(v: &Vigil, args: &[&str]) -> Output {
    let mut all = vec!["build", "--network=none"];
    all.extend_from_slice(args);
    v.run(&all)
}

fn podman_build(p: &Podman, args: &[&str]) -> Output {
    let mut all = vec!["build", "--pull=never", "--network=none"];
    all.extend_from_slice(args);
    p.run(&all)
}

/// The compared config fields, `io.buildah.version` dropped.
fn config_fields(config: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for k in [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "ExposedPorts",
        "Labels",
        "Volumes",
        "StopSignal",
    ] {
        let mut v = config.get(k).cloned().unwrap_or(serde_json::Value::Null);
        if k == "Labels" {
            if let Some(m) = v.as_object_mut() {
                m.remove("io.buildah.version");
                if m.is_empty() {
                    v = serde_json::Value::Null;
                }
            }
        }
        let empty = v.is_null()
            || v.as_str() == Some("")
            || v.as_array().is_some_and(|a| a.is_empty())
            || v.as_object().is_some_and(|o| o.is_empty());
        if !empty {
            out.insert(k.into(), v);
        }
    }
    serde_json::Value::Object(out)
}

fn vigil_config(v: &Vigil, name: &str) -> serde_json::Value {
    let out: serde_json::Value =
        serde_json::from_str(&v.ok(&["image", "inspect", name])).expect("inspect json");
    config_fields(&out[0]["Config"])
}

fn podman_config(p: &Podman, name: &str) -> serde_json::Value {
    let out = p.ok(&["image", "inspect", name, "--format", "{{json .Config}}"]);
    config_fields(&serde_json::from_str(&out).expect("config json"))
}

/// The lister of §6.3 (path, type, mode, owner, size or link target),
/// without the RUN mount placeholders.
fn tree(root: &Path) -> Vec<String> {
    let m = manifest(root);
    let mut out = Vec::new();
    for (path, e) in &m {
        let placeholder = matches!(
            path.as_str(),
            "etc/hosts" | "etc/hostname" | "etc/resolv.conf" | "run/.containerenv"
        ) && e.size == Some(0);
        if placeholder || path == "." || path == "run" || path.starts_with("run/") {
            continue;
        }
        let x = match e.kind {
            'f' => e.size.map(|s| s.to_string()).unwrap_or_default(),
            'l' => e.target.clone().unwrap_or_default(),
            _ => String::new(),
        };
        out.push(format!(
            "/{path}\t{}\t{:04o}\t{}:{}\t{x}",
            e.kind, e.mode, e.uid, e.gid
        ));
    }
    out
}

fn vigil_tree(v: &Vigil, name: &str, into: &Path) -> Vec<String> {
    let store = vigil_runner::image::Store::open_dir(&v.root()).expect("store");
    let record = store.resolve(name).expect("built image");
    fs::create_dir_all(into).expect("mkdir");
    record.flatten_into(into).expect("flatten");
    tree(into)
}

fn podman_tree(p: &Podman, name: &str) -> Vec<String> {
    let mount = p.ok(&["image", "mount", name]);
    let t = tree(Path::new(mount.trim()));
    p.ok(&["image", "unmount", name]);
    t
}

/// Builds `containerfile` in a context of `files` with both and compares.
fn compare(s: &Setup, name: &str, containerfile: &str, files: &[(&str, &str)], extra: &[&str]) {
    let ctx = s.dir.path().join(name);
    fs::create_dir_all(&ctx).expect("mkdir");
    write_tree(&ctx, files);
    fs::write(ctx.join("Containerfile"), containerfile).expect("write");
    let ctx_s = ctx.to_str().expect("utf-8");
    let tag = format!("cmp-{name}");
    let mut args: Vec<&str> = vec!["-t", &tag];
    args.extend_from_slice(extra);
    args.push(ctx_s);
    let out = vigil_build(&s.vigil, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "vigil build {name}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let vigil_config = vigil_config(&s.vigil, &tag);
    let vigil_files = vigil_tree(&s.vigil, &tag, &s.dir.path().join(format!("{name}-rootfs")));
    let Some(p) = &s.podman else {
        return;
    };
    let out = podman_build(p, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "podman build {name}\n{}",
        text(&out.stderr)
    );
    assert_eq!(vigil_config, podman_config(p, &tag), "{name}: config");
    let podman_files = podman_tree(p, &tag);
    let only_vigil: Vec<&String> = vigil_files
        .iter()
        .filter(|l| !podman_files.contains(l))
        .collect();
    let only_podman: Vec<&String> = podman_files
        .iter()
        .filter(|l| !vigil_files.contains(l))
        .collect();
    assert!(
        only_vigil.is_empty() && only_podman.is_empty(),
        "{name}: file trees differ\nonly vigil: {only_vigil:#?}\nonly podman: {only_podman:#?}"
    );
}

#[test]
fn config_instructions_and_copy_match_podman() {
    let Some(s) = setup("config_instructions_and_copy_match_podman", true) else {
        return;
    };
    compare(
        &s,
        "t1",
        r#"# a comment
FROM localhost/busybox:latest
LABEL maintainer="x" version=1.0
ENV A=1 B="two words"
ENV C 3 4
ARG FOO=bar
RUN echo "foo=$FOO A=$A" > /f.txt && rm -rf /tmp && mkdir /tmp && rm /bin/ls
WORKDIR /app/sub
WORKDIR rel
COPY hello.txt ./
COPY a.txt b.txt /multi/
COPY dir /dircopy
COPY --chown=1000:1000 a.txt /chowned/
COPY --chmod=640 a.txt /chmodded/
EXPOSE 80 443/udp
USER 1000:1000
VOLUME /data ["/data2"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh","-c"]
CMD ["echo hi"]
"#,
        &[
            ("hello.txt", "hello\n"),
            ("a.txt", "a\n"),
            ("b.txt", "bb\n"),
            ("dir/c.txt", "ccc\n"),
            ("dir/sub/d.txt", "d\n"),
        ],
        &[],
    );
    let v = &s.vigil;
    assert_eq!(
        v.ok(&["run", "--rm", "--entrypoint", "cat", "cmp-t1", "/f.txt"]),
        "foo=bar A=1\n"
    );
    assert_eq!(v.ok(&["run", "--rm", "cmp-t1"]), "hi\n");
}

#[test]
fn multi_stage_add_and_ignore_match_podman() {
    let Some(s) = setup("multi_stage_add_and_ignore_match_podman", true) else {
        return;
    };
    // The seed's shape: ADD of a tarball (auto-extracted), a long RUN script.
    let pkg = s.dir.path().join("pkgsrc");
    write_tree(
        &pkg,
        &[(
            "tinyweb-1.0/configure",
            "#!/bin/sh\necho \"PREFIX=$2\" > config.mk\necho configured\n",
        )],
    );
    let ctx = s.dir.path().join("t6");
    fs::create_dir_all(&ctx).expect("mkdir");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&pkg)
        .args(["--owner=1000", "--group=1000", "--mode=0755", "-czf"])
        .arg(ctx.join("tinyweb-1.0.tar.gz"))
        .arg("tinyweb-1.0")
        .status()
        .expect("tar");
    assert!(status.success());
    compare(
        &s,
        "t6",
        r#"ARG VER=1
FROM localhost/busybox:latest AS builder
ARG VER
RUN mkdir /out && echo "built v$VER" > /out/artifact && chmod 700 /out
COPY . /ctx/

FROM localhost/busybox:latest
ENV TINYWEB_VERSION=1.0 \
    PATH=/usr/local/nginx/sbin:$PATH
ADD tinyweb-${TINYWEB_VERSION}.tar.gz /usr/src/
RUN set -eux; \
    cd /usr/src/tinyweb-${TINYWEB_VERSION} \
    && ./configure --prefix /usr/local/nginx \
    && mkdir -p /usr/local/nginx/sbin \
    && mv config.mk /usr/local/nginx/ \
    && rm -rf /usr/src/tinyweb-${TINYWEB_VERSION} \
    && ln -sf /dev/stdout /usr/local/nginx/access.log
COPY --from=builder /out /final/
COPY --from=0 /ctx /ctxcopy
STOPSIGNAL SIGQUIT
EXPOSE 80
CMD ["cat", "/final/artifact"]
"#,
        &[
            ("src/keep/a.c", "a"),
            ("src/skip/b.c", "b"),
            ("logs/x.log", "x"),
            ("README.md", "r"),
            ("top.tmp", "t"),
            ("src/keep/n.tmp", "n"),
            ("important.tmp", "i"),
            (
                ".containerignore",
                "# comment\n*.tmp\n!important.tmp\nlogs\nsrc/skip/\n**/n.tmp\nContainerfile\n",
            ),
        ],
        &["--build-arg", "VER=7"],
    );
    assert_eq!(s.vigil.ok(&["run", "--rm", "cmp-t6"]), "built v7\n");
}

#[test]
fn failures_tag_nothing_and_rebuilds_hit_the_cache() {
    let Some(s) = setup("failures_tag_nothing_and_rebuilds_hit_the_cache", false) else {
        return;
    };
    let v = &s.vigil;
    let ctx = s.dir.path().join("fail");
    let cases: &[(&str, i32, &str)] = &[
        (
            "FROM localhost/busybox:latest\nRUN echo out; echo err >&2; exit 3\n",
            3,
            "Error: building at STEP \"RUN echo out; echo err >&2; exit 3\": while running runtime: exit status 3",
        ),
        (
            "FROM localhost/busybox:latest\nCOPY missing.txt /x/\n",
            125,
            "copier: stat: \"/missing.txt\": no such file or directory",
        ),
        (
            "FROM localhost/busybox:latest\nFOOBAR\n",
            125,
            "Error: building at STEP \"FOOBAR \": Build error: Unknown instruction: \"FOOBAR\"",
        ),
        ("RUN true\n", 125, "Error: no FROM statement found"),
        ("FROM localhost/nosuch\n", 125, "localhost/nosuch:latest: image not known"),
        (
            "FROM localhost/busybox:latest\nCOPY --from=nostage /x /y\n",
            125,
            "nostage",
        ),
        (
            "FROM localhost/busybox:latest\nCMD [1, 2]\n",
            125,
            "arrays must be comprised of strings only",
        ),
        (
            "FROM localhost/busybox:latest\nRUN --network=none true\n",
            125,
            "RUN only supports the --mount flag",
        ),
    ];
    for (file, code, message) in cases {
        write_tree(&ctx, &[("Containerfile", file)]);
        // --pull=never: a missing base is not looked for in a registry
        // (build_registry.rs covers pulling).
        let out = vigil_build(
            v,
            &["--pull=never", "-t", "failed", ctx.to_str().expect("utf-8")],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{file}\n{err}");
        assert!(err.contains(message), "{file}: {err}");
        assert!(
            !text(&v.run(&["images"]).stdout).contains("failed"),
            "{file}: tagged"
        );
    }
    let out = vigil_build(v, &["/nonexistent-context"]);
    assert_eq!(out.status.code(), Some(125));

    // The failing RUN's own output went through.
    write_tree(&ctx, &[("Containerfile", cases[0].0)]);
    let out = vigil_build(v, &[ctx.to_str().expect("utf-8")]);
    assert!(
        text(&out.stdout).contains("\nout\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).starts_with("err\n"),
        "{}",
        text(&out.stderr)
    );

    // Cache: same id on rebuild, a changed source misses from there on.
    let cache = s.dir.path().join("cache");
    write_tree(
        &cache,
        &[
            ("a.txt", "one\n"),
            (
                "Containerfile",
                "FROM localhost/busybox:latest\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nENV X=1\n",
            ),
        ],
    );
    let c = cache.to_str().expect("utf-8");
    let first = v.ok(&["build", "-q", c]);
    assert_eq!(first.lines().count(), 1, "{first}");
    let again = v.ok(&["build", c]);
    assert_eq!(again.matches("--> Using cache").count(), 3, "{again}");
    assert_eq!(again.lines().last(), first.lines().last());
    fs::write(cache.join("a.txt"), "two\n").expect("write");
    let changed = v.ok(&["build", c]);
    assert_eq!(changed.matches("--> Using cache").count(), 0, "{changed}");
    assert_ne!(changed.lines().last(), first.lines().last());
    let id = changed.lines().last().expect("id").to_string();
    assert_eq!(v.ok(&["run", "--rm", &id, "cat", "/b.txt"]), "two\n");
    let fresh = v.ok(&["build", "--no-cache", c]);
    assert_eq!(fresh.matches("Using cache").count(), 0);
    assert_ne!(fresh.lines().last(), Some(id.as_str()));
}

#[test]
fn parser_substitution_and_scratch_match_podman() {
    let Some(s) = setup("parser_substitution_and_scratch_match_podman", true) else {
        return;
    };
    // T2: escape directive, continuations with blank and comment lines,
    // JSON forms that fall back to shell form.
    compare(
        &s,
        "t2",
        "# escape=`\nfrom localhost/busybox:latest\n# comment between\nrun echo a `\n    b `\n\n    c > /x.txt\nRun [\"echo\", \"json\"  ]\ncmd [ \"echo\", bad ]\nENTRYPOINT [\"a\" \"b\"]\ncopy [\"hello.txt\", \"/dest dir/\"]\n",
        &[("hello.txt", "hello\n")],
        &[],
    );
    assert_eq!(
        s.vigil
            .ok(&["run", "--rm", "--entrypoint", "cat", "cmp-t2", "/x.txt"]),
        "a b c\n"
    );
    // T3: ARG/ENV substitution and --build-arg.
    compare(
        &s,
        "t3",
        r#"ARG BASE=localhost/busybox
ARG TAG
FROM ${BASE}:${TAG:-latest} AS first
ARG BASE
ARG V1=one
ARG UNSET
ENV E1=$V1 E2=${V1}x E3=${UNSET:-dflt} E4=${V1:+alt} E5=${UNSET:+alt} E6=\$V1 E7='$V1' E8="$V1 q" E9=${BASE}
ENV E10 ${V1} and more
LABEL l1=$V1 "l 2"="sp ace"
WORKDIR /w/$V1
EXPOSE ${PORT:-8080} 9090/udp
EXPOSE 8080/udp
RUN echo "V1=$V1 UNSET=[$UNSET] E1=$E1" > /tmp/r.txt
USER root
USER 1234:5
"#,
        &[],
        &["--build-arg", "V1=cli", "--build-arg", "NOTDECLARED=z"],
    );
    let v = &s.vigil;
    assert_eq!(
        v.ok(&["run", "--rm", "--user", "0", "cmp-t3", "cat", "/tmp/r.txt"]),
        "V1=cli UNSET=[] E1=cli\n"
    );
    let history: serde_json::Value =
        serde_json::from_str(&v.ok(&["image", "inspect", "cmp-t3"])).expect("json");
    let created_by: Vec<String> = history[0]["History"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect();
    for expected in [
        "/bin/sh -c #(nop) ARG BASE",
        "/bin/sh -c #(nop) ARG BASE V1",
        "|2 BASE=localhost/busybox V1=cli /bin/sh -c echo \"V1=$V1 UNSET=[$UNSET] E1=$E1\" > /tmp/r.txt",
        "/bin/sh -c #(nop) ENV E10 ${V1} and more",
    ] {
        assert!(created_by.iter().any(|c| c == expected), "{expected}\n{created_by:#?}");
    }
    // T9: scratch and the platform args.
    compare(
        &s,
        "t9",
        "FROM scratch\nCOPY s.txt /\nARG TARGETARCH\nARG TARGETPLATFORM\nENV T=$TARGETARCH P=$TARGETPLATFORM\nCMD [\"/s.txt\"]\n",
        &[("s.txt", "s\n")],
        &[],
    );
}

#[test]
fn deletions_become_whiteouts_like_podman() {
    let Some(s) = setup("deletions_become_whiteouts_like_podman", true) else {
        return;
    };
    compare(
        &s,
        "t5",
        "FROM localhost/busybox:latest\n\
         RUN mkdir -p /opt/x /opt/y && echo 1 > /opt/x/f && echo 1 > /opt/y/f && rm -rf /bin/ls /etc/group\n\
         RUN rm -rf /opt/x && mkdir /opt/x && echo 2 > /opt/x/g && rm -rf /opt/y && ln -s /opt/x/g /opt/link && ln /opt/x/g /opt/hard && mkfifo /opt/fifo && chown 12:34 /opt/x/g && chmod 4755 /opt/x/g\n\
         SHELL [\"/bin/sh\", \"-e\", \"-c\"]\n\
         CMD echo shellform\n\
         ENTRYPOINT exec sleep 1\n",
        &[],
        &[],
    );
    // The layer of the second RUN: an opaque /opt/x, a whiteout for /opt/y,
    // a hard-link entry.
    let store = vigil_runner::image::Store::open_dir(&s.vigil.root()).expect("store");
    let record = store.resolve("cmp-t5").expect("image");
    let dirs = record.layer_dirs();
    let top = dirs.last().expect("layers");
    let meta = fs::symlink_metadata(top.join("opt/y")).expect("whiteout of /opt/y");
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(meta.file_type().is_char_device() && meta.rdev() == 0);
    let below = &dirs[dirs.len() - 2];
    assert!(fs::symlink_metadata(below.join("bin/ls"))
        .expect("whiteout")
        .file_type()
        .is_char_device());
    let g = fs::symlink_metadata(top.join("opt/x/g")).expect("g");
    assert_eq!(
        (g.mode() & 0o7777, g.uid(), g.gid(), g.nlink()),
        (0o4755, 12, 34, 2)
    );
}

#[test]
fn sigint_removes_the_build_container_and_tags_nothing() {
    let Some(s) = setup("sigint_removes_the_build_container_and_tags_nothing", false) else {
        return;
    };
    let v = &s.vigil;
    let ctx = s.dir.path().join("sigint");
    write_tree(
        &ctx,
        &[(
            "Containerfile",
            "FROM localhost/busybox:latest\nRUN echo started; sleep 1000\n",
        )],
    );
    let mut cmd = v.command(&["build", "-t", "interrupted", ctx.to_str().expect("utf-8")]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn vigil build");
    let pid = child.id() as i32;
    v.wait_for(
        "the RUN container",
        std::time::Duration::from_secs(60),
        |v| text(&v.run(&["ps", "-q"]).stdout).trim().len() >= 12,
    );
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = e2e_support::wait_bounded(child, std::time::Duration::from_secs(60), "vigil build");
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("interrupted"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&v.run(&["ps", "-a", "-q"]).stdout),
        "",
        "build container left"
    );
    assert!(!text(&v.run(&["images"]).stdout).contains("interrupted"));
    let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root = v.root();
    assert!(
        !mounts.contains(root.to_str().expect("utf-8")),
        "mounts left below {}",
        root.display()
    );
}

#[test]
fn copy_fallback_gives_the_same_tree_as_overlay() {
    let Some(s) = setup("copy_fallback_gives_the_same_tree_as_overlay", false) else {
        return;
    };
    // A store path with a comma cannot go into overlay's mount options:
    // every step then works on a flat copy and is diffed against the image.
    let comma_root = s.dir.path().join("sto,re");
    let comma_run = s.dir.path().join("run2");
    let comma = |args: &[&str]| {
        let mut c = Command::new(&s.vigil.bin);
        c.arg("--root")
            .arg(&comma_root)
            .arg("--runroot")
            .arg(&comma_run)
            .arg("--conmon")
            .arg(&s.vigil.conmon)
            .args(args);
        e2e_support::run_bounded(&mut c, b"", std::time::Duration::from_secs(120))
    };
    let archive = s.dir.path().join("busybox.tar");
    assert!(comma(&["load", "-i", archive.to_str().expect("utf-8")])
        .status
        .success());
    let ctx = s.dir.path().join("fallback");
    write_tree(
        &ctx,
        &[
            ("a.txt", "a\n"),
            (
                "Containerfile",
                "FROM localhost/busybox:latest\n\
                 RUN mkdir -p /opt/x /opt/y && echo 1 > /opt/x/f && rm -rf /bin/ls /etc/group\n\
                 COPY a.txt /opt/x/\n\
                 RUN rm -rf /opt/x /opt/y && mkdir /opt/x && echo 2 > /opt/x/g && ln /opt/x/g /opt/h && chmod 4755 /opt/x/g\n",
            ),
        ],
    );
    let c = ctx.to_str().expect("utf-8");
    let out = comma(&["build", "-t", "fallback", c]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = vigil_build(&s.vigil, &["-t", "fallback", c]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let flat = |root: &Path, into: &Path| {
        let store = vigil_runner::image::Store::open_dir(root).expect("store");
        let record = store.resolve("fallback").expect("built");
        fs::create_dir_all(into).expect("mkdir");
        record.flatten_into(into).expect("flatten");
        tree(into)
    };
    let copied = flat(&comma_root, &s.dir.path().join("flat-copy"));
    let overlaid = flat(&s.vigil.root(), &s.dir.path().join("flat-overlay"));
    assert_eq!(copied, overlaid);
    assert!(copied.iter().any(|l| l.starts_with("/opt/x/g\tf\t4755")));
    assert!(!copied
        .iter()
        .any(|l| l.starts_with("/opt/y") || l.starts_with("/bin/ls\t")));
    let store = vigil_runner::image::Store::open_dir(&comma_root).expect("store");
    assert_eq!(store.resolve("fallback").expect("built").layers.len(), 4);
    e2e_support::unmount_below(&comma_root);
}

#[test]
fn copy_add_matrix_mounts_and_docker_format_match_podman() {
    let Some(s) = setup(
        "copy_add_matrix_mounts_and_docker_format_match_podman",
        true,
    ) else {
        return;
    };
    // T4: archives (gzip, bzip2, xz) extracted, a compressed non-tar kept,
    // a top-level symlink followed, `..` clamped at the context, mtimes kept.
    let ctx = s.dir.path().join("t4");
    write_tree(
        &ctx,
        &[
            ("a.txt", "a\n"),
            ("b.txt", "bb\n"),
            ("pkg/install.sh", "#!/bin/sh\necho installed\n"),
        ],
    );
    let sh = |script: &str| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&ctx)
            .status()
            .expect("sh")
            .success();
        assert!(ok, "{script}");
    };
    sh(
        "chmod 600 b.txt && chmod 755 pkg/install.sh && ln -s a.txt link.txt \
        && touch -d '2001-02-03 04:05:06' a.txt \
        && tar -czf pkg.tar.gz pkg && tar -cjf pkg.tar.bz2 pkg && tar -cJf pkg.tar.xz pkg \
        && gzip -c a.txt > a.txt.gz && rm -r pkg",
    );
    compare(
        &s,
        "t4",
        "FROM localhost/busybox:latest\n\
         COPY a.txt /one/\n\
         COPY a.txt /two\n\
         COPY *.txt /glob/\n\
         COPY link.txt /links/\n\
         COPY --chown=root:0 a.txt /chowned2/\n\
         ADD pkg.tar.gz /usr/src/\n\
         ADD pkg.tar.bz2 /bz/\n\
         ADD pkg.tar.xz /xz/\n\
         COPY pkg.tar.gz /copytar/\n\
         ADD a.txt.gz /gz/\n\
         ADD a.txt /added.txt\n\
         COPY ../a.txt /up/\n\
         WORKDIR /wd\n\
         COPY a.txt rel/\n\
         COPY a.txt .\n",
        &[],
        &[],
    );
    let mtime = s
        .vigil
        .ok(&["run", "--rm", "cmp-t4", "stat", "-c", "%Y", "/one/a.txt"]);
    assert_eq!(mtime.trim(), "981173106");
    // An unknown --chown user fails like Podman's.
    fs::write(
        ctx.join("Containerfile"),
        "FROM localhost/busybox:latest\nCOPY --chown=nosuchuser a.txt /x/\n",
    )
    .expect("write");
    let out = vigil_build(&s.vigil, &[ctx.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("unknown user error looking up user \"nosuchuser\""),
        "{}",
        text(&out.stderr)
    );
    // T10: RUN --mount bind and tmpfs; the targets are not in the image.
    compare(
        &s,
        "t10",
        "FROM localhost/busybox:latest\n\
         RUN --mount=type=bind,source=f.txt,target=/mnt/f.txt cat /mnt/f.txt > /copied.txt\n\
         RUN --mount=type=tmpfs,target=/tt touch /tt/a && ls /tt\n",
        &[("f.txt", "hi")],
        &[],
    );
    assert_eq!(
        s.vigil
            .ok(&["run", "--rm", "cmp-t10", "cat", "/copied.txt"]),
        "hi"
    );
    // Docker format: Shell, Healthcheck, OnBuild kept; SHELL used by RUN.
    compare(
        &s,
        "t1d",
        "FROM localhost/busybox:latest\n\
         SHELL [\"/bin/sh\", \"-e\", \"-c\"]\n\
         RUN echo \"shell=$0\" > /shell.txt\n\
         HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD echo ok\n\
         ONBUILD RUN echo onbuild\n\
         CMD echo shellform\n",
        &[],
        &["--format", "docker"],
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&s.vigil.ok(&["image", "inspect", "cmp-t1d"])).expect("json");
    let raw = vigil_runner::image::Store::open_dir(&s.vigil.root())
        .expect("store")
        .resolve("cmp-t1d")
        .expect("image")
        .raw_config()
        .expect("config");
    assert_eq!(
        raw["config"]["Shell"],
        serde_json::json!(["/bin/sh", "-e", "-c"])
    );
    assert_eq!(
        raw["config"]["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "echo ok"], "Interval": 5000000000u64, "Timeout": 2000000000u64, "Retries": 3})
    );
    assert_eq!(
        raw["config"]["OnBuild"],
        serde_json::json!(["RUN echo onbuild"])
    );
    assert!(raw.get("container_config").is_some(), "{inspect}");
    if let Some(p) = &s.podman {
        let praw: serde_json::Value = serde_json::from_str(&p.ok(&[
            "image",
            "inspect",
            "cmp-t1d",
            "--format",
            "{{json .HealthCheck}}",
        ]))
        .expect("json");
        assert_eq!(praw["Test"], raw["config"]["Healthcheck"]["Test"]);
    }
}

#[test]
fn target_and_quiet_build_only_what_is_asked() {
    let Some(s) = setup("target_and_quiet_build_only_what_is_asked", false) else {
        return;
    };
    let ctx = s.dir.path().join("target");
    write_tree(
        &ctx,
        &[(
            "Containerfile",
            "FROM localhost/busybox:latest AS builder\nRUN echo visible-run-output > /b\n\
             FROM localhost/busybox:latest\nCOPY --from=builder /b /b\nRUN exit 9\n",
        )],
    );
    let iid = s.dir.path().join("iid");
    let out = vigil_build(
        &s.vigil,
        &[
            "--target",
            "builder",
            "-q",
            "--iidfile",
            iid.to_str().expect("utf-8"),
            ctx.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = text(&out.stdout);
    assert_eq!(id.len(), 65, "only the id: {id:?}");
    assert_eq!(
        fs::read_to_string(&iid).expect("iidfile"),
        format!("sha256:{}", id.trim())
    );
    assert_eq!(
        s.vigil.ok(&["run", "--rm", id.trim(), "cat", "/b"]),
        "visible-run-output\n"
    );
    let out = vigil_build(
        &s.vigil,
        &["--target", "nosuch", ctx.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn onbuild_triggers_of_the_base_run_in_the_child() {
    let Some(s) = setup("onbuild_triggers_of_the_base_run_in_the_child", false) else {
        return;
    };
    let v = &s.vigil;
    let parent = s.dir.path().join("parent");
    write_tree(
        &parent,
        &[(
            "Containerfile",
            "FROM localhost/busybox:latest\nONBUILD RUN echo triggered > /trigger.txt\n",
        )],
    );
    v.ok(&[
        "build",
        "--format",
        "docker",
        "-t",
        "parent",
        parent.to_str().expect("utf-8"),
    ]);
    let child = s.dir.path().join("child");
    write_tree(
        &child,
        &[(
            "Containerfile",
            "FROM localhost/parent\nCMD [\"cat\", \"/trigger.txt\"]\n",
        )],
    );
    v.ok(&[
        "build",
        "--format",
        "docker",
        "-t",
        "child",
        child.to_str().expect("utf-8"),
    ]);
    assert_eq!(v.ok(&["run", "--rm", "child"]), "triggered\n");
    let raw = vigil_runner::image::Store::open_dir(&v.root())
        .expect("store")
        .resolve("child")
        .expect("child")
        .raw_config()
        .expect("config");
    assert!(raw["config"].get("OnBuild").is_none(), "{raw}");
}

#[test]
fn hostile_archives_and_inputs_are_refused_or_contained() {
    let Some(s) = setup(
        "hostile_archives_and_inputs_are_refused_or_contained",
        false,
    ) else {
        return;
    };
    let v = &s.vigil;
    let ctx = s.dir.path().join("hostile");
    fs::create_dir_all(&ctx).expect("mkdir");
    // An archive whose entries climb out with `..` and through a symlink.
    let mut b = tar::Builder::new(Vec::new());
    let mut entry = |name: &[u8], kind: tar::EntryType, link: Option<&str>, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().expect("gnu").name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).expect("link");
        }
        h.set_cksum();
        b.append(&h, data).expect("append");
    };
    entry(
        b"../../../../escaped.txt",
        tar::EntryType::Regular,
        None,
        b"x",
    );
    entry(b"up", tar::EntryType::Symlink, Some("/"), b"");
    entry(b"up/etc/passwd-evil", tar::EntryType::Regular, None, b"y");
    fs::write(ctx.join("evil.tar"), b.into_inner().expect("tar")).expect("write");
    write_tree(
        &ctx,
        &[(
            "Containerfile",
            "FROM localhost/busybox:latest\nADD evil.tar /dest/\n",
        )],
    );
    let out = vigil_build(v, &["-t", "hostile", ctx.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let root = s.dir.path().join("hostile-rootfs");
    let files = vigil_tree(v, "hostile", &root);
    // `..` stops at the destination; the symlink resolves inside the rootfs.
    assert!(
        files.iter().any(|l| l.starts_with("/dest/escaped.txt\tf")),
        "{files:#?}"
    );
    assert!(
        files.iter().any(|l| l.starts_with("/etc/passwd-evil\tf")),
        "{files:#?}"
    );
    assert!(!Path::new("/escaped.txt").exists() && !Path::new("/etc/passwd-evil").exists());

    // A Containerfile over 1 MiB, a context that is a file.
    fs::write(
        ctx.join("Containerfile"),
        format!("FROM scratch\n#{}\n", "x".repeat(1 << 20)),
    )
    .expect("write");
    let out = vigil_build(v, &[ctx.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("larger than 1048576 bytes"),
        "{}",
        text(&out.stderr)
    );
    let out = vigil_build(v, &[ctx.join("evil.tar").to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("is not a directory"),
        "{}",
        text(&out.stderr)
    );
}

/// The interface names of this process's network namespace.
fn host_interfaces() -> std::collections::BTreeSet<String> {
    let dev = fs::read_to_string("/proc/net/dev").expect("/proc/net/dev");
    dev.lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
fn run_networks_match_podman_build() {
    let Some(s) = setup("run_networks_match_podman_build", true) else {
        return;
    };
    let ctx = s.dir.path().join("net");
    write_tree(
        &ctx,
        &[(
            "Containerfile",
            "FROM localhost/busybox:latest\n\
             RUN awk -F: 'NR>2{gsub(/ /,\"\",$1); print $1}' /proc/net/dev | sort | tr '\\n' ' ' > /net.txt\n",
        )],
    );
    let c = ctx.to_str().expect("utf-8");
    let shown = |tag: &str| {
        s.vigil
            .ok(&["run", "--rm", "--network", "none", tag, "cat", "/net.txt"])
    };
    // The default, as `podman build`'s: a namespace of its own on the
    // default network (eth0 on the `vigil` bridge, as root).
    let out = s.vigil.run(&["build", "-t", "net-default", c]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(shown("net-default"), "eth0 lo ");
    let out = s
        .vigil
        .run(&["build", "--network", "private", "-t", "net-private", c]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(shown("net-private"), "eth0 lo ");
    // none: loopback only. host: the host's interfaces (other tests' veths
    // come and go meanwhile: those present before and after must be there).
    let before = host_interfaces();
    let check = |mode: &str, shown: &str, who: &str| {
        let names: std::collections::BTreeSet<String> =
            shown.split_whitespace().map(String::from).collect();
        if mode == "none" {
            assert_eq!(shown, "lo ", "{who} build --network=none");
        } else {
            let after = host_interfaces();
            let stable: Vec<&String> = before.intersection(&after).collect();
            assert!(
                stable.iter().all(|n| names.contains(*n)),
                "{who} build --network=host: {shown:?} lacks some of {stable:?}"
            );
        }
    };
    for mode in ["none", "host"] {
        let tag = format!("net-{mode}");
        let flag = format!("--network={mode}");
        let out = s.vigil.run(&["build", &flag, "-t", &tag, c]);
        assert!(out.status.success(), "{mode}: {}", text(&out.stderr));
        check(mode, &shown(&tag), "vigil");
        let Some(p) = &s.podman else { continue };
        // buildah's cache key leaves the network out: build it afresh.
        let out = p.run(&["build", "--pull=never", "--no-cache", &flag, "-t", &tag, c]);
        assert!(out.status.success(), "podman {mode}: {}", text(&out.stderr));
        let podman_shown = p.ok(&["run", "--rm", "--network", "none", &tag, "cat", "/net.txt"]);
        check(mode, &podman_shown, "podman");
    }
    let out = s
        .vigil
        .run(&["build", "--network", "nosuchnet", "-t", "net-bad", c]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nosuchnet"),
        "{}",
        text(&out.stderr)
    );
}

/// `.Created` and the rootfs layer count of an image, from `inspect` JSON.
fn created_and_layers(inspect: &str) -> (String, usize) {
    let v: serde_json::Value = serde_json::from_str(inspect).expect("inspect json");
    let img = &v[0];
    (
        img["Created"].as_str().unwrap_or_default().to_string(),
        img["RootFS"]["Layers"].as_array().map_or(0, Vec::len),
    )
}

#[test]
fn timestamp_squash_all_and_platform_match_podman() {
    let Some(s) = setup("timestamp_squash_all_and_platform_match_podman", true) else {
        return;
    };
    let containerfile = "FROM localhost/busybox:latest\n\
                         COPY a.txt /a.txt\n\
                         RUN echo b > /b.txt && mkdir /d\n";
    let files = [("a.txt", "a\n")];
    // --timestamp 0: created at the epoch, new files with mtime 0.
    compare(
        &s,
        "ts",
        containerfile,
        &files,
        &["--no-cache", "--timestamp", "0"],
    );
    let (created, layers) = created_and_layers(&s.vigil.ok(&["image", "inspect", "cmp-ts"]));
    assert_eq!((created.as_str(), layers), ("1970-01-01T00:00:00Z", 3));
    let rootfs = s.dir.path().join("ts-mtimes");
    vigil_tree(&s.vigil, "cmp-ts", &rootfs);
    let mtimes = |root: &Path| -> Vec<i64> {
        ["a.txt", "b.txt", "d"]
            .iter()
            .map(|f| {
                use std::os::unix::fs::MetadataExt;
                fs::symlink_metadata(root.join(f)).expect("stat").mtime()
            })
            .collect()
    };
    assert_eq!(mtimes(&rootfs), [0, 0, 0]);
    // ... and reproduces: the same image ID built afresh.
    let again = vigil_build(
        &s.vigil,
        &[
            "-q",
            "--no-cache",
            "--timestamp",
            "0",
            s.dir.path().join("ts").to_str().expect("utf-8"),
        ],
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    let first = s
        .vigil
        .ok(&["image", "inspect", "--format", "{{.Id}}", "cmp-ts"]);
    assert_eq!(text(&again.stdout).trim(), first.trim());
    if let Some(p) = &s.podman {
        let (created, layers) = created_and_layers(&p.ok(&["image", "inspect", "cmp-ts"]));
        assert_eq!((created.as_str(), layers), ("1970-01-01T00:00:00Z", 3));
        let mount = p.ok(&["image", "mount", "cmp-ts"]);
        let podman_mtimes = mtimes(Path::new(mount.trim()));
        p.ok(&["image", "unmount", "cmp-ts"]);
        assert_eq!(podman_mtimes, [0, 0, 0]);
    }
    // --squash-all: one layer holding the base's files and the new ones.
    compare(&s, "sqall", containerfile, &files, &["--squash-all"]);
    let (_, layers) = created_and_layers(&s.vigil.ok(&["image", "inspect", "cmp-sqall"]));
    assert_eq!(layers, 1);
    if let Some(p) = &s.podman {
        let (_, layers) = created_and_layers(&p.ok(&["image", "inspect", "cmp-sqall"]));
        assert_eq!(layers, 1);
    }
    // --platform: this machine's is accepted, another is refused by name.
    let host = vigil_runner::image::oci::Platform::host().display();
    let ctx = s.dir.path().join("sqall");
    let c = ctx.to_str().expect("utf-8");
    let out = vigil_build(&s.vigil, &["--platform", &host, "-q", c]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let other = if host.contains("s390x") {
        "linux/arm64"
    } else {
        "linux/s390x"
    };
    let out = vigil_build(&s.vigil, &["--platform", other, "-t", "wrong-arch", c]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("--platform {other}")) && err.contains(&host),
        "{err}"
    );
    assert!(!text(&s.vigil.run(&["images"]).stdout).contains("wrong-arch"));
    // A list (Podman: one image per platform and a manifest list): only
    // this machine's platform in it builds; another is named with the flag.
    let out = vigil_build(
        &s.vigil,
        &["--platform", &format!("{host},{host}"), "-q", c],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = format!("{host},{other}");
    let out = vigil_build(&s.vigil, &["--platform", &list, "-t", "wrong-arch", c]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("--platform {other}"))
            && err.contains(&format!("--platform {list}"))
            && err.contains("manifest list"),
        "{err}"
    );
    assert!(!text(&s.vigil.run(&["images"]).stdout).contains("wrong-arch"));
}

/// The diff IDs of an image, from `inspect` JSON.
fn diff_ids(inspect: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(inspect).expect("inspect json");
    v[0]["RootFS"]["Layers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn commit_keeps_the_base_layers_like_podman() {
    let Some(s) = setup("commit_keeps_the_base_layers_like_podman", true) else {
        return;
    };
    // `commit` adds the container's changes as one layer through the same
    // writer and image path as `build`; the base's layers stay as they are.
    let base = diff_ids(&s.vigil.ok(&["image", "inspect", BASE]));
    assert_eq!(base.len(), 1);
    s.vigil.ok(&[
        "run",
        "--name",
        "committed",
        "--network",
        "none",
        BASE,
        "sh",
        "-c",
        "echo new > /new.txt && rm /bin/ls",
    ]);
    s.vigil.ok(&["commit", "-q", "committed", "committed-img"]);
    let inspect = s.vigil.ok(&["image", "inspect", "committed-img"]);
    let ids = diff_ids(&inspect);
    assert_eq!((ids.len(), &ids[0]), (2, &base[0]), "{ids:?}");
    // Recorded with a manifest, as Podman's commit is: it has a digest.
    let v: serde_json::Value = serde_json::from_str(&inspect).expect("inspect json");
    assert!(
        v[0]["Digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{inspect}"
    );
    let vigil_files = vigil_tree(&s.vigil, "committed-img", &s.dir.path().join("committed"));
    assert!(vigil_files.iter().any(|l| l.starts_with("/new.txt\t")));
    assert!(!vigil_files.iter().any(|l| l.starts_with("/bin/ls\t")));
    if let Some(p) = &s.podman {
        let podman_base = diff_ids(&p.ok(&["image", "inspect", BASE]));
        p.ok(&[
            "run",
            "--name",
            "committed",
            "--network",
            "none",
            BASE,
            "sh",
            "-c",
            "echo new > /new.txt && rm /bin/ls",
        ]);
        p.ok(&["commit", "-q", "committed", "committed-img"]);
        let podman_ids = diff_ids(&p.ok(&["image", "inspect", "committed-img"]));
        assert_eq!((podman_ids.len(), &podman_ids[0]), (2, &podman_base[0]));
        // Podman's containers get an `/etc/mtab -> /proc/mounts` link in
        // their rootfs, which its commit keeps; vigil's do not have one.
        let podman_files: Vec<String> = podman_tree(p, "committed-img")
            .into_iter()
            .filter(|l| !l.starts_with("/etc/mtab\t"))
            .collect();
        let differ: Vec<&String> = vigil_files
            .iter()
            .filter(|l| !podman_files.contains(l))
            .chain(podman_files.iter().filter(|l| !vigil_files.contains(l)))
            .collect();
        assert!(differ.is_empty(), "commit trees differ: {differ:#?}");
        p.ok(&["rm", "committed"]);
    }
    s.vigil.ok(&["rm", "committed"]);
}
