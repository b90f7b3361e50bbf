//! Where containers live on disk, lookup by name or id, and locking.
//!
//! * `<runroot>/containers/<id>/`: the record (`state.json`), its `lock`, and
//!   the bundle (config.json, attach socket, ctl, pidfiles, `exits/`, `persist/`,
//!   /etc files, exec sessions under `exec/`);
//! * `<root>/containers/<id>/`: the log (`ctr.log`) and the rootfs layers
//!   (`upper/`, `work/`, `merged/`);
//! * `<runroot>/runc/`: the OCI runtime's own state (`runc --root`).
//!
//! All of these, and the runroot itself, are private to the user who runs
//! vigil (mode 0700, [`PRIVATE_DIR_MODE`]): the bundles hold each
//! container's environment, and the attach sockets and ctl fifos control it.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::record::Record;
use crate::error::RunnerError;
use crate::paths::Paths;

/// Containers of one `--root`/`--runroot` pair.
#[derive(Clone, Debug)]
pub struct Store {
    /// The runroot (`/run/vigil`, `--runroot`).
    state_base: PathBuf,
    state_root: PathBuf,
    data_root: PathBuf,
    runtime_root: PathBuf,
}

/// An exclusive `flock`, released when dropped.
pub struct Lock {
    _file: File,
}

impl Lock {
    fn acquire(path: &Path) -> Result<Lock, RunnerError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| RunnerError::io(format!("opening lock {}", path.display()), e))?;
        loop {
            // flock(LOCK_EX).
            match file.lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RunnerError::io(format!("locking {}", path.display()), e)),
            }
        }
    }
}

impl Store {
    pub fn new(paths: &Paths) -> Store {
        Store {
            state_base: paths.state.clone(),
            state_root: paths.state.join("containers"),
            data_root: paths.store.join("containers"),
            runtime_root: paths.state.join("runc"),
        }
    }

    /// Create the top directories (0700), tightening them if an older vigil
    /// made them with the umask.
    pub fn ensure(&self) -> Result<(), RunnerError> {
        for d in [
            &self.state_base,
            &self.state_root,
            &self.data_root,
            &self.runtime_root,
        ] {
            private_dir(d)?;
        }
        Ok(())
    }

    /// Create the state and data directories of a new container (0700).
    pub fn create_dirs(&self, id: &str) -> Result<(PathBuf, PathBuf), RunnerError> {
        self.ensure()?;
        let (dir, data) = (self.dir(id), self.data_dir(id));
        for d in [&dir, &data] {
            private_dir(d)?;
        }
        Ok((dir, data))
    }

    /// The container's state directory, which is also its bundle.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.state_root.join(id)
    }

    /// The container's persistent directory (log, rootfs layers).
    pub fn data_dir(&self, id: &str) -> PathBuf {
        self.data_root.join(id)
    }

    /// `runc --root` for every container of this store.
    pub fn runtime_root(&self) -> &Path {
        &self.runtime_root
    }

    /// Serialises creation and removal (name uniqueness).
    pub fn lock_all(&self) -> Result<Lock, RunnerError> {
        self.ensure()?;
        Lock::acquire(&self.state_root.join(".lock"))
    }

    /// Serialises changes to one container.
    pub fn lock(&self, id: &str) -> Result<Lock, RunnerError> {
        Lock::acquire(&self.dir(id).join("lock"))
    }

    /// Ids of all containers with a record.
    pub fn ids(&self) -> Result<Vec<String>, RunnerError> {
        let entries = match fs::read_dir(&self.state_root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(RunnerError::io(
                    format!("listing {}", self.state_root.display()),
                    e,
                ))
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(super::record::RECORD_FILE).is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// All records (unreadable ones are skipped).
    pub fn records(&self) -> Result<Vec<Record>, RunnerError> {
        Ok(self
            .ids()?
            .iter()
            .filter_map(|id| Record::load(&self.dir(id)).ok())
            .collect())
    }

    /// Find a container by full id, name, or unique id prefix.
    pub fn lookup(&self, name_or_id: &str) -> Result<Option<String>, RunnerError> {
        if name_or_id.is_empty() {
            return Ok(None);
        }
        let records = self.records()?;
        if let Some(r) = records
            .iter()
            .find(|r| r.id == name_or_id || r.name == name_or_id)
        {
            return Ok(Some(r.id.clone()));
        }
        let matches: Vec<&Record> = records
            .iter()
            .filter(|r| r.id.starts_with(name_or_id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(Some(one.id.clone())),
            [] => Ok(None),
            _ => Err(RunnerError::Engine(format!(
                "more than one result for container {name_or_id:?}"
            ))),
        }
    }

    /// Like [`lookup`](Self::lookup), failing with Podman's message.
    pub fn resolve(&self, name_or_id: &str) -> Result<String, RunnerError> {
        self.lookup(name_or_id)?
            .ok_or_else(|| no_such_container(name_or_id))
    }
}

/// Mode of the runroot, the container directories and the runtime root.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` (and missing parents) with [`PRIVATE_DIR_MODE`]; an existing
/// directory of ours with a looser mode is tightened. One owned by someone
/// else is left alone (root's `--runroot` may be a shared directory).
fn private_dir(dir: &Path) -> Result<(), RunnerError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .map_err(|e| RunnerError::io(format!("creating {}", dir.display()), e))?;
    let meta =
        fs::metadata(dir).map_err(|e| RunnerError::io(format!("reading {}", dir.display()), e))?;
    let ours = meta.uid() == nix::unistd::geteuid().as_raw();
    if ours && meta.mode() & 0o7777 != PRIVATE_DIR_MODE {
        fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE))
            .map_err(|e| RunnerError::io(format!("restricting {}", dir.display()), e))?;
    }
    Ok(())
}

/// Podman's "no such container" error.
pub fn no_such_container(name_or_id: &str) -> RunnerError {
    RunnerError::Engine(format!(
        "no container with name or ID {name_or_id:?} found: no such container"
    ))
}

/// 64 random hex digits.
pub fn new_id() -> Result<String, RunnerError> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| RunnerError::io("reading /dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A Docker-style `adjective_name` derived from the id.
pub fn generated_name(id: &str) -> String {
    const ADJ: [&str; 16] = [
        "brave", "calm", "eager", "fervent", "gifted", "happy", "jolly", "keen", "lucid", "modest",
        "nifty", "quirky", "serene", "tender", "vibrant", "zealous",
    ];
    const NAMES: [&str; 16] = [
        "turing", "hopper", "lovelace", "knuth", "ritchie", "thompson", "torvalds", "liskov",
        "hamilton", "dijkstra", "lamport", "shannon", "backus", "kay", "perlman", "wirth",
    ];
    let n = |i: usize| usize::from_str_radix(id.get(i..i + 2).unwrap_or("0"), 16).unwrap_or(0);
    format!("{}_{}", ADJ[n(0) % 16], NAMES[n(2) % 16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths {
            store: tmp.path().join("store"),
            state: tmp.path().join("run/state"),
        };
        // A runroot left 0755 by an older vigil is tightened.
        fs::create_dir_all(&paths.state).unwrap();
        fs::set_permissions(&paths.state, fs::Permissions::from_mode(0o755)).unwrap();
        let store = Store::new(&paths);
        let (dir, data) = store.create_dirs("c0ffee").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        for d in [
            paths.state.clone(),
            paths.state.join("containers"),
            paths.state.join("runc"),
            paths.store.join("containers"),
            dir,
            data,
        ] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
    }

    #[test]
    fn ids_and_names() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(generated_name("0f1e"), "zealous_perlman");
    }
}
