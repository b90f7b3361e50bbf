//! Terminal mode (conmon-interface §4.1-4.2): a console socket the runtime
//! connects to and sends the pty master over SCM_RIGHTS.
//!
//! The socket lives in a private 0700 directory `<tmpdir>/conmon-term.XXXXXX`
//! (conmon binds a 0700 socket directly in the tmpdir); both are removed as
//! soon as the master arrives or the runtime gave up.

use crate::attach::bind_unix;
use crate::diag::Fatal;
use nix::sys::socket::{
    accept4, listen, recvmsg, socket, AddressFamily, Backlog, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::stat::{fchmod, Mode};
use nix::sys::termios::{tcgetattr, tcsetattr, OutputFlags, SetArg};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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
        let dir = nix::unistd::mkdtemp(&template)
            .map_err(|e| Fatal::from_nix("Failed to generate random path for console-socket", e))?;
        let path = dir.join("console");
        let listener = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| Fatal::from_nix("Failed to create console-socket", e))?;
        let _ = fchmod(&listener, Mode::from_bits_truncate(0o700));
        bind_unix(&listener, path.as_os_str().as_bytes())?;
        listen(&listener, Backlog::new(128).unwrap_or(Backlog::MAXCONN))
            .map_err(|e| Fatal::from_nix("Failed to listen on console-socket", e))?;
        Ok(ConsoleSocket {
            listener,
            dir,
            path,
        })
    }

    /// After the runtime exited: take the pty master it sent, if any.
    pub fn receive(self) -> Result<Option<OwnedFd>, Fatal> {
        let _ = crate::fds::set_nonblocking(&self.listener, true);
        let conn = accept4(&self.listener, SockFlag::SOCK_CLOEXEC);
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
        let Ok(conn) = conn else {
            return Ok(None);
        };
        let master = recv_fd(&conn)
            .ok_or_else(|| Fatal::errno("Failed to receive console file descriptor"))?;
        set_onlcr(&master);
        Ok(Some(master))
    }
}

/// The pty master the runtime sent: exactly one fd in one SCM_RIGHTS message.
fn recv_fd(conn: &OwnedFd) -> Option<OwnedFd> {
    let mut data = [0u8; 4095];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut cbuf = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cbuf),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    let mut fds: Vec<RawFd> = Vec::new();
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(got) = c {
            fds.extend(got);
        }
    }
    // SAFETY: the kernel installed these fds in our table for this message
    // (SCM_RIGHTS); nothing else refers to them, so each is owned once here
    // (extra ones are closed when dropped).
    let mut owned = fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let first = owned.next();
    (owned.next().is_none()).then_some(first).flatten()
}

/// ONLCR on the master, as conmon does.
fn set_onlcr(master: &OwnedFd) {
    let mut t = match tcgetattr(master) {
        Ok(t) => t,
        Err(_) => {
            crate::warn!("Failed to get console terminal settings");
            return;
        }
    };
    t.output_flags |= OutputFlags::ONLCR;
    if tcsetattr(master, SetArg::TCSANOW, &t).is_err() {
        crate::warn!("Failed to set console terminal settings");
    }
}
