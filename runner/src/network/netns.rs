//! Named network namespaces (runner-network §3.1): an empty file in the
//! netns directory with a new namespace bind-mounted on it, made on a
//! throwaway thread so vigil's own threads stay in the host namespace.
//! Removal is idempotent: unmount (detached) and unlink, ignoring what is
//! already gone.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use super::error::NetworkError;

fn cstr(p: &Path) -> Result<CString, NetworkError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| NetworkError::Config(format!("path {} has a NUL byte", p.display())))
}

/// Make `dir` a shared mount point (as `ip netns` and Podman do), so that a
/// namespace unmounted here is unmounted in every mount namespace.
fn make_shared(dir: &Path) -> Result<(), NetworkError> {
    let c = cstr(dir)?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    if mount(
        None::<&str>,
        c.as_c_str(),
        None::<&str>,
        shared,
        None::<&str>,
    )
    .is_ok()
    {
        return Ok(());
    }
    // Not a mount point yet: bind it onto itself first.
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(
        Some(c.as_c_str()),
        c.as_c_str(),
        Some("none"),
        bind,
        None::<&str>,
    )
    .map_err(|e| NetworkError::io(format!("bind-mounting {}", dir.display()), e.into()))?;
    mount(
        None::<&str>,
        c.as_c_str(),
        None::<&str>,
        shared,
        None::<&str>,
    )
    .map_err(|e| NetworkError::io(format!("making {} shared", dir.display()), e.into()))?;
    Ok(())
}

/// A fresh name: `netns-` and 16 random bytes as 8-4-4-4-12 hex, like Podman.
pub fn new_path(dir: &Path) -> Result<PathBuf, NetworkError> {
    let h = super::config::random_hex(16)?;
    Ok(dir.join(format!(
        "netns-{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )))
}

/// Create the namespace at `path` (in a directory made shared first), with
/// loopback up.
pub fn create(path: &Path) -> Result<(), NetworkError> {
    let dir = path
        .parent()
        .ok_or_else(|| NetworkError::Config(format!("bad netns path {}", path.display())))?;
    fs::create_dir_all(dir)
        .map_err(|e| NetworkError::io(format!("creating {}", dir.display()), e))?;
    let mounted_shared = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*dir.to_string_lossy()) && l.contains("shared:"));
    if !mounted_shared {
        make_shared(dir)?;
    }
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(|e| NetworkError::io(format!("creating {}", path.display()), e))?;
    let target = cstr(path)?;
    let made = std::thread::spawn(move || -> Result<(), NetworkError> {
        // unshare affects only this thread, which ends right after.
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetworkError::io("creating a network namespace", e.into()))?;
        // This thread's namespace onto the new file.
        mount(
            Some("/proc/thread-self/ns/net"),
            target.as_c_str(),
            Some("none"),
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| NetworkError::io("bind-mounting the network namespace", e.into()))?;
        loopback_up()
    })
    .join()
    .unwrap_or_else(|_| {
        Err(NetworkError::Config(
            "network namespace thread panicked".into(),
        ))
    });
    if made.is_err() {
        let _ = remove(path);
    }
    made
}

/// Bring `lo` up in the calling thread's namespace.
fn loopback_up() -> Result<(), NetworkError> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| NetworkError::io("socket for loopback", e.into()))?;
    // nix has no wrappers for the interface ioctls.
    // SAFETY: an all-zero ifreq is valid; both ioctls get a pointer to it,
    // which the kernel reads and (SIOCGIFFLAGS) fills within its size; the
    // socket is open.
    let ok = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) == 0 && {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) == 0
        }
    };
    if !ok {
        return Err(NetworkError::io(
            "bringing up lo",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Unmount and remove the namespace file; nothing there is not an error.
pub fn remove(path: &Path) -> Result<(), NetworkError> {
    let c = cstr(path)?;
    // EINVAL/ENOENT mean not mounted.
    match umount2(c.as_c_str(), MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => {
            return Err(NetworkError::io(
                format!("unmounting {}", path.display()),
                e.into(),
            ))
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::io(format!("removing {}", path.display()), e)),
    }
}
