//! Terminal mode (conmon-interface §4.1-4.2): a console socket the runtime
//! connects to and sends the pty master over SCM_RIGHTS.
//!
//! The socket lives in a private 0700 directory `<tmpdir>/conmon-term.XXXXXX`
//! (conmon binds a 0700 socket directly in the tmpdir); both are removed as
//! soon as the master arrives or the runtime gave up.

use crate::attach::bind_unix;
use crate::diag::Fatal;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

pub struct ConsoleSocket {
    listener: OwnedFd,
    dir: PathBuf,
    pub path: PathBuf,
}

impl ConsoleSocket {
    pub fn create() -> Result<ConsoleSocket, Fatal> {
        let tmp = std::env::var_os("TMPDIR")
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "/tmp".into());
        let template = PathBuf::from(tmp).join("conmon-term.XXXXXX");
        let mut t = CString::new(template.as_os_str().as_bytes())
            .map_err(|_| Fatal::new("invalid TMPDIR"))?
            .into_bytes_with_nul();
        // SAFETY: t is a writable NUL-terminated template.
        if unsafe { libc::mkdtemp(t.as_mut_ptr().cast()) }.is_null() {
            return Err(Fatal::errno(
                "Failed to generate random path for console-socket",
            ));
        }
        t.pop();
        let dir = PathBuf::from(std::ffi::OsStr::from_bytes(&t));
        let path = dir.join("console");
        // SAFETY: new socket fd we own.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(Fatal::errno("Failed to create console-socket"));
        }
        // SAFETY: fresh fd.
        let listener = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: fchmod on our socket.
        unsafe { libc::fchmod(fd, 0o700) };
        bind_unix(&listener, path.as_os_str().as_bytes())?;
        // SAFETY: listen on our socket.
        if unsafe { libc::listen(fd, 128) } != 0 {
            return Err(Fatal::errno("Failed to listen on console-socket"));
        }
        Ok(ConsoleSocket {
            listener,
            dir,
            path,
        })
    }

    /// After the runtime exited: take the pty master it sent, if any.
    pub fn receive(self) -> Result<Option<OwnedFd>, Fatal> {
        let _ = crate::fds::set_nonblocking(self.listener.as_raw_fd(), true);
        // SAFETY: accept4 on our listener.
        let conn = unsafe {
            libc::accept4(
                self.listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
        if conn < 0 {
            return Ok(None);
        }
        // SAFETY: fresh fd from accept4.
        let conn = unsafe { OwnedFd::from_raw_fd(conn) };
        let master = recv_fd(&conn)
            .ok_or_else(|| Fatal::errno("Failed to receive console file descriptor"))?;
        set_onlcr(&master);
        Ok(Some(master))
    }
}

fn recv_fd(conn: &OwnedFd) -> Option<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len() - 1,
    };
    // Room for one SCM_RIGHTS fd (CMSG_SPACE(sizeof(int)) is at most 24 bytes).
    let mut cbuf = [0u64; 8];
    // SAFETY: an all-zero msghdr is valid; we point it at our buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: msg points at valid buffers; blocking read of the runtime's message.
    let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return None;
    }
    // SAFETY: walking the control messages the kernel filled in.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
            || (*cmsg).cmsg_len != libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _
        {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::c_int);
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
    }
}

/// Turn on ONLCR so `\n` from the container reaches clients as `\r\n`.
fn set_onlcr(master: &OwnedFd) {
    // SAFETY: tcgetattr/tcsetattr on the pty master with a valid termios.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(master.as_raw_fd(), &mut t) != 0 {
            crate::warn!("Failed to get console terminal settings");
            return;
        }
        t.c_oflag |= libc::ONLCR;
        if libc::tcsetattr(master.as_raw_fd(), libc::TCSANOW, &t) != 0 {
            crate::warn!("Failed to set console terminal settings");
        }
    }
}
