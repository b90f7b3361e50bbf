//! SIGINT/SIGTERM during a build: noted by a flag the build checks between
//! and during steps, so the build container is killed and removed and the
//! working mounts are undone before vigil exits (nothing is tagged).

use std::sync::atomic::{AtomicBool, Ordering};

// A signal handler can only reach static state.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the handlers for SIGINT and SIGTERM.
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Has a signal asked the build to stop?
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
