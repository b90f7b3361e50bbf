//! `vigil diff`: what a container changed in its image (`A`, `C`, `D` lines),
//! or what an image's top layer changed in its parent.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Args;

use super::output::{engine_err, print_out};
use crate::container::{record::MountKind, Engine};
use crate::context::Context;
use crate::error::RunnerError;
use crate::fsroot::{sys, Root};

#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// Output: `json` ({"changed":[...],"added":[...],"deleted":[...]})
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Act on the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// A container or an image
    #[arg(value_name = "CONTAINER|IMAGE")]
    pub target: Option<String>,
}

/// Paths the engine manages in every container: never reported (Podman's list).
pub const ENGINE_PATHS: [&str; 11] = [
    "/dev",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/proc",
    "/run",
    "/run/notify",
    "/run/.containerenv",
    "/run/secrets",
    "/sys",
    "/etc/mtab",
];

/// The kind of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Changed,
    Deleted,
}

/// Changes of the overlay `upper` directory over `lowers` (top-most first):
/// a whiteout is `D`, a path that exists below is `C`, else `A`; an opaque
/// directory is `C` and what it hides below is `D`. `/run/vigil-init` and
/// the engine paths are left out.
pub fn changes(upper: &Path, lowers: &[&Path]) -> Result<BTreeMap<String, Change>, RunnerError> {
    let mut out = BTreeMap::new();
    let root = Root::open(upper).map_err(|e| RunnerError::io(upper.display().to_string(), e))?;
    let lower_roots: Vec<Root> = lowers.iter().filter_map(|l| Root::open(l).ok()).collect();
    walk(root.fd(), "", &lower_roots, &mut out)
        .map_err(|e| RunnerError::io("comparing the layers", e))?;
    out.retain(|p, _| !ENGINE_PATHS.contains(&p.as_str()) && p != crate::spec::INIT_PATH);
    Ok(out)
}

fn exists_below(lowers: &[Root], path: &str) -> bool {
    lowers.iter().any(|l| {
        let parts = crate::fsroot::clean(path.as_bytes());
        let Some((last, parents)) = parts.split_last() else {
            return true;
        };
        let mut dir = match sys::open_dir(l.fd(), b".") {
            Ok(d) => d,
            Err(_) => return false,
        };
        for p in parents {
            match sys::open_dir(std::os::fd::AsFd::as_fd(&dir), p) {
                Ok(d) => dir = d,
                Err(_) => return false,
            }
        }
        matches!(
            sys::lstat_opt(std::os::fd::AsFd::as_fd(&dir), last),
            Ok(Some(_))
        )
    })
}

fn walk(
    dir: std::os::fd::BorrowedFd<'_>,
    prefix: &str,
    lowers: &[Root],
    out: &mut BTreeMap<String, Change>,
) -> std::io::Result<()> {
    let mut names = sys::list_dir(dir)?;
    names.sort();
    for name in names {
        let path = format!("{prefix}/{}", String::from_utf8_lossy(&name));
        let st = sys::lstat(dir, &name)?;
        let kind = sys::file_type(&st);
        if kind == libc::S_IFCHR && st.st_rdev == 0 {
            out.insert(path, Change::Deleted);
            continue;
        }
        let below = exists_below(lowers, &path);
        out.insert(
            path.clone(),
            if below {
                Change::Changed
            } else {
                Change::Added
            },
        );
        if kind == libc::S_IFDIR {
            let fd = sys::open_dir(dir, &name)?;
            walk(std::os::fd::AsFd::as_fd(&fd), &path, lowers, out)?;
        }
    }
    Ok(())
}

/// `C`/`A`/`D` lines, or Podman's JSON.
pub fn render(changes: &BTreeMap<String, Change>, json: bool) -> String {
    if json {
        let pick = |want: Change| -> Vec<&String> {
            changes
                .iter()
                .filter(|(_, c)| **c == want)
                .map(|(p, _)| p)
                .collect()
        };
        let mut o = serde_json::Map::new();
        for (key, kind) in [
            ("changed", Change::Changed),
            ("added", Change::Added),
            ("deleted", Change::Deleted),
        ] {
            let list = pick(kind);
            if !list.is_empty() {
                o.insert(key.into(), serde_json::json!(list));
            }
        }
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"     ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        let _ = serde::Serialize::serialize(&serde_json::Value::Object(o), &mut ser);
        return format!("{}\n", String::from_utf8_lossy(&buf));
    }
    changes
        .iter()
        .map(|(p, c)| {
            let letter = match c {
                Change::Added => 'A',
                Change::Changed => 'C',
                Change::Deleted => 'D',
            };
            format!("{letter} {p}\n")
        })
        .collect()
}

pub fn handle(ctx: &Context, args: &DiffArgs) -> Result<i32, RunnerError> {
    let json = match args.format.as_deref() {
        None => false,
        Some("json") => true,
        Some(other) => {
            return Err(RunnerError::Engine(format!(
                "unsupported format {other:?} (json)"
            )))
        }
    };
    let engine = Engine::new(ctx);
    let target = match (&args.target, args.latest) {
        (_, true) => super::latest::latest(&engine)?.id,
        (Some(t), false) => t.clone(),
        (None, false) => return Err(super::latest::no_names()),
    };
    if let Some(id) = engine.store.lookup(&target)? {
        let rec = engine.refresh_locked(&id)?;
        if rec.mounted == Some(MountKind::Copy) || rec.userns.is_some() {
            return Err(RunnerError::Engine(format!(
                "diff of container {}: its root file system is a copy (vfs driver or a user \
                 namespace of its own), not an overlay layer",
                rec.name
            )));
        }
        let upper = engine.store.data_dir(&id).join("upper");
        let lowers: Vec<std::path::PathBuf> = match &rec.rootfs_source {
            crate::container::record::RootfsSource::Layers(l) => l.iter().rev().cloned().collect(),
            crate::container::record::RootfsSource::Directory(d) => vec![d.clone()],
        };
        let lowers: Vec<&Path> = lowers.iter().map(|p| p.as_path()).collect();
        print_out(&render(&changes(&upper, &lowers)?, json));
        return Ok(0);
    }
    let store = crate::image::Store::open(&ctx.paths).map_err(engine_err)?;
    let image = store.resolve(&target).map_err(|e| match e {
        crate::image::StoreError::NotFound(_) => {
            RunnerError::Engine(format!("{target} not found: layer not known"))
        }
        other => engine_err(other),
    })?;
    let dirs = image.layer_dirs();
    let Some((top, below)) = dirs.split_last() else {
        return Ok(0);
    };
    let below: Vec<&Path> = below.iter().rev().map(|p| p.as_path()).collect();
    let mut all = changes(top, &below)?;
    if below.is_empty() {
        all.values_mut().for_each(|c| *c = Change::Added);
    }
    print_out(&render(&all, json));
    Ok(0)
}
