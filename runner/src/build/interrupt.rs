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
        crate::signals::set_handler(sig, on_signal);
    }
}

/// Has a signal asked the build to stop?
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
