//! The process part of the spec: args (behind `--init`'s catatonit), user,
//! capabilities, rlimits and the console size.

use std::path::PathBuf;

use oci_spec::runtime::{
    Box as ConsoleBox, BoxBuilder, PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder,
    UserBuilder,
};

use super::capabilities::process_capabilities;
use super::{err, SpecOptions};
use crate::error::RunnerError;

/// Podman's NOFILE/NPROC target before clamping.
pub const RLIMIT_TARGET: u64 = 1_048_576;

/// Where `--init`'s binary appears in the container (Podman: /run/podman-init).
pub const INIT_PATH: &str = "/run/vigil-init";

/// The init binary for `--init`: catatonit where Podman keeps it, else on PATH.
pub fn find_init() -> Option<PathBuf> {
    let fixed = [
        "/usr/libexec/podman/catatonit",
        "/usr/local/libexec/podman/catatonit",
    ]
    .into_iter()
    .map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("catatonit"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    fixed.chain(on_path).find(|p| p.is_file())
}

pub(super) fn init_binary() -> Result<PathBuf, RunnerError> {
    find_init().ok_or_else(|| {
        RunnerError::Engine(
            "--init: no init binary: install catatonit (looked for \
             /usr/libexec/podman/catatonit and catatonit on PATH)"
                .into(),
        )
    })
}

/// The process part: args, env, cwd, user, terminal, capabilities, rlimits.
pub fn process(opts: &SpecOptions) -> Result<Process, RunnerError> {
    let capabilities = process_capabilities(opts)?;
    let rlimits = [
        (PosixRlimitType::RlimitNofile, opts.rlimit_nofile),
        (PosixRlimitType::RlimitNproc, opts.rlimit_nproc),
    ]
    .into_iter()
    .map(|(typ, v)| {
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(v)
            .hard(v)
            .build()
            .map_err(err)
    })
    .collect::<Result<Vec<_>, _>>()?;
    let user = UserBuilder::default()
        .uid(opts.user.uid)
        .gid(opts.user.gid)
        .additional_gids(opts.user.additional_gids.clone())
        .umask(0o022u32)
        .build()
        .map_err(err)?;
    let mut process = ProcessBuilder::default()
        .terminal(opts.terminal)
        .user(user)
        .args(if opts.flags.init {
            // catatonit runs the command after `--` and passes its exit status on.
            [INIT_PATH.to_string(), "--".to_string()]
                .into_iter()
                .chain(opts.args.iter().cloned())
                .collect()
        } else {
            opts.args.clone()
        })
        .env(opts.env.clone())
        .cwd(opts.cwd.clone())
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(false)
        .build()
        .map_err(err)?;
    process.set_console_size(console_box(opts.terminal, opts.console_size)?);
    Ok(process)
}

/// The `consoleSize` of a process: only for a terminal of a known size.
pub fn console_box(
    terminal: bool,
    size: Option<(u16, u16)>,
) -> Result<Option<ConsoleBox>, RunnerError> {
    match size {
        Some((rows, cols)) if terminal && rows > 0 && cols > 0 => BoxBuilder::default()
            .height(u64::from(rows))
            .width(u64::from(cols))
            .build()
            .map(Some)
            .map_err(err),
        _ => Ok(None),
    }
}

/// The size (rows, columns) of the user's terminal on stdin or stdout, if any.
pub fn terminal_size() -> Option<(u16, u16)> {
    nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
    for fd in [0, 1] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize through the pointer, which
        // points at `ws`; on a closed or non-terminal fd it fails.
        if unsafe { tiocgwinsz(fd, &mut ws) }.is_ok() && ws.ws_row > 0 && ws.ws_col > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// NOFILE/NPROC for the container: Podman's 1048576, clamped to `nr_open`
/// (NOFILE) and, without CAP_SYS_RESOURCE, to the caller's hard limit.
pub fn rlimit_value(can_raise: bool, nr_open: Option<u64>, current_hard: u64) -> u64 {
    let mut v = RLIMIT_TARGET;
    if let Some(max) = nr_open {
        v = v.min(max);
    }
    if !can_raise {
        v = v.min(current_hard);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimits_are_clamped() {
        assert_eq!(rlimit_value(true, Some(1 << 30), 10), RLIMIT_TARGET);
        assert_eq!(rlimit_value(false, None, 20000), 20000);
        assert_eq!(rlimit_value(true, Some(65536), 10), 65536);
    }
}
