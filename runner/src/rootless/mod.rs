//! Rootless vigil: an ordinary user with subordinate IDs runs the same
//! commands as root (runner-notes §2.5-2.7, §3.6, §4).
//!
//! * [`enter`] runs first thing in `main`: for a non-root caller it checks
//!   that the store and state directories are the caller's own, then joins
//!   (or creates) the user + mount namespace held by the pause process
//!   ([`userns`]), mapped from `/etc/subuid` and `/etc/subgid` as Podman
//!   maps it ([`idmap`]). From then on vigil is root of that namespace:
//!   layers unpack with their real owners (host subordinate IDs on disk),
//!   overlay mounts with `userxattr`, and the monitor and runc run inside.
//! * The spec of a rootless container has no cgroup settings (the user has
//!   no cgroup of their own here) and Podman's `/sys` rules
//!   ([`crate::spec`]).
//! * `--userns=keep-id` and `--uidmap`/`--gidmap` give a container a user
//!   namespace of its own inside that one ([`ContainerUserNs`]); its root
//!   file system is a copy with owners translated to that mapping.
//!
//! Root and rootless stores never mix: a store or state directory owned by
//! someone else is refused before anything is written.

pub mod idmap;
pub mod userns;

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::unistd::{getegid, geteuid, Uid, User};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::RunnerError;
use idmap::{IdMap, IdMapping};

/// Set for the processes vigil starts inside the namespace (the monitor,
/// its exit command): the host uid and gid of the user vigil acts for.
pub const ENV_UID: &str = "_VIGIL_ROOTLESS_UID";
pub const ENV_GID: &str = "_VIGIL_ROOTLESS_GID";
/// Test hooks: read these instead of /etc/subuid and /etc/subgid. They only
/// change what vigil asks for; newuidmap/newgidmap still check the real files.
pub const ENV_SUBUID_FILE: &str = "VIGIL_SUBUID_FILE";
pub const ENV_SUBGID_FILE: &str = "VIGIL_SUBGID_FILE";
/// The pause process's pid file, in the state directory.
pub const PAUSE_PID_FILE: &str = "pause.pid";

/// The user a rootless vigil acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rootless {
    /// Host uid and gid (root inside the namespace).
    pub uid: u32,
    pub gid: u32,
}

static STATE: OnceLock<Option<Rootless>> = OnceLock::new();

/// The rootless user, once [`enter`] has run for a non-root caller.
pub fn active() -> Option<&'static Rootless> {
    STATE.get().and_then(Option::as_ref)
}

/// Is this process inside a user namespace (the rootless one, or any)?
pub fn in_user_namespace() -> bool {
    userns::in_user_namespace()
}

/// The host uid and gid vigil acts for: the effective IDs, except inside the
/// rootless namespace (root there), where the markers [`ENV_UID`] and
/// [`ENV_GID`] left by the vigil that created it say who the user is.
pub fn caller_ids<E>(env: E) -> (u32, u32)
where
    E: Fn(&str) -> Option<OsString>,
{
    let (euid, egid) = (geteuid().as_raw(), getegid().as_raw());
    if euid == 0 && userns::in_user_namespace() {
        let num = |name: &str| env(name)?.to_str()?.parse::<u32>().ok();
        if let (Some(uid), Some(gid)) = (num(ENV_UID), num(ENV_GID)) {
            if uid != 0 {
                return (uid, gid);
            }
        }
    }
    (euid, egid)
}

/// Makes `dir` (a store or state directory) ready for `uid`: created mode
/// 0700 if missing, refused if it belongs to someone else (root and
/// rootless stores never mix, and nobody uses another user's store).
pub fn prepare_dir(dir: &Path, uid: u32, what: &str) -> Result<(), RunnerError> {
    match fs::metadata(dir) {
        Ok(meta) => check_owner(dir, &meta, uid, what),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| RunnerError::io(format!("creating {}", parent.display()), e))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let meta = fs::metadata(dir)
                        .map_err(|e| RunnerError::io(format!("inspecting {}", dir.display()), e))?;
                    check_owner(dir, &meta, uid, what)
                }
                Err(e) => Err(RunnerError::io(
                    format!("creating {what} {}", dir.display()),
                    e,
                )),
            }
        }
        Err(e) => Err(RunnerError::io(
            format!("inspecting {what} {}", dir.display()),
            e,
        )),
    }
}

fn check_owner(dir: &Path, meta: &fs::Metadata, uid: u32, what: &str) -> Result<(), RunnerError> {
    if !meta.is_dir() {
        return Err(RunnerError::Engine(format!(
            "{what} {} is not a directory",
            dir.display()
        )));
    }
    if meta.uid() == uid {
        return Ok(());
    }
    let hint = if uid == 0 {
        "root never uses a rootless user's store or state: choose another --root/--runroot"
    } else if meta.uid() == 0 {
        "a rootless user never uses root's store or state: choose another --root/--runroot \
         (or leave them to their defaults under $XDG_DATA_HOME and $XDG_RUNTIME_DIR)"
    } else {
        "vigil only uses a store and state of your own: choose another --root/--runroot, \
         or set XDG_RUNTIME_DIR to a directory of yours"
    };
    Err(RunnerError::Engine(format!(
        "{what} {} belongs to uid {}, not to uid {uid}: {hint}",
        dir.display(),
        meta.uid()
    )))
}

/// The subordinate-ID file to read (`/etc/subuid` unless overridden for tests).
fn subid_file(env: &dyn Fn(&str) -> Option<OsString>, var: &str, default: &str) -> PathBuf {
    env(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// The user's name for `/etc/subuid` lookups: the passwd entry of `uid`,
/// else `$USER`, else the number.
pub fn user_name(uid: u32, env: &dyn Fn(&str) -> Option<OsString>) -> String {
    passwd_entry(uid)
        .map(|(name, _)| name)
        .or_else(|| {
            env("USER")
                .and_then(|u| u.into_string().ok())
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// Name and home directory of `uid` from the host's passwd database.
pub fn passwd_entry(uid: u32) -> Option<(String, String)> {
    let user = User::from_uid(Uid::from_raw(uid)).ok()??;
    Some((user.name, user.dir.to_string_lossy().into_owned()))
}

/// The namespace mappings of `uid`/`gid` (named `user`) from the subordinate
/// ID files, with errors a user can act on.
pub fn namespace_maps(
    uid: u32,
    gid: u32,
    user: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<(IdMap, IdMap), RunnerError> {
    let read = |var: &str, default: &str, id: u32| -> Result<IdMap, RunnerError> {
        let gid = default == idmap::SUBGID_FILE;
        let path = subid_file(env, var, default);
        let shown = path.display().to_string();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(RunnerError::io(format!("reading {shown}"), e)),
        };
        let ranges = idmap::parse_subid(&text, &shown, gid, user, id)
            .map_err(|e| RunnerError::Engine(e.to_string()))?;
        Ok(idmap::rootless_mapping(id, &ranges))
    };
    Ok((
        read(ENV_SUBUID_FILE, idmap::SUBUID_FILE, uid)?,
        read(ENV_SUBGID_FILE, idmap::SUBGID_FILE, gid)?,
    ))
}

/// Guards the directories and, for a non-root caller, moves this process
/// into the rootless namespace. Must run while the process is single-threaded.
pub fn enter<E>(ctx: &Context, uid: u32, gid: u32, env: E) -> Result<(), RunnerError>
where
    E: Fn(&str) -> Option<OsString>,
{
    if uid == 0 {
        for (dir, what) in [
            (&ctx.paths.store, "store"),
            (&ctx.paths.state, "state directory"),
        ] {
            if let Ok(meta) = fs::metadata(dir) {
                check_owner(dir, &meta, 0, what)?;
            }
        }
        let _ = STATE.set(None);
        return Ok(());
    }
    let inside = geteuid().is_root() && userns::in_user_namespace();
    // Inside the namespace (the monitor's exit command) the user's files
    // show as owned by root of the namespace.
    let owner = if inside { 0 } else { uid };
    prepare_dir(&ctx.paths.store, owner, "store")?;
    prepare_dir(&ctx.paths.state, owner, "state directory")?;
    let me = Rootless { uid, gid };
    if !inside {
        let _lock = lock_file(&ctx.paths.state.join("pause.lock"))?;
        let pid_file = ctx.paths.state.join(PAUSE_PID_FILE);
        if let Some(pid) = pause_pid(&ctx.paths.state, uid) {
            // One that died since the check counts as none.
            if userns::join(pid).is_ok() {
                return finish_enter(me);
            }
        }
        // The pause process is gone but containers still run in its
        // namespace: rejoin it through one of their monitors and keep it
        // with a new pause process (their mounts and processes are there).
        if let Some(monitor) = userns::monitor_in_namespace(&ctx.paths.state, uid) {
            userns::join(monitor)?;
            write_pid(&pid_file, userns::spawn_pause_here()?)?;
            return finish_enter(me);
        }
        let user = user_name(uid, &env);
        let (uid_map, gid_map) = namespace_maps(uid, gid, &user, &env)?;
        let newuidmap = userns::find_helper("newuidmap", ctx.search_path.as_deref())?;
        let newgidmap = userns::find_helper("newgidmap", ctx.search_path.as_deref())?;
        let pid = userns::create_pause(&uid_map, &gid_map, &newuidmap, &newgidmap)?;
        write_pid(&pid_file, pid)?;
        userns::join(pid)?;
        return finish_enter(me);
    }
    let _ = STATE.set(Some(me));
    Ok(())
}

/// Inside the namespace now: leave the markers for the processes vigil
/// starts there, and remember the user.
fn finish_enter(me: Rootless) -> Result<(), RunnerError> {
    std::env::set_var(ENV_UID, me.uid.to_string());
    std::env::set_var(ENV_GID, me.gid.to_string());
    let _ = STATE.set(Some(me));
    Ok(())
}

fn write_pid(pid_file: &Path, pid: i32) -> Result<(), RunnerError> {
    let tmp = pid_file.with_extension("pid.tmp");
    fs::write(&tmp, format!("{pid}\n"))
        .and_then(|()| fs::rename(&tmp, pid_file))
        .map_err(|e| RunnerError::io(format!("writing {}", pid_file.display()), e))
}

fn lock_file(path: &Path) -> Result<fs::File, RunnerError> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| RunnerError::io(format!("opening {}", path.display()), e))?;
    loop {
        // flock(LOCK_EX).
        match file.lock() {
            Ok(()) => return Ok(file),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RunnerError::io(format!("locking {}", path.display()), e)),
        }
    }
}

/// The pid of the pause process of the state directory `state`, if alive.
pub fn pause_pid(state: &Path, uid: u32) -> Option<i32> {
    fs::read_to_string(state.join(PAUSE_PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|pid| *pid > 0 && userns::is_our_pause(*pid, uid))
}

/// A container's own user namespace (`--userns=keep-id`, `--uidmap`,
/// `--gidmap`): mappings from container IDs to IDs of the namespace vigil
/// runs in (the rootless one, or the host's for root).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerUserNs {
    /// `keep-id` or `private` (explicit mappings).
    pub mode: String,
    pub uid_map: Vec<IdMapping>,
    pub gid_map: Vec<IdMapping>,
}

impl ContainerUserNs {
    pub fn uids(&self) -> IdMap {
        IdMap(self.uid_map.clone())
    }

    pub fn gids(&self) -> IdMap {
        IdMap(self.gid_map.clone())
    }
}

/// What `--userns`, `--uidmap` and `--gidmap` ask for, resolved. `None`: the
/// container shares the namespace vigil runs in (Podman's rootless default).
/// Also returns the process user keep-id implies (`uid:gid`).
pub fn resolve_userns(
    mode: Option<&str>,
    uidmap: &[String],
    gidmap: &[String],
) -> Result<(Option<ContainerUserNs>, Option<String>), RunnerError> {
    let engine = |m: String| RunnerError::Engine(m);
    let rootless = active();
    let mode = mode.unwrap_or("").trim();
    let explicit = !uidmap.is_empty() || !gidmap.is_empty();
    if !mode.is_empty() && explicit {
        return Err(engine(format!(
            "--userns={mode} and --uidmap/--gidmap cannot be combined"
        )));
    }
    match mode {
        "" | "host" => {}
        m if m == "keep-id" || m.starts_with("keep-id:") => {
            let Some(me) = rootless else {
                return Err(engine(
                    "--userns=keep-id is only supported rootless (run vigil as an ordinary user)"
                        .into(),
                ));
            };
            let (mut uid, mut gid) = (me.uid, me.gid);
            for opt in m
                .strip_prefix("keep-id:")
                .unwrap_or("")
                .split(',')
                .filter(|o| !o.is_empty())
            {
                let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
                let n: u32 = v
                    .parse()
                    .map_err(|_| engine(format!("invalid --userns option {opt:?}")))?;
                match k {
                    "uid" => uid = n,
                    "gid" => gid = n,
                    _ => {
                        return Err(engine(format!(
                            "unknown --userns=keep-id option {k:?} (uid=, gid=)"
                        )))
                    }
                }
            }
            let parent = |kind: &str| userns::current_map(kind).unwrap_or_default();
            let (puids, pgids) = (parent("uid"), parent("gid"));
            let uids = idmap::keep_id_mapping(uid, puids.len())
                .map_err(engine)?
                .split_along(&puids);
            let gids = idmap::keep_id_mapping(gid, pgids.len())
                .map_err(engine)?
                .split_along(&pgids);
            let ns = ContainerUserNs {
                mode: "keep-id".into(),
                uid_map: uids.0,
                gid_map: gids.0,
            };
            return Ok((Some(ns), Some(format!("{uid}:{gid}"))));
        }
        other => {
            return Err(engine(format!(
                "unsupported --userns mode {other:?} (host, keep-id[:uid=N,gid=N])"
            )))
        }
    }
    if !explicit {
        return Ok((None, None));
    }
    if rootless.is_none() {
        return Err(engine(
            "--uidmap/--gidmap are only supported rootless for now (run vigil as an ordinary user)"
                .into(),
        ));
    }
    // Like Podman: one of the two stands for both.
    let uids =
        idmap::parse_mapping_flags(if uidmap.is_empty() { gidmap } else { uidmap }, "--uidmap")
            .map_err(engine)?;
    let gids =
        idmap::parse_mapping_flags(if gidmap.is_empty() { uidmap } else { gidmap }, "--gidmap")
            .map_err(engine)?;
    for (kind, map, flag) in [("uid", &uids, "--uidmap"), ("gid", &gids, "--gidmap")] {
        let available = userns::current_map(kind).map(|m| m.len()).unwrap_or(0);
        if let Some(m) = map
            .0
            .iter()
            .find(|m| u64::from(m.host) + u64::from(m.size) > available)
        {
            return Err(engine(format!(
                "{flag} {}:{}:{}: the rootless user namespace has {kind}s 0 to {} only \
                 (0 is you, 1.. your subordinate IDs)",
                m.container,
                m.host,
                m.size,
                available.saturating_sub(1)
            )));
        }
        // The container's root must be able to reach its root file system
        // through the user's 0700 store directory.
        if map.to_container(0).is_none() {
            return Err(engine(format!(
                "{flag} must map {kind} 0 of the rootless user namespace (your own {kind}) \
                 into the container, e.g. `{flag} 0:1:1000 {flag} 1000:0:1`: the container \
                 needs it to reach its root file system in your store"
            )));
        }
    }
    let parent = |kind: &str| userns::current_map(kind).unwrap_or_default();
    let (uids, gids) = (
        uids.split_along(&parent("uid")),
        gids.split_along(&parent("gid")),
    );
    for (map, flag) in [(&uids, "--uidmap"), (&gids, "--gidmap")] {
        if map.0.len() > idmap::MAX_MAP_LINES {
            return Err(engine(format!("{flag}: too many ranges")));
        }
    }
    Ok((
        Some(ContainerUserNs {
            mode: "private".into(),
            uid_map: uids.0,
            gid_map: gids.0,
        }),
        None,
    ))
}

/// `--userns=keep-id`: like Podman, give the user (container `uid`:`gid`)
/// entries in the `/etc/passwd` and `/etc/group` of the container's own
/// root file system copy when the image has none, named after the host user.
/// The files are changed only if they are regular files (never through a
/// symlink), resolved inside `rootfs`.
pub fn add_user_entries(rootfs: &Path, uid: u32, gid: u32) -> Result<(), String> {
    use crate::fsroot::{clean, Root};
    let host_uid = active().map_or(uid, |r| r.uid);
    let (name, home) = passwd_entry(host_uid).unwrap_or_else(|| (uid.to_string(), "/".into()));
    let home = if home.is_empty() {
        "/".to_string()
    } else {
        home
    };
    let root = Root::open(rootfs).map_err(|e| format!("opening {}: {e}", rootfs.display()))?;
    let entries = [
        (
            "etc/passwd",
            uid,
            format!("{name}:*:{uid}:{gid}:{name}:{home}:/bin/sh\n"),
        ),
        ("etc/group", gid, format!("{name}:x:{gid}:{name}\n")),
    ];
    for (file, id, line) in entries {
        let path = clean(file.as_bytes());
        let Ok((dir, last)) = root.resolve_parent(&path, None) else {
            continue;
        };
        let fd = match crate::fsroot::sys::openat(
            std::os::fd::AsFd::as_fd(&dir),
            last,
            libc::O_RDWR | libc::O_APPEND,
            0,
        ) {
            Ok(fd) => fd,
            Err(_) => continue, // missing, a symlink, or not writable: leave it
        };
        let mut f = fs::File::from(fd);
        let meta = f.metadata().map_err(|e| format!("/{file}: {e}"))?;
        if !meta.is_file() || meta.len() > 1 << 20 {
            continue;
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut f, &mut text).map_err(|e| format!("/{file}: {e}"))?;
        let id = id.to_string();
        let taken = text.lines().any(|l| {
            let f: Vec<&str> = l.split(':').collect();
            f.len() > 2 && (f[0] == name || f[2] == id)
        });
        if taken {
            continue;
        }
        let sep = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        std::io::Write::write_all(&mut f, format!("{sep}{line}").as_bytes())
            .map_err(|e| format!("/{file}: {e}"))?;
    }
    Ok(())
}

/// Podman's warning for resource limits a rootless container cannot have.
pub fn resource_limits_warning(flag: &str) -> String {
    format!(
        "{flag} is ignored: resource limits are not supported for rootless containers \
         on this host (no cgroup delegated to the user)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_created_private_and_must_be_ours() {
        let dir = tempfile::tempdir().unwrap();
        let me = geteuid().as_raw();
        let store = dir.path().join("a/b/vigil");
        prepare_dir(&store, me, "store").unwrap();
        let meta = fs::metadata(&store).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        prepare_dir(&store, me, "store").unwrap();
        let err = prepare_dir(&store, me + 1, "store")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("belongs to uid {me}")), "{err}");
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(prepare_dir(&file, me, "store").is_err());
    }

    #[test]
    fn subid_files_give_the_namespace_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let subuid = dir.path().join("subuid");
        let subgid = dir.path().join("subgid");
        fs::write(&subuid, "ann:300000:1000\nann:100000:65536\n").unwrap();
        fs::write(&subgid, "ann:100000:65536\n").unwrap();
        let (u, g) = (subuid.clone(), subgid.clone());
        let env = move |name: &str| match name {
            ENV_SUBUID_FILE => Some(u.clone().into_os_string()),
            ENV_SUBGID_FILE => Some(g.clone().into_os_string()),
            _ => None,
        };
        let (uids, gids) = namespace_maps(1000, 1000, "ann", &env).unwrap();
        assert_eq!(
            uids.helper_args().join(" "),
            "0 1000 1 1 100000 65536 65537 300000 1000"
        );
        assert_eq!(gids.helper_args().join(" "), "0 1000 1 1 100000 65536");

        fs::write(&subgid, "ann:100000:65536\nann:oops\n").unwrap();
        let err = namespace_maps(1000, 1000, "ann", &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{} is malformed: line 2", subgid.display())),
            "{err}"
        );
        let err = namespace_maps(1000, 1000, "bob", &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("usermod --add-subuids 100000-165535 bob"),
            "{err}"
        );
        // A missing file is a missing entry.
        fs::remove_file(&subuid).unwrap();
        let err = namespace_maps(1000, 1000, "ann", &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no subordinate IDs for user \"ann\""), "{err}");
    }

    #[test]
    fn userns_flags_need_rootless_or_are_exclusive() {
        // Unit tests run without entering: this process is not rootless.
        assert_eq!(resolve_userns(None, &[], &[]).unwrap(), (None, None));
        assert_eq!(
            resolve_userns(Some("host"), &[], &[]).unwrap(),
            (None, None)
        );
        let err = resolve_userns(Some("keep-id"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("only supported rootless"), "{err}");
        let err = resolve_userns(Some("keep-id"), &["0:1:1".into()], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be combined"), "{err}");
        let err = resolve_userns(Some("auto"), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported --userns mode"), "{err}");
    }
}
