"""Network section of scripts/bench-runner (imported by it; not run alone).

  1. `vigil run --rm IMG true` on vigil's default bridge network vs
     `podman run --rm --network bridge IMG true` on Podman's (netavark, a
     private configuration whose network files live in the scratch
     directory). The engines alternate run by run; medians of --runs after
     2 warm-up runs each, and the median of the pairs' ratios. Goal: vigil
     <= 0.5x. A second alternating pass runs both engines with a netavark
     that is a wrapper recording its own wall time (helper_binaries_dir), and
     splits each run into netavark's setup + teardown and the engine's own
     rest: netavark alone is the floor under both engines.
  2. 1 GiB sent from the host to a rootless container through a published
     loopback port (`-p 127.0.0.1:PORT:8080`), as the rootless test user
     (scripts/rootless-setup): vigil's port forwarder vs Podman's
     rootlessport, both over slirp4netns namespaces. The same pair on both
     sides: this script's Python sender (1 MiB sends) and, in the container,
     the host's python3 (mounted read-only with /usr and the loader)
     draining each connection with 1 MiB recv_into calls. busybox `nc`,
     used before, read 4 KiB at a time and was the bottleneck of both.
     Wall time from connect to the receiver's close; medians of --rounds.
     Goal: vigil >= 1x.

Traffic goes only to 127.0.0.1 and to containers on the bridges used here.
"""

import os
import pwd
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

GIB = 1 << 30


def _run(cmd, env=None, user=None, check=True, timeout=300):
    kw = {}
    if user is not None:
        kw = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    res = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {res.returncode}: "
                           f"{res.stderr.decode(errors='replace').strip()[-1500:]}")
    return res


def _timed(cmd, env=None):
    t = time.perf_counter()
    _run(cmd, env=env)
    return time.perf_counter() - t


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _podman_conf(d, rootless, helpers=None, name="containers.conf"):
    """A private Podman configuration in `d` (netavark; its network files in `d`).

    As root the store is overlay, as vigil's is: with vfs Podman copied the
    whole image into every new container, which made its `run --rm` about
    0.2 s slower than Podman on its default driver."""
    for sub in ("store", "run", "tmp", "networks"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    with open(os.path.join(d, "storage.conf"), "w") as f:
        driver = "vfs" if rootless else "overlay"
        f.write(f'[storage]\ndriver = "{driver}"\ngraphroot = "{d}/store"\nrunroot = "{d}/run"\n')
    limits = "" if rootless else 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
    helper_dirs = f'helper_binaries_dir = ["{helpers}"]\n' if helpers else ""
    with open(os.path.join(d, name), "w") as f:
        f.write(f'[containers]\n{limits}[network]\nnetwork_backend = "netavark"\n'
                f'network_config_dir = "{d}/networks"\n[engine]\nruntime = "runc"\n{helper_dirs}'
                f'cgroup_manager = "cgroupfs"\nevents_logger = "none"\ntmp_dir = "{d}/tmp"\n')
    with open(os.path.join(d, "registries.conf"), "w") as f:
        f.write("unqualified-search-registries = []\n")
    return dict(CONTAINERS_CONF=f"{d}/{name}",
                CONTAINERS_STORAGE_CONF=f"{d}/storage.conf",
                CONTAINERS_REGISTRIES_CONF=f"{d}/registries.conf", TMPDIR=f"{d}/tmp")


HELPER_DIRS = ("/usr/local/libexec/podman", "/usr/local/lib/podman", "/usr/libexec/podman",
               "/usr/lib/podman")


def _netavark_timer(d):
    """A helper directory whose `netavark` runs the real one and appends
    "start end" (seconds, from bash's clock) to the returned log; the other
    helpers are linked. The wrapper costs one bash start per call, on both
    engines alike."""
    real = next((h for h in HELPER_DIRS if os.access(os.path.join(h, "netavark"), os.X_OK)), None)
    if real is None:
        return None, None
    hd, log = os.path.join(d, "helpers"), os.path.join(d, "netavark-times")
    os.makedirs(hd, exist_ok=True)
    for name in os.listdir(real):
        if name != "netavark":
            os.symlink(os.path.join(real, name), os.path.join(hd, name))
    with open(os.path.join(hd, "netavark"), "w") as f:
        f.write(f'#!/bin/bash\ns=$EPOCHREALTIME\n"{real}/netavark" "$@"\nrc=$?\n'
                f'echo "$s $EPOCHREALTIME" >> "{log}"\nexit $rc\n')
    os.chmod(os.path.join(hd, "netavark"), 0o755)
    return hd, log


def _netavark_seconds(log):
    """The netavark time logged since the last call (and the log emptied)."""
    try:
        with open(log) as f:
            spans = [l.split() for l in f if l.strip()]
        os.unlink(log)
    except FileNotFoundError:
        return 0.0
    return sum(float(e) - float(s) for s, e in spans)


def _split_rows(runs, vigil_cmd, vigil_env, podman_cmd, podman_env, log):
    """Alternating timed runs with the netavark wrapper: each engine's median
    total, netavark's share and the rest."""
    v, p = [], []
    for _ in range(runs):
        for cmd, env, out in ((vigil_cmd, vigil_env, v), (podman_cmd, podman_env, p)):
            _netavark_seconds(log)
            total = _timed(cmd, env=env)
            out.append((total, _netavark_seconds(log)))
    med = lambda xs: statistics.median(xs) * 1000
    vn, pn = med([n for _, n in v]), med([n for _, n in p])
    vr, pr = med([t - n for t, n in v]), med([t - n for t, n in p])
    pt = med([t for t, _ in p])
    return [
        (f"  with netavark timed ({runs} more pairs): netavark setup + teardown, median (ms)",
         f"{vn:.1f}", f"{pn:.1f}", "", ""),
        ("  the engine's own rest of the run, median (ms)", f"{vr:.1f}", f"{pr:.1f}", "",
         f"{pr / vr:.2f}x" if vr > 0 else "n/a"),
        ("  floor: vigil's netavark time alone over Podman's whole run", "", "", "",
         f"{vn / pt:.2f} of it" if pt > 0 else "n/a"),
    ]


def start_rows(args, scratch, image_tar, image, vigil, conmon, have_podman):
    """Rows for `run --rm IMG true` on the default bridge networks.

    The engines alternate run by run (vigil, Podman, vigil, ...), so a drift
    of the machine's state (this VM's memory and RCU costs move by tens of
    ms over minutes) falls on both alike; besides the medians, the median of
    each back-to-back pair's ratio is reported."""
    d = os.path.join(scratch, "net-vigil")
    vcmd = [vigil, "--root", f"{d}/root", "--runroot", f"{d}/run", "--conmon", conmon]
    _run(vcmd + ["load", "-q", "-i", image_tar])
    run_true = vcmd + ["run", "--rm", image, "true"]
    for _ in range(2):
        _run(run_true)
    vt, pt, note = [], None, ""
    pd, env = None, None
    if have_podman:
        pd = tempfile.mkdtemp(prefix="vbn", dir="/tmp")
        env = dict(os.environ, **_podman_conf(pd, rootless=False))
    pcmd = ["podman", "run", "--rm", "--pull", "never", "--network", "bridge", image, "true"]
    try:
        if have_podman:
            try:
                _run(["podman", "load", "-q", "-i", image_tar], env=env)
                for _ in range(2):
                    _run(pcmd, env=env)
                pt = []
            except RuntimeError as e:
                note = f"podman (bridge) failed: {e}"
        for _ in range(args.runs):
            vt.append(_timed(run_true))
            if pt is not None:
                try:
                    pt.append(_timed(pcmd, env=env))
                except RuntimeError as e:
                    note, pt = f"podman (bridge) failed: {e}", None
        helpers, log = _netavark_timer(d)
        split = []
        if pt and helpers:
            with open(os.path.join(d, "containers-timed.conf"), "w") as f:
                f.write(f'[engine]\nhelper_binaries_dir = ["{helpers}"]\n')
            venv = dict(os.environ, CONTAINERS_CONF=os.path.join(d, "containers-timed.conf"))
            penv = dict(os.environ, **_podman_conf(pd, rootless=False, helpers=helpers,
                                                   name="containers-timed.conf"))
            try:
                split = _split_rows(args.runs, run_true, venv, pcmd, penv, log)
            except RuntimeError as e:
                note = f"netavark-timed pass failed: {e}"
    finally:
        if pd is not None:
            _run(["podman", "rm", "-a", "-f"], env=env, check=False)
            _run(["podman", "rmi", "-a", "-f"], env=env, check=False)
            subprocess.run(["umount", "-R", pd], stderr=subprocess.DEVNULL)
            shutil.rmtree(pd, ignore_errors=True)
    med = lambda xs: statistics.median(xs) * 1000
    rows = [(f"run --rm IMG true, default bridge network, median of {args.runs} (ms)",
             f"{med(vt):.1f}", f"{med(pt):.1f}" if pt else "n/a", "",
             f"{med(pt) / med(vt):.2f}x" if pt else "n/a")]
    if pt:
        pairs = [p / v for v, p in zip(vt, pt)]
        rows.append((f"  same, median of the {len(pairs)} back-to-back pairs' ratios",
                     "", "", "", f"{statistics.median(pairs):.2f}x"))
    return rows + split, note


def _send_gib(port, total=GIB, attempts=20):
    """Send `total` bytes to 127.0.0.1:port and wait for the receiver to close; seconds."""
    chunk = memoryview(bytes(1 << 20))  # slices of a memoryview are not copies
    for _ in range(attempts):
        try:
            t = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                left = total
                while left > 0:
                    n = s.send(chunk[:min(left, len(chunk))])
                    left -= n
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
            return time.perf_counter() - t
        except OSError:
            # Refused, reset, or (ENOTCONN on shutdown) closed by the forwarder
            # while the receiver was not listening yet: try again, bounded.
            time.sleep(0.3)
    raise RuntimeError(f"no receiver behind 127.0.0.1:{port}")


class _RootlessUser:
    """Commands as the rootless test user, in a private directory."""

    def __init__(self, name):
        self.pw = pwd.getpwnam(name)
        self.d = tempfile.mkdtemp(prefix="vbn-rl-", dir="/tmp")
        os.chmod(self.d, 0o755)
        for sub in ("home", "run"):
            p = os.path.join(self.d, sub)
            os.makedirs(p)
            os.chown(p, self.pw.pw_uid, self.pw.pw_gid)
            os.chmod(p, 0o700)
        self.env = dict(HOME=f"{self.d}/home", USER=name, LOGNAME=name,
                        PATH="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                        XDG_RUNTIME_DIR=f"{self.d}/run", XDG_DATA_HOME=f"{self.d}/home/data",
                        XDG_CONFIG_HOME=f"{self.d}/home/config")

    def copy(self, path, mode=0o755):
        dst = os.path.join(self.d, os.path.basename(path))
        shutil.copy(path, dst)
        os.chmod(dst, mode)
        return dst

    def run(self, cmd, env=None, check=True):
        return _run(cmd, env=dict(self.env, **(env or {})), user=self.pw, check=check)


# The receiver in the container: drains each connection into a 1 MiB buffer.
_SINK = """import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen(16)
buf = bytearray(1 << 20)
while True:
    c, _ = s.accept()
    while c.recv_into(buf):
        pass
    c.close()
"""

# The host's python3 inside the busybox image (read-only; same for both engines).
_PYTHON_MOUNTS = ["-v", "/usr:/usr:ro", "-v", "/usr/lib:/lib:ro", "-v", "/usr/lib64:/lib64:ro"]


def _throughput(user, engine_cmd, image, env=None, rounds=3):
    port = _free_port()
    user.run(engine_cmd + ["run", "-d", "--name", "sink", "-p", f"127.0.0.1:{port}:8080",
                           "--user", "0", *_PYTHON_MOUNTS, "--entrypoint", "/usr/bin/python3",
                           image, "-c", _SINK],
             env=env)
    try:
        _send_gib(port, total=1 << 20)  # warm-up: the receiver is up
        return statistics.median(_send_gib(port) for _ in range(rounds))
    finally:
        user.run(engine_cmd + ["rm", "-f", "sink"], env=env, check=False)


def rootless_port_rows(args, image_tar, image, vigil, conmon, have_podman, user_name):
    """Rows for 1 GiB through a rootless published port."""
    try:
        pwd.getpwnam(user_name)
    except KeyError:
        return [], f"rootless port throughput skipped: no user {user_name} (scripts/rootless-setup)"
    u = _RootlessUser(user_name)
    note = ""
    try:
        tar = u.copy(image_tar, 0o644)
        vcmd = [u.copy(vigil), "--conmon", u.copy(conmon)]
        u.run(vcmd + ["load", "-q", "-i", tar])
        vt = _throughput(u, vcmd, image, rounds=args.rounds)
        pt = None
        if have_podman:
            pd = os.path.join(u.d, "home", "podman")
            os.makedirs(pd)
            penv = _podman_conf(pd, rootless=True)
            _run(["chown", "-R", f"{u.pw.pw_uid}:{u.pw.pw_gid}", pd])
            try:
                u.run(["podman", "load", "-q", "-i", tar], env=penv)
                pt = _throughput(u, ["podman"], image, env=penv, rounds=args.rounds)
            except RuntimeError as e:
                note = f"podman rootless failed: {e}"
            finally:
                u.run(["podman", "rm", "-a", "-f"], env=penv, check=False)
                u.run(["podman", "system", "reset", "-f"], env=penv, check=False)
        rate = lambda t: f"{1 / t:.2f} GiB/s ({t:.2f} s)"
        rows = [(f"1 GiB into a rootless container via -p 127.0.0.1:P:8080, median of {args.rounds}",
                 rate(vt), rate(pt) if pt else "n/a", "", f"{pt / vt:.2f}x" if pt else "n/a")]
    finally:
        pause = os.path.join(u.d, "run", "vigil", "pause.pid")
        if os.path.exists(pause):
            subprocess.run(["kill", open(pause).read().strip()], stderr=subprocess.DEVNULL)
        shutil.rmtree(u.d, ignore_errors=True)
    return rows, note
