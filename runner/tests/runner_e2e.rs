//! End to end on real images built offline: every image format through
//! `vigil load` and `vigil run`, `-t` on a real pseudo-terminal, detaching
//! (ctrl-p ctrl-q typed on the terminal) and re-attaching, `logs -f` across
//! log rotations, and the container commands on an image.
//!
//! Images: scripts/make-test-images (skopeo docker-archive and oci-archive,
//! umoci gzip, zstd and uncompressed OCI layouts, a `podman save`d
//! docker-archive) and tests/e2e_support/make-images.sh (`podman build` saved
//! as docker-archive and oci-archive, a 4-layer umoci image with deletions,
//! a Debian `debootstrap --variant=minbase` image in 3 layers, or a
//! minbase-like one when debootstrap cannot run). Skipped with a message when
//! not root or the binaries are missing; every wait has a deadline.

mod e2e_support;

use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e_support::{
    built, e2e_image_file, e2e_images, test_images, text, vigil_or_skip, wait_bounded, Piped, Pty,
    Vigil,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn setup(test: &str) -> Option<Vigil> {
    vigil_or_skip(test)
}

/// [`setup`] with the churn image (busybox, no Podman needed to build it)
/// loaded; its name.
fn setup_with_busybox_image(test: &str) -> Option<(Vigil, &'static str)> {
    let v = setup(test)?;
    v.load(&e2e_image_file(test, "churn", "churn-oci.tar")?);
    Some((v, "localhost/e2e-churn:1"))
}

/// Terminal output reaches the user's terminal byte-exact, as with Podman
/// (raw mode without output processing): the container terminal's "\r\n"
/// arrives once, not as "\r\r\n".
fn assert_tty_bytes(got: &[u8], want: &str, what: &str) {
    assert_eq!(text(got), want, "{what}: terminal output");
}

// ---- Formats -----------------------------------------------------------------

struct Case {
    what: &'static str,
    path: PathBuf,
    /// What `vigil load` reports.
    names: &'static [&'static str],
    /// `vigil run --rm IMAGE ARGS...`: exact stdout and exit code.
    runs: Vec<(Vec<&'static str>, String, i32)>,
}

fn multi_runs() -> Vec<(Vec<&'static str>, String, i32)> {
    vec![
        // Entrypoint /bin/sh, Cmd [-c, echo hi], User 1000, WorkingDir /dir1.
        (vec![], "hi\n".into(), 0),
        (
            vec!["-c", "cat added hl-to-lower; ls /opq; ls; id -u; pwd; exit 3"],
            "added in layer 2\nfile content\nnew\nadded\nfifo\nfile\nhardlink\nhl-to-lower\nrel-link\n1000\n/dir1\n".into(),
            3,
        ),
    ]
}

fn cases() -> (Vec<Case>, Vec<String>) {
    let mut cases = Vec::new();
    let mut skipped = Vec::new();
    match test_images() {
        Ok(d) => {
            let listed = |n: &str| built(&d, n);
            for (what, file, names) in [
                (
                    "docker-archive (skopeo)",
                    "docker.tar",
                    &["localhost/test:multi"][..],
                ),
                (
                    "oci-archive (skopeo)",
                    "oci.tar",
                    &["localhost/test:multi"][..],
                ),
                (
                    "OCI layout, gzip (umoci)",
                    "oci",
                    &["localhost/base:latest", "localhost/multi:latest"][..],
                ),
                (
                    "OCI layout, zstd (skopeo)",
                    "zstd",
                    &["localhost/multi:latest"][..],
                ),
                (
                    "OCI layout, uncompressed (skopeo)",
                    "plain",
                    &["localhost/multi:latest"][..],
                ),
            ] {
                if !listed(file) {
                    skipped.push(format!("{what}: not built by scripts/make-test-images"));
                    continue;
                }
                cases.push(Case {
                    what,
                    path: d.join(file),
                    names,
                    runs: multi_runs(),
                });
            }
            if listed("podman-docker.tar") {
                cases.push(Case {
                    what: "docker-archive (podman import + podman save)",
                    path: d.join("podman-docker.tar"),
                    names: &["localhost/imp:1"],
                    runs: vec![
                        (vec![], String::new(), 0), // CMD /bin/sh with no stdin
                        (
                            vec!["sh", "-c", "cat /dir1/file /dir1/sub/file; stat -c '%a %u' /bin/suid-busybox /home/app/owned"],
                            "file content\nin sub\n4755 0\n644 1000\n".into(),
                            0,
                        ),
                    ],
                });
            } else {
                skipped.push("podman-saved docker-archive: not built (no podman?)".into());
            }
        }
        Err(why) => skipped.push(why),
    }
    match e2e_images() {
        Ok(d) => {
            if built(&d, "built") {
                let runs = vec![(
                    vec!["sh", "-c", "cat /data/a/g /etc/conf.d/b.conf; ls /data/a; ls /etc/conf.d; ls /added/d; stat -c '%a %u:%g' /data/b /data/xf; exit 4"],
                    // chown after chmod 2750 clears the setgid bit (as the kernel does).
                    "new\nb\ng\nb.conf\nb\n1777 1234:5678\n750 0:1000\n".to_string(),
                    4,
                )];
                cases.push(Case {
                    what: "docker-archive (podman build + podman save)",
                    path: d.join("built-docker.tar"),
                    names: &["localhost/e2e-built:1"],
                    runs: runs.clone(),
                });
                cases.push(Case {
                    what: "oci-archive (podman build + podman save --format oci-archive)",
                    path: d.join("built-oci.tar"),
                    names: &["localhost/e2e-built:1"],
                    runs,
                });
            } else {
                skipped.push("podman-built images: not built (no podman?)".into());
            }
            if built(&d, "minbase") {
                let kind = std::fs::read_to_string(d.join("MINBASE_KIND")).unwrap_or_default();
                eprintln!("minbase image: {}", kind.trim());
                let runs = vec![(
                    vec![
                        "bash",
                        "-c",
                        "echo $BASH_VERSION | cut -c1; id -un; ls /usr/share/doc; stat -c '%U %a' /srv/app/run /bin/su; \
                         exit 5",
                    ],
                    "5\nroot\nvigil\napp 750\nroot 4755\n".to_string(),
                    5,
                )];
                cases.push(Case {
                    what: "docker-archive (Debian minbase, 3 layers)",
                    path: d.join("minbase-docker.tar"),
                    names: &["localhost/e2e-minbase:1"],
                    runs: runs.clone(),
                });
                cases.push(Case {
                    what: "OCI layout (Debian minbase, umoci)",
                    path: d.join("minbase"),
                    names: &["localhost/1:latest"],
                    runs,
                });
            }
            if built(&d, "churn") {
                let runs = vec![(
                    vec!["sh", "-c", "ls /srv; ls /srv/keep; ls /opaque; ls /late; cat /srv/keep/f5 /srv/link-to-f1; stat -c '%a %u:%g' /perm /perm/suid /late"],
                    "abs-link\nf1-hard\ngone\nkeep\nlink-to-f1\ntypechange-dir\ntypechange-file\n\
                     f1\nf2\nf2-hard\nf3\nf4\nf5\nnew\nchild\nre-added\nlink now file\n3777 0:0\n4711 1000:1000\n711 5:6\n"
                        .to_string(),
                    0,
                )];
                cases.push(Case {
                    what: "oci-archive (umoci, deletions across 4 layers)",
                    path: d.join("churn-oci.tar"),
                    names: &["localhost/e2e-churn:1"],
                    runs: runs.clone(),
                });
                cases.push(Case {
                    what: "OCI layout (umoci, deletions across 4 layers)",
                    path: d.join("churn"),
                    names: &["localhost/1:latest"],
                    runs,
                });
            }
        }
        Err(why) => skipped.push(why),
    }
    (cases, skipped)
}

#[test]
fn every_format_loads_and_runs() {
    let test = "every_format_loads_and_runs";
    let (cases, skipped) = cases();
    for s in &skipped {
        eprintln!("{test}: skipped: {s}");
    }
    if cases.is_empty() {
        return eprintln!("skipping {test}: no images");
    }
    for case in &cases {
        let Some(v) = setup(test) else { return };
        let t = Instant::now();
        let out = v.load(&case.path);
        let want: String = case
            .names
            .iter()
            .map(|n| format!("Loaded image: {n}\n"))
            .collect();
        assert_eq!(out, want, "{}: load", case.what);
        eprintln!("{test}: {}: loaded in {:?}", case.what, t.elapsed());
        let image = *case.names.last().expect("a name");
        let (repo, tag) = image.rsplit_once(':').expect("name:tag");
        let images = v.ok(&["images"]);
        assert!(
            images
                .lines()
                .any(|l| l.split_whitespace().take(2).eq([repo, tag])),
            "{}: images:\n{images}",
            case.what
        );
        let inspect: serde_json::Value =
            serde_json::from_str(&v.ok(&["image", "inspect", image])).expect("image inspect JSON");
        let id = inspect[0]["Id"].as_str().expect("Id").to_string();
        assert_eq!(id.len(), 64, "{}: {inspect}", case.what);

        for (args, stdout, code) in &case.runs {
            let mut full = vec!["run", "--rm", image];
            full.extend(args);
            let out = v.run(&full);
            assert_eq!(
                (text(&out.stdout), out.status.code()),
                (stdout.clone(), Some(*code)),
                "{}: vigil {full:?}\nstderr: {}",
                case.what,
                text(&out.stderr)
            );
        }
        // tag, run by the new name and by ID prefix, rmi.
        v.ok(&["tag", image, "localhost/e2e-tagged:x"]);
        let (args, stdout, code) = &case.runs[0];
        for name in ["localhost/e2e-tagged:x", &id[..12]] {
            let mut full = vec!["run", "--rm", name];
            full.extend(args);
            let out = v.run(&full);
            assert_eq!(
                (text(&out.stdout), out.status.code()),
                (stdout.clone(), Some(*code)),
                "{}: {name}",
                case.what
            );
        }
        v.ok(&["rmi", "localhost/e2e-tagged:x"]);
        for name in case.names {
            v.ok(&["rmi", name]);
        }
        assert_eq!(v.ok(&["images", "-q"]), "", "{}", case.what);
        assert_eq!(
            v.ok(&["ps", "-a", "-q"]),
            "",
            "{}: --rm left containers",
            case.what
        );
    }
}

// ---- Terminals ------------------------------------------------------------------

#[test]
fn run_with_a_tty_on_a_real_pty() {
    let test = "run_with_a_tty_on_a_real_pty";
    let Some((v, image)) = setup_with_busybox_image(test) else {
        return;
    };

    // The size at start (Podman puts the client's size in the spec's
    // process.consoleSize) and after the session's resize.
    let pty = Pty::open(24, 80);
    // (busybox stty prints nothing on stdout and exits 0 for a 0x0 terminal)
    let script = "tty; s=$(stty size 2>/dev/null); echo \"size:${s:-none}\"; sleep 1; stty size; echo done; exit 3";
    let child = pty.spawn(v.command(&["run", "--rm", "-t", image, "sh", "-c", script]));
    let status = wait_bounded(child, SECS(60), "vigil run -t").status;
    let out = pty.finish(SECS(10));
    assert_eq!(status.code(), Some(3), "{:?}", text(&out));
    let want = "/dev/pts/0\r\nsize:24 80\r\n24 80\r\ndone\r\n";
    assert_tty_bytes(&out, want, "run -t");

    // The size from the very start, of any terminal.
    let pty = Pty::open(37, 111);
    let child = pty.spawn(v.command(&["run", "--rm", "-t", image, "stty", "size"]));
    let status = wait_bounded(child, SECS(60), "vigil run -t stty size").status;
    let out = pty.finish(SECS(10));
    assert_eq!(status.code(), Some(0), "{:?}", text(&out));
    assert_tty_bytes(&out, "37 111\r\n", "run -t stty size");

    // A resize of the user's terminal (SIGWINCH) reaches the container's.
    let pty = Pty::open(37, 111);
    let child = pty.spawn(v.command(&[
        "run",
        "--rm",
        "-i",
        "-t",
        image,
        "sh",
        "-c",
        "stty size; read x; stty size",
    ]));
    pty.wait_raw(SECS(30));
    let at = pty.expect(b"37 111\r\n", 0, SECS(30));
    pty.resize(50, 132);
    // (the resize travels vigil -> ctl fifo -> monitor; typed input may overtake it)
    std::thread::sleep(Duration::from_millis(500));
    pty.write(b"\r");
    let status = wait_bounded(child, SECS(60), "vigil run -it (resize)").status;
    let out = pty.finish(SECS(10));
    assert_eq!(status.code(), Some(0), "{:?}", text(&out));
    assert_tty_bytes(&out[at..], "\r\n50 132\r\n", "run -it after a resize");

    // -it: what is typed is echoed by the container's terminal, then read.
    let pty = Pty::open(30, 100);
    let child = pty.spawn(v.command(&[
        "run",
        "--rm",
        "-i",
        "-t",
        image,
        "sh",
        "-c",
        "read x; echo got:$x; stty size",
    ]));
    pty.wait_raw(SECS(30));
    pty.write(b"abc");
    pty.expect(b"abc", 0, SECS(30)); // echoed by the container's terminal
    pty.write(b"\r");
    let status = wait_bounded(child, SECS(60), "vigil run -it").status;
    let out = pty.finish(SECS(10));
    assert_eq!(status.code(), Some(0), "{:?}", text(&out));
    let got = text(&out);
    let tail = &got[got.find("abc").expect("echo")..];
    assert_tty_bytes(tail.as_bytes(), "abc\r\ngot:abc\r\n30 100\r\n", "run -it");
}

/// Types `line` on `pty` (again every 500 ms: the session may not relay
/// input yet) until `answer` shows; false if it does not within `limit`.
fn typed_and_answered(pty: &Pty, line: &[u8], answer: &[u8], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        pty.write(line);
        std::thread::sleep(Duration::from_millis(500));
        if pty.output().windows(answer.len()).any(|w| w == answer) {
            return true;
        }
    }
    false
}

#[test]
fn detach_with_keys_and_reattach() {
    let test = "detach_with_keys_and_reattach";
    let Some((v, image)) = setup_with_busybox_image(test) else {
        return;
    };
    let script = "while read l; do echo \"got:$l\"; done; echo bye; exit 7";

    // Started detached; attached twice on real terminals.
    let out = v.run(&[
        "run", "-d", "-i", "-t", "--name", "att", image, "sh", "-c", script,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pty = Pty::open(24, 80);
    let child = pty.spawn(v.command(&["attach", "att"]));
    // The first line may be typed before the session relays it: retry until answered.
    let deadline = Instant::now() + SECS(30);
    let mut n = 0;
    let at = loop {
        n += 1;
        pty.write(format!("one{n}\r").as_bytes());
        let seen = pty.output();
        if let Some(i) = seen.windows(6).position(|w| w == b"got:on") {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "attach: no answer: {:?}",
            text(&seen)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    pty.write(b"\x10\x11"); // ctrl-p ctrl-q
    let status = wait_bounded(child, SECS(20), "vigil attach (detach keys)").status;
    assert_eq!(status.code(), Some(0));
    let first = pty.finish(SECS(5));
    assert!(first.len() > at);
    assert_eq!(
        v.inspect("att")["State"]["Status"],
        "running",
        "detaching leaves it running"
    );

    let pty = Pty::open(24, 80);
    let child = pty.spawn(v.command(&["attach", "att"]));
    // (the monitor has -t only, like Podman's: the first client leaving does
    // not close the terminal's input)
    assert!(
        typed_and_answered(&pty, b"two\r", b"got:two\r", SECS(10)),
        "attach after detach: typed input is lost: {:?}",
        text(&pty.output())
    );
    pty.write(b"\x04"); // EOF: the loop ends, the container exits 7
    let status = wait_bounded(child, SECS(30), "vigil attach (container exit)").status;
    let second = pty.finish(SECS(5));
    assert_eq!(status.code(), Some(7), "{:?}", text(&second));
    let second = text(&second);
    assert!(
        !second.contains("got:one"),
        "a new attach does not replay: {second:?}"
    );
    assert!(second.contains("bye"), "{second:?}");
    assert_eq!(v.ok(&["wait", "att"]), "7\n");
    v.ok(&["rm", "att"]);

    // Attached from the start (run -it), detached, attached again.
    let pty = Pty::open(24, 80);
    let child = pty.spawn(v.command(&["run", "-i", "-t", "--name", "att2", image, "sh"]));
    let deadline = Instant::now() + SECS(30);
    while !text(&pty.output()).contains("x2") {
        assert!(
            Instant::now() < deadline,
            "run -it: no shell: {:?}",
            text(&pty.output())
        );
        pty.write(b"echo x$((1+1))\r");
        std::thread::sleep(Duration::from_millis(500));
    }
    pty.write(b"\x10\x11");
    let status = wait_bounded(child, SECS(20), "vigil run -it (detach keys)").status;
    assert_eq!(status.code(), Some(0));
    pty.finish(SECS(5));
    assert_eq!(v.inspect("att2")["State"]["Status"], "running");
    let pty = Pty::open(24, 80);
    let child = pty.spawn(v.command(&["attach", "att2"]));
    assert!(
        typed_and_answered(&pty, b"echo y$((2*3))\r", b"y6", SECS(10)),
        "attach after run -it detached: typed input is lost: {:?}",
        text(&pty.output())
    );
    pty.write(b"exit 9\r");
    let status = wait_bounded(child, SECS(30), "vigil attach (exit 9)").status;
    assert_eq!(status.code(), Some(9), "{:?}", text(&pty.finish(SECS(5))));
    assert_eq!(v.ok(&["wait", "att2"]), "9\n");
    v.ok(&["rm", "att2"]);

    // Without a terminal: attach, go away, attach again and see newer output.
    let ticker = "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.1; done";
    v.ok(&["run", "-d", "--name", "tick", image, "sh", "-c", ticker]);
    let last_tick = |out: &str| -> u64 {
        out.lines()
            .filter_map(|l| l.strip_prefix("tick")?.parse().ok())
            .max()
            .unwrap_or(0)
    };
    let attach_for = |d: Duration| -> String {
        let att = Piped::spawn(v.command(&["attach", "--no-stdin", "--sig-proxy=false", "tick"]));
        std::thread::sleep(d);
        text(&att.kill())
    };
    let first = attach_for(Duration::from_millis(1500));
    let n1 = last_tick(&first);
    assert!(n1 > 0, "attach saw no output: {first:?}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(v.inspect("tick")["State"]["Status"], "running");
    let second = attach_for(Duration::from_millis(1500));
    let n2 = last_tick(&second);
    let lowest = second
        .lines()
        .filter_map(|l| l.strip_prefix("tick")?.parse::<u64>().ok())
        .min()
        .unwrap_or(0);
    assert!(
        lowest > n1 && n2 > lowest,
        "second attach: {lowest}..{n2} after {n1}: {second:?}"
    );
    v.ok(&["kill", "tick"]);
    assert_eq!(v.ok(&["wait", "tick"]), "137\n");
    v.ok(&["rm", "tick"]);
}

/// Without a terminal: detach keys on a piped stdin (as Podman honours them
/// for `-i` without `-t`), `attach` going away quietly when its stdout is
/// closed, and SIGTERM to `attach` forwarded to the container (sig-proxy).
#[test]
fn attach_on_pipes() {
    let test = "attach_on_pipes";
    let Some((v, image)) = setup_with_busybox_image(test) else {
        return;
    };
    // The loop ends at end of input (the monitor closes the container's
    // stdin when a client leaves, as with Podman); the container stays.
    let script = "while read l; do echo \"got:$l\"; done; echo eof; exec sleep 1000";

    // run -i: a prefix of the keys that is not completed is passed on; the
    // keys themselves, in separate reads, detach and are not passed on.
    let mut run =
        Piped::spawn(v.command(&["run", "-i", "--name", "p1", image, "sh", "-c", script]));
    let deadline = Instant::now() + SECS(30);
    let mut n = 0;
    while !text(&run.output()).contains("got:first") {
        assert!(
            Instant::now() < deadline,
            "run -i: no answer: {:?}",
            text(&run.output())
        );
        n += 1;
        run.write(format!("first{n}\n").as_bytes());
        std::thread::sleep(Duration::from_millis(300));
    }
    run.write(b"a\x10b\n");
    run.expect(b"got:a\x10b\n", SECS(20));
    run.write(b"c\n\x10");
    run.expect(b"got:c\n", SECS(20));
    run.write(b"\x11d\n");
    let out = run.finish(SECS(20), "vigil run -i (detach keys)");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(v.inspect("p1")["State"]["Status"], "running", "detached");
    v.wait_for("the loop to end", SECS(20), |v| {
        v.ok(&["logs", "p1"]).ends_with("eof\n")
    });
    let logs = v.ok(&["logs", "p1"]);
    assert!(
        logs.ends_with("got:a\x10b\ngot:c\neof\n"),
        "the detach keys were passed on: {logs:?}"
    );
    v.ok(&["rm", "-f", "p1"]);

    // attach: the same, with --detach-keys.
    v.ok(&["run", "-d", "-i", "--name", "p2", image, "sh", "-c", script]);
    let mut att = Piped::spawn(v.command(&["attach", "--detach-keys", "ctrl-a,x", "p2"]));
    let deadline = Instant::now() + SECS(30);
    while !text(&att.output()).contains("got:hello") {
        assert!(
            Instant::now() < deadline,
            "attach: no answer: {:?}",
            text(&att.output())
        );
        att.write(b"hello\n");
        std::thread::sleep(Duration::from_millis(300));
    }
    att.write(b"y\x01z\n\x01");
    att.expect(b"got:y\x01z\n", SECS(20));
    att.write(b"x");
    let out = att.finish(SECS(20), "vigil attach (detach keys)");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(v.inspect("p2")["State"]["Status"], "running", "detached");
    v.wait_for("the loop to end", SECS(20), |v| {
        v.ok(&["logs", "p2"]).ends_with("eof\n")
    });
    v.ok(&["rm", "-f", "p2"]);

    // `vigil attach X | head -1`: once its stdout is gone, attach ends
    // quietly and the container keeps running.
    let ticker = "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.1; done";
    v.ok(&["run", "-d", "--name", "tick", image, "sh", "-c", ticker]);
    let mut child = v
        .command(&["attach", "tick"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("attach");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 4];
    stdout.read_exact(&mut first).expect("first output");
    assert_eq!(&first, b"tick");
    drop(stdout);
    let out = wait_bounded(child, SECS(20), "vigil attach with its stdout closed");
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(0), String::new()),
        "attach after its stdout went away"
    );
    assert_eq!(v.inspect("tick")["State"]["Status"], "running");
    v.ok(&["rm", "-f", "tick"]);

    // SIGTERM to attach (e.g. from `timeout`) goes to the container, as
    // with Podman's --sig-proxy (default true); attach then ends with it.
    let trap = "trap 'echo term; exit 4' TERM; echo up; while :; do sleep 0.1; done";
    v.ok(&["run", "-d", "--name", "trap", image, "sh", "-c", trap]);
    v.wait_for("trap up", SECS(20), |v| v.ok(&["logs", "trap"]) == "up\n");
    let att = Piped::spawn(v.command(&["attach", "--no-stdin", "trap"]));
    std::thread::sleep(Duration::from_millis(1000));
    // SAFETY: plain kill(2) of our child.
    unsafe { libc::kill(att.child.id() as i32, libc::SIGTERM) };
    let out = att.finish(SECS(30), "vigil attach (SIGTERM)");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "term\n");
    assert_eq!(v.ok(&["wait", "trap"]), "4\n");
    v.ok(&["rm", "trap"]);
}

// ---- Logs ---------------------------------------------------------------------

#[test]
fn logs_follow_across_rotations() {
    follow_across_rotations("logs_follow_across_rotations", None);
}

/// `--log-opt max-file=N` (vigil extension): the monitor rotates
/// (`--log-rotate --log-max-files N`) instead of truncating; `logs` reads
/// the rotated files too.
#[test]
fn logs_follow_across_rotations_with_max_file() {
    follow_across_rotations("logs_follow_across_rotations_with_max_file", Some(3));
}

/// `logs -f` sees every line once, in order, while the log is replaced
/// (max-size) or rotated (max-size and max-file) dozens of times.
fn follow_across_rotations(test: &str, max_file: Option<u32>) {
    let Some((v, image)) = setup_with_busybox_image(test) else {
        return;
    };
    let sig = v.dir.path().join("sig");
    std::fs::create_dir(&sig).expect("mkdir");
    let volume = format!("{}:/sig", sig.display());
    const LINES: usize = 1500;
    // About 45 bytes a record, so the 4 KiB cap replaces the log every ~90
    // lines. Paced (25 lines every 0.2 s, a replacement every ~0.7 s) so that
    // the follower, polling every 100 ms, reads each file before the next
    // replacement: with max-size the monitor keeps no rotated copies, so a
    // file replaced before it was opened is lost for Podman's follower too.
    let script = format!(
        "echo ready; while [ ! -e /sig/go ]; do sleep 0.05; done; i=0; \
         while [ $i -lt {LINES} ]; do i=$((i+1)); echo line$i; \
         if [ $((i % 25)) = 0 ]; then sleep 0.2; fi; done"
    );
    let mut args = vec!["run", "-d", "--name", "rot", "--log-opt", "max-size=4k"];
    let max_file_opt = max_file.map(|n| format!("max-file={n}"));
    if let Some(opt) = &max_file_opt {
        args.extend(["--log-opt", opt]);
    }
    args.extend(["-v", &volume, image, "sh", "-c", &script]);
    let out = v.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let follower = Piped::spawn(v.command(&["logs", "-f", "rot"]));
    let deadline = Instant::now() + SECS(30);
    while !follower.output().starts_with(b"ready\n") {
        assert!(
            Instant::now() < deadline,
            "logs -f printed no 'ready': {:?}",
            text(&follower.output())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(sig.join("go"), b"").expect("go");
    let followed = follower.finish(SECS(120), "vigil logs -f");
    assert_eq!(followed.status.code(), Some(0));
    assert_eq!(v.ok(&["wait", "rot"]), "0\n");

    let expected: String = std::iter::once("ready\n".to_string())
        .chain((1..=LINES).map(|i| format!("line{i}\n")))
        .collect();
    let got = text(&followed.stdout);
    if got != expected {
        let lines: Vec<&str> = got.lines().collect();
        let mut missing = Vec::new();
        let mut dup = Vec::new();
        let mut counts = std::collections::HashMap::new();
        for l in &lines {
            *counts.entry(*l).or_insert(0) += 1;
        }
        for want in expected.lines() {
            match counts.get(want) {
                None => missing.push(want.to_string()),
                Some(c) if *c > 1 => dup.push(want.to_string()),
                _ => {}
            }
        }
        panic!(
            "logs -f across rotations: {} lines, {} missing (first: {:?}), {} repeated (first: {:?})",
            lines.len(),
            missing.len(),
            missing.iter().take(10).collect::<Vec<_>>(),
            dup.len(),
            dup.iter().take(10).collect::<Vec<_>>()
        );
    }
    // The log was replaced or rotated: what is left is a tail of the output,
    // under the cap (with max-file: in the rotated files as well).
    let left = v.ok(&["logs", "rot"]);
    assert!(
        left.len() < expected.len() / 4 && expected.ends_with(&left),
        "{} bytes left",
        left.len()
    );
    let log_path = v.inspect("rot")["LogPath"]
        .as_str()
        .map(PathBuf::from)
        .expect("LogPath");
    assert!(
        std::fs::metadata(&log_path).unwrap().len() <= 4096 + 8192,
        "{}",
        log_path.display()
    );
    let rotated = |n: u32| PathBuf::from(format!("{}.{n}", log_path.display()));
    if let Some(n) = max_file {
        // (the monitor keeps two files for max-file=1, like conmon 2.2.1)
        let kept = n.max(2);
        assert!(rotated(kept).is_file() && !rotated(kept + 1).exists());
        // More than one file's worth: the rotated files are read too.
        let live = std::fs::read_to_string(&log_path).unwrap().lines().count();
        assert!(
            left.lines().count() > live,
            "{} lines",
            left.lines().count()
        );
    } else {
        assert!(!rotated(1).exists());
    }
    v.ok(&["rm", "rot"]);
}

// ---- The container commands on an image -------------------------------------------

#[test]
fn container_commands_on_an_image() {
    let test = "container_commands_on_an_image";
    let Some((v, image)) = setup_with_busybox_image(test) else {
        return;
    };

    let script =
        "trap 'echo term; exit 0' TERM; echo one; echo two >&2; while :; do sleep 0.1; done";
    let id = v
        .ok(&[
            "create", "--name", "c1", "-e", "X=y", image, "sh", "-c", script,
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ps = v.ok(&["ps", "-a"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&id[..12]) && l.contains(image) && l.contains("Created")),
        "{ps}"
    );
    assert_eq!(v.inspect("c1")["State"]["Status"], "created");
    assert_eq!(v.ok(&["start", "c1"]), "c1\n");
    v.wait_for("output in the log", SECS(20), |v| {
        v.run(&["logs", "c1"]).stdout == b"one\n"
    });
    let logs = v.run(&["logs", "c1"]);
    assert_eq!(
        (text(&logs.stdout), text(&logs.stderr)),
        ("one\n".into(), "two\n".into())
    );
    assert_eq!(v.ok(&["logs", "--since", "1h", "c1"]), "one\n");
    assert_eq!(v.ok(&["logs", "--since", "2099-01-01T00:00:00Z", "c1"]), "");
    assert_eq!(v.ok(&["logs", "--tail", "0", "c1"]), "");
    let stamped = v.ok(&["logs", "-t", "c1"]);
    assert!(
        stamped.ends_with(" one\n") && stamped.len() > 25,
        "{stamped:?}"
    );

    let out = v.run(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "echo $X; cat /srv/keep/f5; exit 6",
    ]);
    assert_eq!(
        (text(&out.stdout), out.status.code()),
        ("y\nre-added\n".into(), Some(6))
    );
    let out = v.run_input(&["exec", "-i", "c1", "sh", "-c", "wc -c"], b"12345");
    assert_eq!(text(&out.stdout).trim(), "5");
    let pty = Pty::open(24, 80);
    let child = pty.spawn(v.command(&[
        "exec",
        "-t",
        "c1",
        "sh",
        "-c",
        "tty >/dev/null && echo is-a-tty",
    ]));
    assert_eq!(
        wait_bounded(child, SECS(30), "exec -t").status.code(),
        Some(0)
    );
    assert_tty_bytes(&pty.finish(SECS(5)), "is-a-tty\r\n", "exec -t");
    let pty = Pty::open(33, 99);
    let child = pty.spawn(v.command(&["exec", "-t", "c1", "stty", "size"]));
    assert_eq!(
        wait_bounded(child, SECS(30), "exec -t stty size")
            .status
            .code(),
        Some(0)
    );
    assert_tty_bytes(&pty.finish(SECS(5)), "33 99\r\n", "exec -t stty size");

    let inspect = v.inspect("c1");
    assert_eq!(inspect["State"]["Status"], "running");
    assert_eq!(inspect["Id"], id.as_str());
    assert!(v.ok(&["ps"]).contains("c1"));
    assert_eq!(v.ok(&["stop", "c1"]), "c1\n");
    assert_eq!(v.ok(&["wait", "c1"]), "0\n");
    assert_eq!(v.ok(&["logs", "c1"]), "one\nterm\n");
    assert!(v.ok(&["ps", "-a"]).contains("Exited (0)"));
    let stopped_id = id.clone();

    // Image removal is refused while a container uses it (Podman: exit 2);
    // another name only untags; --force removes the containers first.
    let out = v.run(&["rmi", image]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "rmi of an image in use: {}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains(&id[..12]),
        "{}",
        text(&out.stderr)
    );
    v.ok(&["tag", image, "localhost/other:1"]);
    assert_eq!(
        v.ok(&["rmi", "localhost/other:1"]),
        "Untagged: localhost/other:1\n"
    );
    assert_eq!(v.ok(&["start", "c1"]), "c1\n");
    v.ok(&["tag", image, "localhost/other:1"]);
    let out = v.ok(&["rmi", "-f", "localhost/other:1"]);
    assert_eq!(
        out, "Untagged: localhost/other:1\n",
        "only untags: the image has another name"
    );
    v.ok(&["create", "--name", "c2", image, "true"]);
    let image_id = v.inspect("c1")["Image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let out = v.ok(&["rmi", "-f", image]);
    assert!(
        out.starts_with(&format!("Untagged: {image}\nDeleted: ")),
        "{out}"
    );
    if !image_id.is_empty() {
        assert!(out.contains(&image_id), "{out} / {image_id}");
    }
    assert_eq!(
        v.ok(&["ps", "-a", "-q"]),
        "",
        "rmi -f removed the containers"
    );
    assert_eq!(v.ok(&["images", "-q"]), "");
    v.load(&e2e_images().expect("images").join("churn-oci.tar"));

    assert_eq!(
        v.run(&["inspect", &stopped_id]).status.code(),
        Some(125),
        "removed by rmi -f"
    );
    // (a container's init only gets signals it handles, SIGKILL aside)
    let trap = "trap 'exit 3' USR1; echo up; while :; do sleep 0.1; done";
    v.ok(&["run", "-d", "--name", "k1", image, "sh", "-c", trap]);
    v.wait_for("k1 up", SECS(20), |v| {
        v.run(&["logs", "k1"]).stdout == b"up\n"
    });
    assert_eq!(v.ok(&["kill", "-s", "USR1", "k1"]), "k1\n");
    assert_eq!(v.ok(&["wait", "k1"]), "3\n");
    v.ok(&["rm", "k1"]);
    v.ok(&["run", "-d", "--name", "k2", image, "sleep", "1000"]);
    let removed = v.ok(&["rm", "-f", "k2"]);
    assert_eq!(removed.len(), 65, "{removed}");
    assert_eq!(v.ok(&["ps", "-a", "-q"]), "");
    v.ok(&["rmi", image]);
    assert_eq!(v.ok(&["images", "-q"]), "");
}
