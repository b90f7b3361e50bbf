//! Runs `examples/engine.rs` (the client API's reference engine) against the
//! busybox test rootfs with the real monitor and runc, as root.
//!
//! Environment: `CONMON_BINARY` (default `<workspace>/target/release/conmon`),
//! `RUNTIME_BINARY` (default runc on PATH), `VIGIL_TEST_ROOTFS` (default
//! `<workspace>/target/test-rootfs/busybox`, built by scripts/make-test-rootfs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

struct Setup {
    engine: PathBuf,
    conmon: PathBuf,
    runtime: PathBuf,
    rootfs: PathBuf,
}

/// Everything the test needs, or why it cannot run here.
fn setup() -> Result<&'static Setup, String> {
    static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();
    SETUP.get_or_init(find_setup).as_ref().map_err(Clone::clone)
}

fn find_setup() -> Result<Setup, String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    let runtime = env_path("RUNTIME_BINARY")
        .or_else(|| which("runc"))
        .ok_or("runc not found")?;
    let conmon =
        env_path("CONMON_BINARY").unwrap_or_else(|| workspace().join("target/release/conmon"));
    if !conmon.is_file() {
        return Err(format!(
            "monitor {} not built (set CONMON_BINARY)",
            conmon.display()
        ));
    }
    let rootfs = env_path("VIGIL_TEST_ROOTFS")
        .unwrap_or_else(|| workspace().join("target/test-rootfs/busybox"));
    if !rootfs.join("bin/busybox").is_file() {
        let made = Command::new("bash")
            .arg(workspace().join("scripts/make-test-rootfs"))
            .arg(&rootfs)
            .status();
        if !made.is_ok_and(|s| s.success()) || !rootfs.join("bin/busybox").is_file() {
            return Err(format!("no busybox rootfs at {}", rootfs.display()));
        }
    }
    Ok(Setup {
        engine: engine_binary()?,
        conmon,
        runtime,
        rootfs,
    })
}

/// The example binary cargo built next to this test (target/<profile>/examples),
/// else built now.
fn engine_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("odd test binary location")?;
    let built = profile_dir.join("examples/engine");
    if built.is_file() {
        return Ok(built);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace())
        .args(["build", "--example", "engine"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let ok = cmd.status().is_ok_and(|s| s.success());
    if ok && built.is_file() {
        Ok(built)
    } else {
        Err(format!(
            "could not build the engine example into {}",
            built.display()
        ))
    }
}

fn engine(s: &Setup, flags: &[&str], command: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(&s.engine)
        .arg("--conmon")
        .arg(&s.conmon)
        .arg("--runtime")
        .arg(&s.runtime)
        .args(flags)
        .arg(&s.rootfs)
        .args(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the engine example");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    // The engine bounds its own waits (60 s for the pid, 30 s for the exit file).
    child.wait_with_output().expect("engine output")
}

macro_rules! setup_or_skip {
    ($name:literal) => {
        match setup() {
            Ok(s) => s,
            Err(reason) => {
                eprintln!("skipping {}: {reason}", $name);
                return;
            }
        }
    };
}

#[test]
fn engine_relays_output_and_exit_code() {
    let s = setup_or_skip!("engine_relays_output_and_exit_code");
    let out = engine(s, &[], &["sh", "-c", "echo out; echo err >&2; exit 3"], b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn engine_terminal_gets_the_size_from_ctl() {
    let s = setup_or_skip!("engine_terminal_gets_the_size_from_ctl");
    let out = engine(
        s,
        &["-t"],
        &["sh", "-c", "sleep 0.3; stty size; exit 7"],
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "24 80\r\n");
    assert_eq!(out.status.code(), Some(7));
}

#[test]
fn engine_forwards_stdin_and_reports_runtime_errors() {
    let s = setup_or_skip!("engine_forwards_stdin_and_reports_runtime_errors");
    let out = engine(s, &["-i"], &["sh", "-c", "read x; echo got:$x"], b"hello\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got:hello\n");
    assert_eq!(out.status.code(), Some(0));

    let out = engine(s, &[], &["/nonexistent"], b"");
    assert_eq!(
        out.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file or directory"));
}
