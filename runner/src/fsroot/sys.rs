//! Thin, safe wrappers around the `*at` system calls the unpacker needs. Every
//! call takes a directory fd and a single path component, and none follows a
//! symlink in the last component, so callers only need to get the directory
//! right (see [`super::Root`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A file name (one path component) as a C string; NUL bytes are refused.
pub fn c_name(name: &[u8]) -> io::Result<CString> {
    CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in file name"))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `openat(dir, name, flags | O_CLOEXEC | O_NOFOLLOW, mode)`.
pub fn openat(
    dir: BorrowedFd<'_>,
    name: &[u8],
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    let name = c_name(name)?;
    let flags = flags | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: valid fd and NUL-terminated name; the returned fd is owned.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `O_PATH` handle on `name` itself (a symlink is not followed).
pub fn open_path(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    openat(dir, name, libc::O_PATH, 0)
}

/// A readable directory fd for `name` (refuses symlinks and non-directories).
pub fn open_dir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    openat(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `name` empty = `dir` itself.
pub fn lstat(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<libc::stat> {
    let cname = c_name(name)?;
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: zeroed stat is a valid out-buffer for fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, NUL-terminated name, valid out-pointer.
    check(unsafe { libc::fstatat(dir.as_raw_fd(), cname.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

/// `lstat` that maps "does not exist" to `None`.
pub fn lstat_opt(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<libc::stat>> {
    match lstat(dir, name) {
        Ok(st) => Ok(Some(st)),
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The file type bits of a stat result.
pub fn file_type(st: &libc::stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

/// `readlinkat(fd, "")` on an `O_PATH` symlink handle.
pub fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: buffer is valid for buf.len() bytes; "" is a valid C string.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdirat(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: valid fd and name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) })
}

/// `symlinkat(target, dir, name)`.
pub fn symlinkat(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let target = c_name(target)?;
    let name = c_name(name)?;
    // SAFETY: valid fd and names.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// `linkat(old_dir, old, new_dir, new, 0)`: never follows `old` if it is a symlink.
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old: &[u8],
    new_dir: BorrowedFd<'_>,
    new: &[u8],
) -> io::Result<()> {
    let old = c_name(old)?;
    let new = c_name(new)?;
    // SAFETY: valid fds and names.
    check(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            0,
        )
    })
}

/// `mknodat(dir, name, mode, makedev(major, minor))`; `mode` includes the type.
pub fn mknodat(
    dir: BorrowedFd<'_>,
    name: &[u8],
    mode: u32,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    let name = c_name(name)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: valid fd and name.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t, dev) })
}

/// `unlinkat(dir, name, flags)`.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &[u8], remove_dir: bool) -> io::Result<()> {
    let name = c_name(name)?;
    let flags = if remove_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: valid fd and name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)`; empty name = `dir`.
pub fn lchownat(dir: BorrowedFd<'_>, name: &[u8], uid: u32, gid: u32) -> io::Result<()> {
    let cname = c_name(name)?;
    let mut flags = libc::AT_SYMLINK_NOFOLLOW;
    if name.is_empty() {
        flags |= libc::AT_EMPTY_PATH;
    }
    // SAFETY: valid fd and name.
    check(unsafe { libc::fchownat(dir.as_raw_fd(), cname.as_ptr(), uid, gid, flags) })
}

/// `fchmod(fd, mode)` on an open (not `O_PATH`) fd.
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })
}

/// chmod of `name` in `dir` without following a symlink (for FIFOs and device
/// nodes, which cannot be opened safely): through an `O_PATH` handle and its
/// `/proc/self/fd` entry, which names exactly that inode.
pub fn lchmodat(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    let handle = open_path(dir, name)?;
    let st = lstat(handle.as_fd(), b"")?;
    if file_type(&st) == libc::S_IFLNK {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    let proc_path = c_name(format!("/proc/self/fd/{}", handle.as_raw_fd()).as_bytes())?;
    // SAFETY: valid C string.
    check(unsafe { libc::chmod(proc_path.as_ptr(), mode as libc::mode_t) })
}

/// Sets atime and mtime of `name` in `dir` (not following symlinks; empty name = `dir`).
pub fn lutimesat(dir: BorrowedFd<'_>, name: &[u8], sec: i64, nsec: u32) -> io::Result<()> {
    let cname = c_name(name)?;
    let ts = libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as libc::c_long,
    };
    let times = [ts, ts];
    if name.is_empty() {
        // SAFETY: valid fd and times array of two.
        return check(unsafe { libc::futimens(dir.as_raw_fd(), times.as_ptr()) });
    }
    // SAFETY: valid fd, name and times array of two.
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// `fsetxattr` on an open fd.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: valid fd, name, and value buffer.
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// `lsetxattr` of `name` in `dir` via `/proc/self/fd/<dir>/<name>` (the last
/// component is not followed), for symlinks and special files.
pub fn lsetxattrat(dir: BorrowedFd<'_>, name: &[u8], key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    let path = c_name(&path)?;
    let key = c_name(key)?;
    // SAFETY: valid C strings and value buffer.
    check(unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// `fgetxattr` of one attribute (`None` if it is not set).
pub fn fgetxattr(fd: BorrowedFd<'_>, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let key = c_name(key)?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: valid fd, key and buffer.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(err),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// The xattr names and values of an open fd.
pub fn fxattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: valid fd and buffer.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::ENOTSUP) {
            Ok(Vec::new())
        } else {
            Err(err)
        };
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for key in names.split(|&b| b == 0).filter(|k| !k.is_empty()) {
        if let Some(value) = fgetxattr(fd, key)? {
            out.push((key.to_vec(), value));
        }
    }
    Ok(out)
}

/// The names in a directory (without `.` and `..`).
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let fd = open_dir(dir, b".")?;
    let raw: RawFd = std::os::fd::IntoRawFd::into_raw_fd(fd);
    // SAFETY: raw is an owned, open directory fd; fdopendir takes ownership.
    let dirp = unsafe { libc::fdopendir(raw) };
    if dirp.is_null() {
        let err = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so we still own raw.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
        return Err(err);
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: dirp is a valid DIR*; errno is cleared to detect errors.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: dirp is valid.
        let ent = unsafe { libc::readdir64(dirp) };
        if ent.is_null() {
            let err = io::Error::last_os_error();
            // SAFETY: dirp is valid and closed exactly once.
            unsafe { libc::closedir(dirp) };
            if err.raw_os_error().unwrap_or(0) != 0 {
                return Err(err);
            }
            return Ok(names);
        }
        // SAFETY: d_name is a NUL-terminated string inside the dirent.
        let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
}

/// The xattrs of `name` in `dir` without following a symlink (via
/// `/proc/self/fd/<dir>/<name>`), for any file type.
pub fn lxattrs_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    let path = c_name(&path)?;
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: valid C string and buffer.
    let n = unsafe { libc::llistxattr(path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::ENOTSUP) {
            Ok(Vec::new())
        } else {
            Err(err)
        };
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for key in names.split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let ckey = c_name(key)?;
        let mut buf = vec![0u8; 64 * 1024];
        // SAFETY: valid C strings and buffer.
        let len = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                ckey.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if len >= 0 {
            buf.truncate(len as usize);
            out.push((key.to_vec(), buf));
        }
    }
    Ok(out)
}
