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

use super::error::NetworkError;

fn cstr(p: &Path) -> Result<CString, NetworkError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| NetworkError::Config(format!("path {} has a NUL byte", p.display())))
}

fn last_error(what: String) -> NetworkError {
    NetworkError::io(what, std::io::Error::last_os_error())
}

/// Make `dir` a shared mount point (as `ip netns` and Podman do), so that a
/// namespace unmounted here is unmounted in every mount namespace.
fn make_shared(dir: &Path) -> Result<(), NetworkError> {
    let c = cstr(dir)?;
    // SAFETY: mount(2) with valid C strings and null data.
    unsafe {
        if libc::mount(
            std::ptr::null(),
            c.as_ptr(),
            std::ptr::null(),
            libc::MS_SHARED | libc::MS_REC,
            std::ptr::null(),
        ) == 0
        {
            return Ok(());
        }
        // Not a mount point yet: bind it onto itself first.
        if libc::mount(
            c.as_ptr(),
            c.as_ptr(),
            c"none".as_ptr(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ) != 0
        {
            return Err(last_error(format!("bind-mounting {}", dir.display())));
        }
        if libc::mount(
            std::ptr::null(),
            c.as_ptr(),
            std::ptr::null(),
            libc::MS_SHARED | libc::MS_REC,
            std::ptr::null(),
        ) != 0
        {
            return Err(last_error(format!("making {} shared", dir.display())));
        }
    }
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
        // SAFETY: unshare affects only this thread, which ends right after.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(last_error("creating a network namespace".into()));
        }
        // SAFETY: mount(2) of this thread's namespace onto the new file.
        let r = unsafe {
            libc::mount(
                c"/proc/thread-self/ns/net".as_ptr(),
                target.as_ptr(),
                c"none".as_ptr(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if r != 0 {
            return Err(last_error("bind-mounting the network namespace".into()));
        }
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
    // SAFETY: a datagram socket used only for two interface ioctls, closed below.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(last_error("socket for loopback".into()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let ok = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) == 0 && {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) == 0
        };
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if !ok {
            return Err(NetworkError::io("bringing up lo", err));
        }
    }
    Ok(())
}

/// Unmount and remove the namespace file; nothing there is not an error.
pub fn remove(path: &Path) -> Result<(), NetworkError> {
    let c = cstr(path)?;
    // SAFETY: umount2 with a valid C string; EINVAL/ENOENT mean not mounted.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        let e = std::io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) {
            return Err(NetworkError::io(
                format!("unmounting {}", path.display()),
                e,
            ));
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::io(format!("removing {}", path.display()), e)),
    }
}
