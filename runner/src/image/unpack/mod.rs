//! Safe application of layer tar streams to a directory.
//!
//! Two modes:
//! - [`Mode::Overlay`]: the target is one layer's own directory for overlayfs.
//!   Whiteouts become 0/0 character devices, opaque directories get the
//!   opaque xattr (`trusted.overlay.opaque=y`, or `user.overlay.opaque` for
//!   `userxattr` mounts), and a hard link to a file of a lower layer copies
//!   that file up first ([`Options::lower_dirs`]).
//! - [`Mode::Flat`]: layers are applied one after another onto one root file
//!   system (the copy fallback): whiteouts delete, opaque markers empty the
//!   directory of everything lower layers put there.
//!
//! Safety rules (runner-notes §2): every path is cleaned lexically so it
//! stays inside the target, and every parent directory is resolved one
//! component at a time without following symlinks out of the target
//! ([`crate::fsroot`]); the last component is never followed; an existing inode is
//! removed before a new one is created with `O_EXCL` (no write-through);
//! ownership is set before the mode (so setuid/setgid survive), xattrs after
//! both (so `security.capability` survives), directory modes and times at the
//! end (so a 0500 directory can still receive its children).

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

mod apply;
mod entry;
mod walk;
pub mod xattr;

pub use entry::parse_pax_time;

/// Where the layer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A layer directory of its own, represented the overlayfs way.
    Overlay,
    /// Applied onto a flat root file system holding the lower layers.
    Flat,
}

/// What to do with character and block device entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePolicy {
    /// Create the node; if that is not permitted (rootless), fall back to
    /// [`DevicePolicy::Placeholder`] with a warning.
    Auto,
    /// Create the node or fail.
    Create,
    /// Create an empty regular file with the entry's mode instead (umoci's
    /// rootless behaviour).
    Placeholder,
    /// Skip the entry with a warning.
    Skip,
}

/// Caps against decompression bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of file data one layer may write.
    pub max_bytes: u64,
    /// Number of entries one layer may contain.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 30,
            max_entries: 4_000_000,
        }
    }
}

/// A translation of owners: each `(from, to, count)` maps the IDs
/// `from..from+count` of the archive to `to..` on disk; IDs in no range are
/// kept. Used to copy an image into the root file system of a container with
/// a user namespace of its own (`--userns=keep-id`, `--uidmap`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerMap {
    pub uids: Vec<(u32, u32, u32)>,
    pub gids: Vec<(u32, u32, u32)>,
}

impl OwnerMap {
    fn map(ranges: &[(u32, u32, u32)], id: u32) -> u32 {
        ranges
            .iter()
            .find_map(|&(from, to, count)| {
                let off = id.checked_sub(from)?;
                (off < count).then(|| to + off)
            })
            .unwrap_or(id)
    }

    pub fn uid(&self, id: u32) -> u32 {
        Self::map(&self.uids, id)
    }

    pub fn gid(&self, id: u32) -> u32 {
        Self::map(&self.gids, id)
    }
}

/// How to apply a layer.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// Apply owners from the archive (needs root or a user namespace).
    pub chown: bool,
    /// Name of the opaque-directory xattr written in overlay mode.
    pub opaque_xattr: String,
    pub devices: DevicePolicy,
    pub limits: Limits,
    /// Overlay mode: the directories of the layers below, topmost first, used
    /// to copy up hard-link targets and the attributes of implicit parents.
    pub lower_dirs: Vec<PathBuf>,
    /// Owners written to disk are translated through this map (with `chown`).
    pub owner_map: Option<OwnerMap>,
    /// Every entry (and hard-link target) is placed under this in-root
    /// directory, its own path cleaned first so `..` stops at it: `ADD` of
    /// a local archive extracts into its destination this way.
    pub under: crate::fsroot::InPath,
}

impl Options {
    /// Options for `mode` suited to the current user: as root, owners are
    /// applied and `trusted.overlay.opaque` is used; otherwise owners are not
    /// applied and `user.overlay.opaque` is used. Root of a user namespace
    /// (rootless vigil, runner-notes §2.5-2.7) applies owners (they land as
    /// the mapped host IDs), uses `user.overlay.opaque` (for `userxattr`
    /// mounts: `trusted.*` needs the initial namespace) and skips device
    /// nodes, which cannot be created there, as Podman does.
    pub fn new(mode: Mode) -> Options {
        let root = nix::unistd::geteuid().is_root();
        let userns = crate::rootless::in_user_namespace();
        Options {
            mode,
            chown: root,
            opaque_xattr: if root && !userns {
                "trusted.overlay.opaque"
            } else {
                "user.overlay.opaque"
            }
            .into(),
            devices: if userns {
                DevicePolicy::Skip
            } else {
                DevicePolicy::Auto
            },
            limits: Limits::default(),
            lower_dirs: Vec::new(),
            owner_map: None,
            under: Vec::new(),
        }
    }
}

/// What applying a layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackReport {
    /// Entries applied (whiteouts included).
    pub entries: u64,
    /// Bytes of file data written.
    pub bytes: u64,
    /// Things skipped or degraded, one line each, without duplicates.
    pub warnings: Vec<String>,
}

/// Why a layer could not be applied.
#[derive(Debug)]
pub enum UnpackError {
    /// The tar stream itself is broken.
    Tar(io::Error),
    /// An entry that cannot be applied as it is.
    BadEntry { name: String, reason: String },
    /// A non-directory entry for the root directory (CVE-2021-29136).
    RootTypeChange { name: String },
    /// A whiteout that names nothing (`.wh.`) or `.`/`..`.
    InvalidWhiteout { name: String },
    /// A hard link whose target does not exist in the layer or below it.
    HardlinkTarget { name: String, target: String },
    /// A limit from [`Limits`] was exceeded.
    LimitExceeded(String),
    /// A system call failed while applying `name`.
    Io {
        name: String,
        action: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for UnpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnpackError::Tar(err) => write!(f, "reading layer tar stream: {err}"),
            UnpackError::BadEntry { name, reason } => write!(f, "tar entry {name:?}: {reason}"),
            UnpackError::RootTypeChange { name } => write!(
                f,
                "malicious tar entry {name:?}: refusing to change the type of the root directory"
            ),
            UnpackError::InvalidWhiteout { name } => {
                write!(f, "invalid whiteout entry {name:?}: it names no file")
            }
            UnpackError::HardlinkTarget { name, target } => {
                write!(
                    f,
                    "hard link {name:?}: target {target:?} not found in the layer or below it"
                )
            }
            UnpackError::LimitExceeded(what) => write!(f, "layer too large: {what}"),
            UnpackError::Io {
                name,
                action,
                source,
            } => write!(f, "{action} {name:?}: {source}"),
        }
    }
}

impl std::error::Error for UnpackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UnpackError::Tar(err) | UnpackError::Io { source: err, .. } => Some(err),
            _ => None,
        }
    }
}

/// Applies the (uncompressed) layer tar read from `reader` to `target`, an
/// existing directory. The reader is read up to the end of the tar archive;
/// callers that hash the stream should drain the rest themselves.
pub fn apply_layer<R: Read>(
    reader: R,
    target: &Path,
    opts: &Options,
) -> Result<UnpackReport, UnpackError> {
    let mut applier = apply::Applier::new(target, opts)?;
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(UnpackError::Tar)?;
    let mut count = 0u64;
    for item in entries {
        let mut tar_entry = item.map_err(UnpackError::Tar)?;
        let Some(mut entry) = entry::convert(&mut tar_entry)? else {
            continue;
        };
        if !opts.under.is_empty() {
            let mut path = opts.under.clone();
            path.append(&mut entry.path);
            entry.path = path;
            if let entry::Kind::Hardlink(target) = &mut entry.kind {
                let mut path = opts.under.clone();
                path.append(target);
                *target = path;
            }
        }
        count += 1;
        if count > opts.limits.max_entries {
            return Err(UnpackError::LimitExceeded(format!(
                "more than {} entries",
                opts.limits.max_entries
            )));
        }
        applier.apply(entry, &mut tar_entry)?;
    }
    applier.finish()
}

/// Applies an unpacked layer directory in overlay form (as the store keeps
/// them) to `target` in flat mode (`opts.mode` should be [`Mode::Flat`]):
/// the copy fallback for hosts without overlayfs. Call it for each layer,
/// lowest first, on an empty `target`.
pub fn apply_layer_dir(
    src: &Path,
    target: &Path,
    opts: &Options,
) -> Result<UnpackReport, UnpackError> {
    let source = crate::fsroot::Root::open(src).map_err(|source| UnpackError::Io {
        name: src.display().to_string(),
        action: "opening layer directory",
        source,
    })?;
    let mut applier = apply::Applier::new(target, opts)?;
    walk::replay(&source, &mut applier)?;
    applier.finish()
}
