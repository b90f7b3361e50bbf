//! A minimal container engine on top of `vigil::client`: the starting point for
//! a new engine.
//!
//! ```text
//! engine [--conmon PATH] [--runtime PATH] [-t] [-i] ROOTFS [COMMAND [ARG...]]
//! ```
//!
//! It builds a bundle for the (read-only) root filesystem ROOTFS, starts the
//! monitor with runc, attaches, sets the terminal size through `ctl` (with
//! `-t`), runs `runc start`, relays the output (and with `-i` its own stdin),
//! and exits with the container's exit code. The monitor is `--conmon`, else
//! `$CONMON_BINARY`, else `conmon` on PATH; the runtime `--runtime`, else `runc`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{exit, Command};
use std::time::Duration;

use vigil::client::{Attach, Ctl, ExitWatcher, LogDriver, Monitor, MonitorOptions};
use vigil::proto::attach::Stream;

struct Args {
    conmon: PathBuf,
    runtime: PathBuf,
    tty: bool,
    stdin: bool,
    rootfs: PathBuf,
    command: Vec<String>,
}

fn main() {
    let args = parse_args().unwrap_or_else(|msg| {
        eprintln!("engine: {msg}\nusage: engine [--conmon PATH] [--runtime PATH] [-t] [-i] ROOTFS [COMMAND...]");
        exit(125)
    });
    match run(&args) {
        Ok(code) => exit(code),
        Err(e) => {
            eprintln!("engine: {e}");
            exit(e.exit_code())
        }
    }
}

fn run(args: &Args) -> Result<i32, vigil::client::Error> {
    let cid = random_id();
    let bundle = std::env::temp_dir().join(format!("vigil-engine-{cid}"));
    let io = |what: &str| {
        let what = what.to_string();
        move |e| vigil::client::Error::Io {
            context: what,
            source: e,
        }
    };
    std::fs::create_dir_all(bundle.join("exits")).map_err(io("creating the bundle"))?;
    let runc_root = bundle.join("runc");
    std::fs::write(bundle.join("config.json"), config_json(args))
        .map_err(io("writing config.json"))?;

    // 1. The monitor creates the container (`runc create`) and reports its pid.
    let mut opts = MonitorOptions::new(cid.clone(), &args.runtime);
    opts.bundle = Some(bundle.clone());
    opts.container_pidfile = Some(bundle.join("pidfile"));
    opts.conmon_pidfile = Some(bundle.join("conmon.pid"));
    opts.exit_dir = Some(bundle.join("exits"));
    opts.persist_dir = Some(bundle.clone());
    opts.runtime_args = vec!["--root".into(), runc_root.clone().into()];
    opts.log_drivers = vec![LogDriver::K8sFile(bundle.join("ctr.log"))];
    opts.terminal = args.tty;
    opts.stdin = args.stdin;
    let result = (|| {
        let mut monitor = Monitor::spawn(&args.conmon, &opts, &[])?;
        monitor.await_pid(Some(Duration::from_secs(60)))?;

        // 2. Attach before starting, so no output is missed; size the terminal.
        let (mut attach, writer) = Attach::connect(&bundle)?.split()?;
        if args.tty {
            Ctl::open(&bundle)?.resize(24, 80)?;
        }
        if args.stdin {
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let mut input = std::io::stdin();
                while let Ok(n) = input.read(&mut buf) {
                    if n == 0 || writer.write_stdin(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = writer.close_stdin();
            });
        }

        // 3. Start the process and relay its output until the monitor hangs up.
        let started = Command::new(&args.runtime)
            .arg("--root")
            .arg(&runc_root)
            .args(["start", &cid])
            .status()
            .map_err(io("running the runtime"))?;
        if !started.success() {
            return Err(vigil::client::Error::Usage("runtime start failed"));
        }
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        while let Some((stream, bytes)) = attach.recv()? {
            let _ = match stream {
                Stream::Stdout => out.write_all(bytes).and_then(|_| out.flush()),
                Stream::Stderr => err.write_all(bytes),
            };
        }

        // 4. The exit file has the status (128+N for signal N).
        let mut watcher = ExitWatcher::new(&bundle.join("exits"), &cid);
        if let Some(pid) = monitor.pid() {
            watcher = watcher.monitor_pid(pid);
        }
        Ok(watcher.wait(Some(Duration::from_secs(30)))?.code)
    })();

    let _ = Command::new(&args.runtime)
        .arg("--root")
        .arg(&runc_root)
        .args(["delete", "--force", &cid])
        .status();
    let _ = std::fs::remove_dir_all(&bundle);
    result
}

/// A small runtime spec: the rootfs read-only, private namespaces but the network.
fn config_json(args: &Args) -> String {
    let caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
    ];
    let command = if args.command.is_empty() {
        vec!["sh".to_string()]
    } else {
        args.command.clone()
    };
    serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": args.tty,
            "user": {"uid": 0, "gid": 0},
            "args": command,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/root"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": args.rootfs, "readonly": true},
        "hostname": "engine",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
        }
    })
    .to_string()
}

fn parse_args() -> Result<Args, String> {
    let mut argv = std::env::args().skip(1);
    let mut conmon = std::env::var_os("CONMON_BINARY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let mut runtime = None;
    let (mut tty, mut stdin) = (false, false);
    let rootfs = loop {
        let arg = argv.next().ok_or("missing ROOTFS")?;
        match arg.as_str() {
            "--conmon" => conmon = Some(argv.next().ok_or("--conmon needs a value")?.into()),
            "--runtime" => {
                runtime = Some(PathBuf::from(argv.next().ok_or("--runtime needs a value")?))
            }
            "-t" => tty = true,
            "-i" => stdin = true,
            "-it" | "-ti" => (tty, stdin) = (true, true),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => break PathBuf::from(arg),
        }
    };
    let rootfs =
        std::fs::canonicalize(&rootfs).map_err(|e| format!("rootfs {}: {e}", rootfs.display()))?;
    let find = |p: PathBuf| {
        if p.components().count() > 1 {
            Some(p)
        } else {
            which(&p)
        }
    };
    let conmon = find(conmon.unwrap_or_else(|| "conmon".into()))
        .ok_or("monitor not found (use --conmon)")?;
    let runtime = find(runtime.unwrap_or_else(|| "runc".into()))
        .ok_or("runtime not found (use --runtime)")?;
    Ok(Args {
        conmon,
        runtime,
        tty,
        stdin,
        rootfs,
        command: argv.collect(),
    })
}

fn which(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !ok {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = (nanos ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
