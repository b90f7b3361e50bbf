//! The root file system vigil unpacks equals the one Podman unpacks for the
//! same image archive: paths, types, modes (setuid/setgid/sticky included),
//! owners, sizes, symlink targets, content digests, device numbers, xattrs,
//! hard-link grouping and mtimes.
//!
//! Each archive is loaded into a private vigil store (`vigil load -i`) and a
//! private Podman store (`podman load -i`, vfs driver: each layer applied onto
//! a copy of its parent, which is the flattened image; the overlay driver
//! refuses hard links to lower-layer files, which one of the images has).
//! Podman's side is `podman image mount`. vigil's side is checked twice: the
//! overlay mount a container gets (`container::rootfs::mount` of the image's
//! layer directories) and the flat copy used when overlay is unavailable
//! (`ImageRecord::flatten_into`).
//!
//! Images (multi-layer, built offline): `multi` (scripts/make-test-images:
//! umoci, explicit whiteouts, an opaque directory, a cross-layer hard link),
//! `built` (podman build: RUN/COPY/ADD, xattrs, a real opaque directory),
//! `churn` (umoci plus a hand-made layer: deletions and type changes across
//! layers, PAX xattrs, long names), `minbase` (debootstrap in 3 layers).
//! Skipped with a message when not root or without podman.

mod e2e_support;

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use e2e_support::{
    diff, e2e_image_file, manifest, test_images, text, vigil_or_skip, Compare, Manifest, Podman,
};
use vigil_runner::container::record::RootfsSource;
use vigil_runner::container::rootfs;
use vigil_runner::image::store::Store;

/// The two views of the image in vigil's store `root`.
fn vigil_views(root: &Path, name: &str, scratch: &Path) -> (Manifest, Manifest) {
    let store = Store::open_dir(root).expect("open store");
    let _lock = store.lock_shared().expect("lock store");
    let record = store.resolve(name).expect("image in vigil's store");
    assert!(record.layers.len() > 1, "{name} should have several layers");

    let flat = scratch.join("flat");
    std::fs::create_dir(&flat).expect("mkdir flat");
    let warnings = record.flatten_into(&flat).expect("flatten");
    assert!(warnings.is_empty(), "flatten warnings: {warnings:?}");
    let flat_manifest = manifest(&flat);

    let data = scratch.join("ctr");
    let kind = rootfs::mount(&RootfsSource::Layers(record.layer_dirs()), &data, None)
        .expect("mount the layers as a container would");
    let merged = rootfs::rootfs_path(&data);
    let overlay_manifest = manifest(&merged);
    rootfs::unmount(&data).expect("unmount");
    eprintln!("{name}: vigil rootfs mount kind {kind:?}");
    (overlay_manifest, flat_manifest)
}

fn report(image: &str, view: &str, diffs: &[String]) -> String {
    let shown: Vec<&String> = diffs.iter().take(150).collect();
    format!(
        "{image}: {} difference(s) between podman and vigil ({view}):\n{}{}",
        diffs.len(),
        shown.iter().map(|s| format!("  {s}\n")).collect::<String>(),
        if diffs.len() > shown.len() {
            "  ...\n"
        } else {
            ""
        }
    )
}

/// Podman's root file system of `archive` with storage `driver`, or why not.
fn podman_view(driver: &str, archive: &str, name: &str) -> Result<Manifest, String> {
    let podman = Podman::new(driver)?;
    let t = Instant::now();
    let out = podman.run(&["load", "-q", "-i", archive]);
    if !out.status.success() {
        return Err(format!(
            "podman load ({driver}): {}",
            text(&out.stderr).trim()
        ));
    }
    eprintln!("  podman load ({driver}): {:?}", t.elapsed());
    let mount = podman.ok(&["image", "mount", name]);
    let reference = manifest(Path::new(mount.trim()));
    podman.ok(&["image", "unmount", name]);
    assert!(
        reference.len() > 10,
        "podman's rootfs of {name} looks empty: {reference:?}"
    );
    Ok(reference)
}

/// Load `archive` into vigil and Podman and compare: vigil's overlay mount
/// with Podman's overlay driver (what a container sees with either), and
/// vigil's flat copy with Podman's vfs driver (both apply each layer onto
/// the result of the layers below). Directory mtimes are compared only
/// between the overlay views: for a directory that a layer changes without
/// an entry of its own (umoci writes none for the parents of a whiteout) the
/// flat result depends on the unpacker. When Podman's overlay driver cannot
/// load the image (a hard link to a lower-layer file), vigil's overlay view
/// is compared with the vfs one, except for `overlay_exceptions` paths.
fn check(test: &str, archive: &Path, name: &str, overlay_exceptions: &[&str]) {
    let Some(v) = vigil_or_skip(test) else {
        return;
    };
    let archive_s = archive.to_str().expect("utf-8 path");
    // Anything unpacked from here on that has a newer mtime got it from the unpacking.
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        - 1;
    let vfs = match podman_view("vfs", archive_s, name) {
        Ok(m) => m,
        Err(why) => return eprintln!("skipping {test}: {why}"),
    };
    let overlay_ref = podman_view("overlay", archive_s, name);

    let t = Instant::now();
    let out = v.ok(&["load", "-i", archive_s]);
    assert!(out.contains(name), "vigil load output: {out}");
    eprintln!("  vigil load: {:?}", t.elapsed());
    let scratch = tempfile::Builder::new()
        .prefix("vigil-parity-")
        .tempdir()
        .expect("tempdir");
    let (overlay, flat) = vigil_views(&v.root(), name, scratch.path());

    let strict = Compare {
        fresh_after: Some(started),
        dir_mtimes: true,
    };
    let no_dir_mtimes = Compare {
        fresh_after: Some(started),
        dir_mtimes: false,
    };
    let mut failures = String::new();
    let diffs = diff("podman", &vfs, "vigil", &flat, &no_dir_mtimes);
    if !diffs.is_empty() {
        failures += &report(name, "vigil flat copy vs podman vfs", &diffs);
    }
    match &overlay_ref {
        Ok(reference) => {
            // The root of `podman image mount` with overlay is its read-only
            // mount point (mode 0555), not the image's root directory.
            let (mut reference, mut overlay) = (reference.clone(), overlay.clone());
            reference.remove(".");
            overlay.remove(".");
            let diffs = diff("podman", &reference, "vigil", &overlay, &strict);
            if !diffs.is_empty() {
                failures += &report(name, "vigil overlay mount vs podman overlay", &diffs);
            }
        }
        Err(why) => {
            eprintln!("  {why}\n  comparing vigil's overlay mount with podman vfs instead");
            let diffs: Vec<String> = diff("podman", &vfs, "vigil", &overlay, &no_dir_mtimes)
                .into_iter()
                .filter(|d| {
                    !overlay_exceptions
                        .iter()
                        .any(|e| d.starts_with(&format!("differs: {e}\n")))
                })
                .collect();
            if !diffs.is_empty() {
                failures += &report(name, "vigil overlay mount vs podman vfs", &diffs);
            }
        }
    }
    eprintln!("{test}: {} paths compared", vfs.len());
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn parity_umoci_multi_whiteouts_opaque_cross_layer_hardlink() {
    let test = "parity_umoci_multi_whiteouts_opaque_cross_layer_hardlink";
    match test_images() {
        Ok(dir) => check(test, &dir.join("docker.tar"), "localhost/test:multi", &[]),
        Err(why) => eprintln!("skipping {test}: {why}"),
    }
}

#[test]
fn parity_podman_build_oci_archive() {
    let test = "parity_podman_build_oci_archive";
    if let Some(a) = e2e_image_file(test, "built", "built-oci.tar") {
        check(test, &a, "localhost/e2e-built:1", &[]);
    }
}

#[test]
fn parity_churn_deletions_across_layers() {
    let test = "parity_churn_deletions_across_layers";
    if let Some(a) = e2e_image_file(test, "churn", "churn-docker.tar") {
        check(test, &a, "localhost/e2e-churn:1", &[]);
    }
}

#[test]
fn parity_debian_minbase() {
    let test = "parity_debian_minbase";
    if let Some(a) = e2e_image_file(test, "minbase", "minbase-docker.tar") {
        let kind = std::fs::read(a.parent().unwrap().join("MINBASE_KIND")).unwrap_or_default();
        eprintln!("{test}: minbase image is {}", text(&kind).trim());
        check(test, &a, "localhost/e2e-minbase:1", &[]);
    }
}
