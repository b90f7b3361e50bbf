//! Link GCC's unwinder statically (`libgcc_eh.a`) instead of `libgcc_s.so.1`.
//!
//! With `panic = "abort"` the monitor only needs the unwinder to print a
//! backtrace, but std links `-lgcc_s`, and loading one more shared library
//! costs every monitor ~10 system calls at start-up, before the runtime is
//! spawned, and 8 KiB of private dirty memory (its relocated data) for its
//! whole life. The archive is listed before std's `-lgcc_s`, so with
//! `--as-needed` (rustc's default) libgcc_s is no longer loaded. If the C
//! compiler does not know the archive (another toolchain, cross builds), the
//! default stays.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    if target != host || !target.ends_with("-linux-gnu") {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Ok(out) = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = std::path::Path::new(&path);
    // Not found: the compiler prints the bare name back.
    if !out.status.success() || !path.is_absolute() || !path.exists() {
        return;
    }
    if let Some(dir) = path.parent() {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static:+verbatim=libgcc_eh.a");
    }
}
