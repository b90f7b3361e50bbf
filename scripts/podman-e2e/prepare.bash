# Preparation of one suite pass: private Podman configuration, storage and image.
# Sourced by ./run and by setup_suite.bash (when bats is invoked directly). Never touches /etc.

# e2e_rootfs_tar TARBALL : busybox-static rootfs (every applet as a symlink), built offline.
e2e_rootfs_tar() {
    local tarball=$1 busybox=${E2E_BUSYBOX:-/bin/busybox} r
    [ -s "$tarball" ] && return 0
    if [ ! -x "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1; then
        echo "prepare: $busybox missing (install busybox-static)" >&2
        return 1
    fi
    if command -v file >/dev/null 2>&1 && ! file -L "$busybox" | grep -q 'statically linked'; then
        echo "prepare: $busybox is not statically linked (install busybox-static)" >&2
        return 1
    fi
    r=$(mktemp -d "${tarball%/*}/rootfs.XXXX")
    mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,run,var/tmp,w}
    chmod 1777 "$r/tmp" "$r/var/tmp"
    cp "$busybox" "$r/bin/busybox"
    chmod 0755 "$r/bin/busybox"
    local a
    for a in $("$busybox" --list) sh cat echo printf sleep yes head seq kill true false tail dd \
        env id ls mkdir rm stty tty wc touch tr md5sum; do
        [ "$a" = busybox ] || ln -sfn busybox "$r/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$r/etc/passwd"
    printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$r/etc/group"
    tar -C "$r" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$r"
}

# e2e_write_conf FILE CONMON TMPDIR
e2e_write_conf() {
    cat >"$1" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
conmon_path = ["$2"]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$3"
EOF
}

# e2e_prepare_pass WORKDIR CONMON REF_CONMON ROOTFS_TAR
#   WORKDIR/containers.conf      conmon_path = CONMON (the pass's monitor)
#   WORKDIR/containers-ref.conf  conmon_path = REF_CONMON (on-demand comparison; same storage)
#   WORKDIR/storage.conf         overlay if it works here, else vfs
e2e_prepare_pass() {
    local w=$1 bin=$2 ref=$3 tarball=$4 driver
    mkdir -p "$w/root" "$w/run" "$w/tmp"
    e2e_write_conf "$w/containers.conf" "$bin" "$w/tmp"
    [ -n "$ref" ] && e2e_write_conf "$w/containers-ref.conf" "$ref" "$w/tmp"
    for driver in ${E2E_STORAGE_DRIVER:-overlay vfs}; do
        cat >"$w/storage.conf" <<EOF
[storage]
driver = "$driver"
graphroot = "$w/root"
runroot = "$w/run"
EOF
        if CONTAINERS_CONF="$w/containers.conf" CONTAINERS_STORAGE_CONF="$w/storage.conf" \
            podman info --format '{{.Store.GraphDriverName}}' >"$w/driver" 2>"$w/driver.err" &&
            [ "$(cat "$w/driver")" = "$driver" ]; then
            break
        fi
        echo "prepare: storage driver $driver does not work here: $(cat "$w/driver.err")" >&2
        rm -rf "$w/root" "$w/run"
        mkdir -p "$w/root" "$w/run"
    done
    export CONTAINERS_CONF="$w/containers.conf" CONTAINERS_STORAGE_CONF="$w/storage.conf"
    podman import -q "$tarball" "${E2E_IMAGE:-localhost/e2e-bb:latest}" >/dev/null || return 1
    # Default (bridge) networking needs netavark or CNI plugins; fall back to no network.
    if ! podman run --rm "${E2E_IMAGE:-localhost/e2e-bb:latest}" true >/dev/null 2>"$w/net.err"; then
        echo "prepare: 'podman run' with default networking failed ($(tail -n1 "$w/net.err")); using netns = \"none\"" >&2
        local f
        for f in "$w/containers.conf" "$w/containers-ref.conf"; do
            [ -f "$f" ] && sed -i 's/^\[containers\]$/[containers]\nnetns = "none"/' "$f"
        done
        podman run --rm "${E2E_IMAGE:-localhost/e2e-bb:latest}" true >/dev/null || return 1
    fi
    local path
    path=$(podman info --format '{{.Host.Conmon.Path}}') || return 1
    if [ "$path" != "$bin" ]; then
        echo "prepare: podman uses conmon '$path', not '$bin' (its --version probe failed?)" >&2
        return 1
    fi
}

# e2e_teardown_pass WORKDIR : remove everything the pass created (containers, mounts, files).
e2e_teardown_pass() {
    local w=$1 m
    [ -f "$w/storage.conf" ] || { rm -rf "$w"; return 0; }
    export CONTAINERS_CONF="$w/containers.conf" CONTAINERS_STORAGE_CONF="$w/storage.conf"
    timeout 120 podman pod rm -a -f -t 0 >/dev/null 2>&1
    timeout 120 podman rm -a -f -t 0 >/dev/null 2>&1
    timeout 120 podman rmi -a -f >/dev/null 2>&1
    # containers/storage keeps its graphroot overlay dir mounted; drop every mount below $w.
    for m in $(awk -v w="$w/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$w"
}

# e2e_ensure_journald : start systemd-journald if none runs (no systemd as PID 1 here).
# Prints "started <pid>" if it started one; leaves it running.
e2e_ensure_journald() {
    if pgrep -x systemd-journal >/dev/null 2>&1; then
        return 0
    fi
    local jd=/lib/systemd/systemd-journald
    [ -x "$jd" ] || return 1
    mkdir -p /run/systemd/journal
    setsid -f "$jd" </dev/null >/dev/null 2>&1 || return 1
    local i
    for i in $(seq 1 50); do
        if [ -S /run/systemd/journal/socket ] && pgrep -x systemd-journal >/dev/null 2>&1; then
            echo "started $(pgrep -x systemd-journal | head -n1)"
            return 0
        fi
        sleep 0.1
    done
    return 1
}
