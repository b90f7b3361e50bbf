//! Exit handling: the status encoding (conmon-interface §8.2), the exit files
//! (§8.1) and the exit command (§8.3).

use crate::config::Config;
use std::ffi::CString;
use std::path::Path;
use vigil::proto::exit::{write_status, PERSIST_EXIT_FILE};

/// Exit status of a wait status: code, 128+signal, or -1.
pub fn status_of(wait_status: i32) -> i32 {
    if libc::WIFEXITED(wait_status) {
        libc::WEXITSTATUS(wait_status)
    } else if libc::WIFSIGNALED(wait_status) {
        128 + libc::WTERMSIG(wait_status)
    } else {
        -1
    }
}

/// Write `<persist-dir>/exit`, then `<exit-dir>/<cid>`.
pub fn write_exit_files(cfg: &Config, status: i32) {
    if let Some(dir) = cfg.opts.persist_dir.as_deref().filter(|d| !d.is_empty()) {
        if let Err(e) = write_status(&Path::new(dir).join(PERSIST_EXIT_FILE), status) {
            crate::diag::emit(
                crate::diag::Kind::Fatal,
                &format!("Failed to write {status} to container exit file: {e}"),
                None,
            );
        }
    }
    if let Some(dir) = cfg.opts.exit_dir.as_deref().filter(|d| !d.is_empty()) {
        if let Err(e) = write_status(&Path::new(dir).join(&cfg.cid), status) {
            crate::diag::emit(
                crate::diag::Kind::Fatal,
                &format!("Failed to write {status} to exit file: {e}"),
                None,
            );
        }
    }
}

/// The program run when the monitor exits (Podman: `podman container cleanup`).
pub struct ExitCommand {
    argv: Vec<CString>,
    delay: i32,
    saved_oom_score_adj: Vec<u8>,
}

impl ExitCommand {
    pub fn new(cfg: &Config, saved_oom_score_adj: Vec<u8>) -> Option<ExitCommand> {
        let path = cfg.opts.exit_command.as_ref()?;
        let argv = std::iter::once(path)
            .chain(cfg.opts.exit_command_args.iter())
            .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
            .collect();
        Some(ExitCommand {
            argv,
            delay: cfg.opts.exit_delay,
            saved_oom_score_adj,
        })
    }

    /// Run it with every fd >= 3 closed and wait for it (and any remaining
    /// children) to finish. Its status does not change the monitor's.
    pub fn run(self) {
        // SAFETY: plain libc calls; the child only execs or exits.
        unsafe {
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
            close_all_from(3);
            if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) != 0 {
                crate::warn!("Failed to disable self subreaper attribute - might wait for indirect children a long time");
            }
            let mut ptrs: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
            ptrs.push(std::ptr::null());
            let pid = libc::fork();
            if pid == 0 {
                if self.delay > 0 {
                    crate::debug!(
                        "Sleeping for {} seconds before executing exit command",
                        self.delay
                    );
                    libc::sleep(self.delay as libc::c_uint);
                }
                crate::daemon::restore_oom_score_adj(&self.saved_oom_score_adj);
                libc::execv(ptrs[0], ptrs.as_ptr());
                libc::_exit(1);
            }
            let mut st = 0;
            while libc::waitpid(-1, &mut st, 0) > 0 || crate::diag::last_errno() == libc::EINTR {}
        }
    }
}

/// Close every fd >= `from`.
pub fn close_all_from(from: i32) {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd >= from)
            .collect(),
        Err(_) => (from..1024).collect(),
    };
    for fd in fds {
        // Called right before fork/exit; nothing uses these fds afterwards.
        crate::fds::close_raw(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::status_of;

    #[test]
    fn encodes_statuses() {
        assert_eq!(status_of(3 << 8), 3);
        assert_eq!(status_of(9), 137);
        assert_eq!(status_of(0), 0);
    }
}
