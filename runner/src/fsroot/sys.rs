//! Thin, safe wrappers around the `*at` system calls the unpacker needs. Every
//! call takes a directory fd and a single path component, and none follows a
//! symlink in the last component, so callers only need to get the directory
//! right (see [`super::Root`]).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use nix::dir::Dir;
use nix::fcntl::{self, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{self, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid};

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

/// A byte count from an xattr call (`-1` and errno on failure).
fn check_len(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
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
    let flags = OFlag::from_bits_retain(flags | libc::O_CLOEXEC | libc::O_NOFOLLOW);
    Ok(fcntl::openat(
        dir,
        name.as_c_str(),
        flags,
        Mode::from_bits_retain(mode),
    )?)
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
        AtFlags::AT_SYMLINK_NOFOLLOW | AtFlags::AT_EMPTY_PATH
    } else {
        AtFlags::AT_SYMLINK_NOFOLLOW
    };
    Ok(stat::fstatat(dir, cname.as_c_str(), flags)?)
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
    Ok(fcntl::readlinkat(fd, c"")?.into_vec())
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdirat(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    let name = c_name(name)?;
    Ok(stat::mkdirat(
        dir,
        name.as_c_str(),
        Mode::from_bits_retain(mode),
    )?)
}

/// `symlinkat(target, dir, name)`.
pub fn symlinkat(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let target = c_name(target)?;
    let name = c_name(name)?;
    Ok(unistd::symlinkat(target.as_c_str(), dir, name.as_c_str())?)
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
    Ok(unistd::linkat(
        old_dir,
        old.as_c_str(),
        new_dir,
        new.as_c_str(),
        AtFlags::empty(),
    )?)
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
    let kind = SFlag::from_bits_retain(mode & libc::S_IFMT);
    let perm = Mode::from_bits_retain(mode & !libc::S_IFMT);
    let dev = stat::makedev(major.into(), minor.into());
    Ok(stat::mknodat(dir, name.as_c_str(), kind, perm, dev)?)
}

/// `unlinkat(dir, name, flags)`.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &[u8], remove_dir: bool) -> io::Result<()> {
    let name = c_name(name)?;
    let flags = if remove_dir {
        unistd::UnlinkatFlags::RemoveDir
    } else {
        unistd::UnlinkatFlags::NoRemoveDir
    };
    Ok(unistd::unlinkat(dir, name.as_c_str(), flags)?)
}

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)`; empty name = `dir`.
pub fn lchownat(dir: BorrowedFd<'_>, name: &[u8], uid: u32, gid: u32) -> io::Result<()> {
    let cname = c_name(name)?;
    let mut flags = AtFlags::AT_SYMLINK_NOFOLLOW;
    if name.is_empty() {
        flags |= AtFlags::AT_EMPTY_PATH;
    }
    let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    Ok(unistd::fchownat(dir, cname.as_c_str(), uid, gid, flags)?)
}

/// `fchmod(fd, mode)` on an open (not `O_PATH`) fd.
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(stat::fchmod(fd, Mode::from_bits_retain(mode))?)
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
    Ok(stat::fchmodat(
        AT_FDCWD,
        proc_path.as_c_str(),
        Mode::from_bits_retain(mode),
        stat::FchmodatFlags::FollowSymlink,
    )?)
}

/// Sets atime and mtime of `name` in `dir` (not following symlinks; empty name = `dir`).
pub fn lutimesat(dir: BorrowedFd<'_>, name: &[u8], sec: i64, nsec: u32) -> io::Result<()> {
    let cname = c_name(name)?;
    let ts = TimeSpec::new(sec as libc::time_t, nsec as libc::c_long);
    if name.is_empty() {
        return Ok(stat::futimens(dir, &ts, &ts)?);
    }
    Ok(stat::utimensat(
        dir,
        cname.as_c_str(),
        &ts,
        &ts,
        stat::UtimensatFlags::NoFollowSymlink,
    )?)
}

// Extended attributes: nix has no wrappers for them, so these are the
// raw calls, each given a buffer by its length (the kernel writes at most
// that many bytes, and returns how many it wrote or -1 with errno).

/// `fsetxattr` on an open fd.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: fd is borrowed open, name NUL-terminated, value valid for value.len() bytes.
    let ret = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check(ret)
}

/// `lsetxattr` of `name` in `dir` via `/proc/self/fd/<dir>/<name>` (the last
/// component is not followed), for symlinks and special files.
pub fn lsetxattrat(dir: BorrowedFd<'_>, name: &[u8], key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    let path = c_name(&path)?;
    let key = c_name(key)?;
    // SAFETY: path and key are NUL-terminated, value valid for value.len() bytes.
    let ret = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check(ret)
}

/// `fgetxattr` of one attribute (`None` if it is not set).
pub fn fgetxattr(fd: BorrowedFd<'_>, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let key = c_name(key)?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: fd is borrowed open, key NUL-terminated, buf writable for buf.len() bytes.
    let ret = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    match check_len(ret) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(err) => match err.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(err),
        },
    }
}

/// The xattr names and values of an open fd.
pub fn fxattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: fd is borrowed open, names writable for names.len() bytes.
    let ret = unsafe { libc::flistxattr(fd.as_raw_fd(), names.as_mut_ptr().cast(), names.len()) };
    let n = match check_len(ret) {
        Ok(n) => n,
        Err(err) if err.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    names.truncate(n);
    let mut out = Vec::new();
    for key in names.split(|&b| b == 0).filter(|k| !k.is_empty()) {
        if let Some(value) = fgetxattr(fd, key)? {
            out.push((key.to_vec(), value));
        }
    }
    Ok(out)
}

/// `lgetxattr(path, key)` into `buf` (empty: only the size is asked for);
/// the value's length.
pub fn lgetxattr(path: &CStr, key: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: path and key are NUL-terminated, buf writable for buf.len() bytes.
    check_len(unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })
}

/// `llistxattr(path)` into `buf`: the length of the NUL-separated names.
pub fn llistxattr(path: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: path is NUL-terminated, buf writable for buf.len() bytes.
    check_len(unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// The names in a directory (without `.` and `..`).
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut dirp = Dir::from_fd(open_dir(dir, b".")?)?;
    let mut names = Vec::new();
    for entry in dirp.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// The xattrs of `name` in `dir` without following a symlink (via
/// `/proc/self/fd/<dir>/<name>`), for any file type.
pub fn lxattrs_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name);
    let path = c_name(&path)?;
    let mut names = vec![0u8; 64 * 1024];
    let n = match llistxattr(&path, &mut names) {
        Ok(n) => n,
        Err(err) if err.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    names.truncate(n);
    let mut out = Vec::new();
    for key in names.split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let ckey = c_name(key)?;
        let mut buf = vec![0u8; 64 * 1024];
        if let Ok(len) = lgetxattr(&path, &ckey, &mut buf) {
            buf.truncate(len);
            out.push((key.to_vec(), buf));
        }
    }
    Ok(out)
}
