//! Installing a signal handler: `build`'s interrupt flag and the attach
//! session's forwarded signals. Handlers may only touch atomics (they run
//! async-signal); `SA_RESTART` keeps interrupted reads and waits going.

/// Sets `handler` for `sig`, nothing blocked while it runs.
pub fn set_handler(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed sigaction is valid; the handler is a plain function
    // whose callers keep to async-signal-safe work (atomics).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}
