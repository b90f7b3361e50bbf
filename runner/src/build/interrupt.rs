//! SIGINT/SIGTERM during a build: noted by a flag the build checks between
//! and during steps, so the build container is killed and removed and the
//! working mounts are undone before vigil exits (nothing is tagged).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

/// Set once SIGINT or SIGTERM arrived (signal-hook's handler stores to the
/// flag); clones share it. The handlers stay installed for the rest of the
/// process, so a second signal does not kill vigil halfway through the
/// cleanup either.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Installs the handlers for SIGINT and SIGTERM.
    pub fn install() -> Interrupt {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            // Fails only for a forbidden signal (SIGKILL, SIGSTOP, ...).
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        Interrupt(flag)
    }

    /// Has a signal asked the build to stop?
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
