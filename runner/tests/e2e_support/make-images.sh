#!/usr/bin/env bash
# Images for runner/tests/runner_e2e.rs and podman_parity.rs, built offline.
#
# Usage: make-images.sh DIR
#
# Produces in DIR (each only if its tools work here; MANIFEST lists what was built):
#   built-docker.tar  built-oci.tar
#        `podman build` (overlay storage, runc, no network) FROM a `podman import`ed
#        busybox base with xattrs; RUN/COPY/ADD steps make setuid/setgid/sticky modes,
#        owners, symlinks, hard links, a device, a FIFO, user.* xattrs (base, COPY, ADD),
#        deletions of files and directories and a real opaque directory; then
#        `podman save --format docker-archive` and `--format oci-archive`.
#        Name localhost/e2e-built:1.
#   churn/ churn-docker.tar churn-oci.tar
#        umoci layout (4 layers) with deletions across layers: files and directories
#        deleted, re-created with another type, owners and modes changed without content
#        changes, hard links, plus a hand-made last layer (PAX xattrs, long names, an
#        opaque directory listed after its new children, a whiteout and a re-add in the
#        same layer, an entry before its parent directory). Name localhost/e2e-churn:1.
#   minbase/ minbase-docker.tar minbase-oci.tar
#        a Debian root file system in 3 layers: `debootstrap --variant=minbase bookworm`
#        from the mirror apt is configured with (cached in DIR/../e2e-cache; skipped
#        after 240 s, on failure, without a bookworm source in apt's configuration or
#        when VIGIL_E2E_DEBOOTSTRAP=0), else "minbase-like": bash, coreutils and their
#        libraries copied from this machine. MINBASE_KIND says which.
#        Name localhost/e2e-minbase:1.
# Idempotent (a version line in MANIFEST); serialised with flock on DIR.lock.
set -euo pipefail

dest=${1:?usage: make-images.sh DIR}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="e2e-images v1 $(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
busybox=${BUSYBOX:-/bin/busybox}

log() { printf 'make-images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ "$(id -u)" == 0 ]] || die "must run as root"
for tool in umoci skopeo python3 setfattr; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
[[ -x "$busybox" ]] || die "$busybox not found (busybox-static)"

mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9
if [[ -f "$dest/MANIFEST" ]] && head -1 "$dest/MANIFEST" | grep -qxF "$version"; then
    echo "$dest"
    exit 0
fi
rm -rf "$dest"
mkdir -p "$dest"
cache="$(dirname "$dest")/e2e-cache"
mkdir -p "$cache"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/vigil-e2e-images.XXXXXX")"
cleanup() {
    if [[ -f "$scratch/storage.conf" ]]; then
        podman rmi -a -f >/dev/null 2>&1 || true
    fi
    local m
    for m in $(awk -v w="$scratch/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$scratch" 2>/dev/null || true
}
trap cleanup EXIT
export TMPDIR="$scratch/tmp"
mkdir -p "$TMPDIR"
: >"$scratch/built"

cat >"$scratch/policy.json" <<'JSON'
{"default": [{"type": "insecureAcceptAnything"}]}
JSON
cat >"$scratch/registries.conf" <<'TOML'
unqualified-search-registries = []
TOML
skopeo() { command skopeo --policy "$scratch/policy.json" --registries-conf "$scratch/registries.conf" "$@"; }

# umoci repack makes a layer relative to the manifest the bundle was unpacked
# from: unpack afresh from the tag before each new layer.
repack() {
    local image=$1 bundle=$2
    umoci repack --image "$image" "$bundle"
    rm -rf "$bundle"
    umoci unpack --image "$image" "$bundle"
}

# umoci layout -> docker-archive + oci-archive (skopeo), NAME is localhost/...:tag
export_archives() {
    local layout=$1 ref=$2 base=$3 name=$4
    skopeo copy -q "oci:$layout:$ref" "docker-archive:$dest/$base-docker.tar:$name"
    skopeo copy -q "oci:$layout:$ref" "oci-archive:$dest/$base-oci.tar:$name"
}

busybox_root() {
    local r=$1 a
    mkdir -p "$r"/{bin,etc,tmp,root}
    cp "$busybox" "$r/bin/busybox"
    chmod 0755 "$r/bin/busybox"
    for a in sh ls cat echo mkdir rm chmod chown ln mknod mkfifo touch true false sleep id \
        stat env printf seq head tail wc sha256sum tty stty read test expr date dd; do
        ln -sfn busybox "$r/bin/$a"
    done
    chmod 1777 "$r/tmp"
    chmod 0700 "$r/root"
    printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\napp:x:1000:\n' >"$r/etc/group"
}

# ---- churn: umoci, deletions across layers, plus a hand-made layer -----------
log "churn (umoci, 4 layers)"
cd "$scratch"
umoci init --layout churn
umoci new --image churn:1
umoci config --image churn:1 --config.cmd /bin/sh --config.env PATH=/bin
umoci unpack --image churn:1 c
r=c/rootfs
busybox_root "$r"
mkdir -p "$r"/srv/{keep,gone/deep/er,typechange-dir,mode} "$r"/var/lib/app "$r/opaque/sub"
for i in 1 2 3 4 5; do echo "file $i" >"$r/srv/keep/f$i"; echo "gone $i" >"$r/srv/gone/deep/er/g$i"; done
echo "becomes a dir" >"$r/srv/typechange-file"
echo x >"$r/srv/typechange-dir/inside"
ln -s keep/f1 "$r/srv/link-to-f1"
ln "$r/srv/keep/f2" "$r/srv/keep/f2-hard"
echo "mode" >"$r/srv/mode/m"
chmod 0600 "$r/srv/mode/m"
chown 10:20 "$r/srv/mode"
echo "opaque old" >"$r/opaque/old"
echo "opaque sub" >"$r/opaque/sub/s"
setfattr -n user.layer -v one "$r/srv/keep/f3"
setfattr -n user.dirattr -v d1 "$r/srv/keep"
head -c 100000 /dev/zero | tr '\0' 'z' >"$r/var/lib/app/big"
repack churn:1 c
# Layer 2: deletions, type changes, metadata-only changes.
rm -rf "$r/srv/gone" "$r/srv/keep/f4" "$r/srv/link-to-f1" "$r/srv/typechange-file" "$r/srv/typechange-dir"
mkdir "$r/srv/typechange-file"
echo "now a dir" >"$r/srv/typechange-file/x"
ln -s keep "$r/srv/typechange-dir"
chmod 4750 "$r/srv/mode/m"
chown 1000:1000 "$r/srv/mode/m"
chmod 2775 "$r/srv/mode"
setfattr -n user.layer -v two "$r/srv/keep/f3"
setfattr -x user.dirattr "$r/srv/keep"
echo "changed" >"$r/srv/keep/f5"
ln "$r/srv/keep/f1" "$r/srv/f1-hard"
repack churn:1 c
# Layer 3: re-create what layer 2 deleted, with other types and owners.
mkdir -p "$r/srv/gone"
echo "back" >"$r/srv/gone/again"
chown -R 33:33 "$r/srv/gone"
echo "link now file" >"$r/srv/link-to-f1"
rm "$r/var/lib/app/big"
mkfifo "$r/srv/keep/f4"
repack churn:1 c
# Layer 4, by hand: tar tricks umoci does not write.
python3 - "$scratch/crafted.tar" <<'PY'
import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT)
def add(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, link="", pax=None, mtime=1600000000):
    i = tarfile.TarInfo(name)
    i.type, i.mode, i.uid, i.gid, i.mtime, i.linkname = kind, mode, uid, gid, mtime, link
    i.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        i.pax_headers = pax
    t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
# Opaque directory whose new children come before the marker.
add("opaque/", tarfile.DIRTYPE, mode=0o755)
add("opaque/new", data=b"new child\n")
add("opaque/.wh..wh..opq")
# A whiteout and a re-add of the same name in one layer. (With the re-add
# first, the OCI spec keeps the file, which vigil does; Podman's vfs driver
# deletes it and its overlay driver fails: not a parity case.)
add("srv/keep/.wh.f5")
add("srv/keep/f5", data=b"re-added\n", mode=0o640)
# An entry before its parent directory; the directory entry comes later with its mode.
add("late/child", data=b"child first\n")
add("late/", tarfile.DIRTYPE, mode=0o711, uid=5, gid=6)
# Long names (PAX path) and PAX xattrs, a user xattr on a directory.
long = "long/" + "d" * 120 + "/" + "n" * 150
add(long, data=b"long name\n", pax={"SCHILY.xattr.user.long": "yes"})
add("xattrs/", tarfile.DIRTYPE, mode=0o755, pax={"SCHILY.xattr.user.onadir": "dirval"})
add("xattrs/f", data=b"x\n", pax={"SCHILY.xattr.user.a": "1", "SCHILY.xattr.user.b": "two"})
# A symlink with an absolute target. (No hard link to a lower-layer file:
# Podman's overlay driver cannot load those; the multi image has one.)
add("srv/abs-link", tarfile.SYMTYPE, link="/srv/keep/f1")
# Whiteout of a directory from layer 1 that layer 3 did not touch.
add("srv/.wh.mode")
# Sticky, setgid directory and a setuid file owned by a user.
add("perm/", tarfile.DIRTYPE, mode=0o3777)
add("perm/suid", data=b"#!/bin/sh\n", mode=0o4711, uid=1000, gid=1000)
add("perm/sgid", data=b"g\n", mode=0o2755, uid=0, gid=1000)
t.close()
PY
umoci raw add-layer --image churn:1 crafted.tar
umoci gc --layout churn
cp -a churn "$dest/churn"
export_archives churn 1 churn localhost/e2e-churn:1
echo churn >>"$scratch/built"

# ---- minbase: debootstrap (or a minbase-like copy of host binaries) ----------
# The Debian mirror this machine's apt uses for SUITE (deb822 or one-line sources).
apt_mirror() {
    local suite=$1 f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk -v s="$suite" '
            /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) found = 1 }
            /^$/ { if (found && uri != "") { print uri; exit } uri = ""; found = 0 }
            END { if (found && uri != "") print uri }' "$f" | head -1
    done
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }'
}

minbase_rootfs() {
    local r=$1 tarball="$cache/debootstrap-bookworm-minbase.tar" mirror
    mirror=$(apt_mirror bookworm 2>/dev/null | head -1 || true)
    if [[ ! -s "$tarball" && "${VIGIL_E2E_DEBOOTSTRAP:-1}" != 0 && -n "$mirror" ]] &&
        command -v debootstrap >/dev/null 2>&1; then
        log "debootstrap --variant=minbase bookworm from apt's mirror (at most 240 s)"
        local d="$scratch/debootstrap"
        if timeout 240 debootstrap --variant=minbase bookworm "$d" "$mirror" \
                >"$scratch/debootstrap.log" 2>&1; then
            tar --xattrs --xattrs-include='*' --numeric-owner -C "$d" -cf "$tarball.tmp" . &&
                mv "$tarball.tmp" "$tarball"
        else
            log "debootstrap failed or timed out: $(tail -2 "$scratch/debootstrap.log" | tr '\n' ' ')"
        fi
        rm -rf "$d"
    fi
    if [[ -s "$tarball" && "${VIGIL_E2E_DEBOOTSTRAP:-1}" != 0 ]]; then
        tar --xattrs --xattrs-include='*' --numeric-owner -C "$r" -xf "$tarball"
        echo debootstrap >"$dest/MINBASE_KIND"
        return
    fi
    log "minbase-like image: host bash, coreutils and their libraries"
    echo minbase-like >"$dest/MINBASE_KIND"
    local f lib
    mkdir -p "$r"/{bin,etc,tmp,root,usr/bin,usr/lib,var/lib/dpkg} "$r/usr/share/doc/x"
    chmod 1777 "$r/tmp"
    for f in /bin/bash /bin/ls /bin/cat /bin/echo /usr/bin/id /usr/bin/env /usr/bin/sha256sum \
        /usr/bin/stat /bin/sleep /usr/bin/tty /bin/stty /usr/bin/head /usr/bin/seq /bin/true \
        /bin/false /usr/bin/cut /usr/bin/perl; do
        [[ -e "$f" ]] || continue
        cp -a --parents "$(readlink -f "$f")" "$r"
        [[ "$(readlink -f "$f")" == "$f" ]] || cp -a --parents "$f" "$r" 2>/dev/null || true
        for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*'); do
            cp -aL --parents "$lib" "$r" 2>/dev/null || true
        done
    done
    ln -sfn bash "$r/bin/sh"
    cp -a /etc/debian_version "$r/etc/" 2>/dev/null || echo unknown >"$r/etc/debian_version"
    printf 'root:x:0:0:root:/root:/bin/bash\n' >"$r/etc/passwd"
    printf 'root:x:0:\n' >"$r/etc/group"
    cp /bin/su "$r/bin/su" 2>/dev/null && chmod 4755 "$r/bin/su" || true
    echo doc >"$r/usr/share/doc/x/README"
}
log "minbase (3 layers)"
umoci init --layout minbase
umoci new --image minbase:1
umoci config --image minbase:1 --config.cmd /bin/bash \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umoci unpack --image minbase:1 m
minbase_rootfs m/rootfs
repack minbase:1 m
# Layer 2: what image builders strip: the apt cache, docs, man pages.
rm -rf m/rootfs/var/cache/apt/archives/*.deb m/rootfs/usr/share/doc/* m/rootfs/usr/share/man \
    m/rootfs/var/lib/apt/lists/*
mkdir -p m/rootfs/srv/app
echo "app" >m/rootfs/srv/app/run
chmod 0750 m/rootfs/srv/app/run
repack minbase:1 m
# Layer 3: an added user and a re-created docs directory.
echo 'app:x:1000:1000:app:/srv/app:/bin/sh' >>m/rootfs/etc/passwd
echo 'app:x:1000:' >>m/rootfs/etc/group
chown -R 1000:1000 m/rootfs/srv/app
mkdir -p m/rootfs/usr/share/doc/vigil
echo "readme" >m/rootfs/usr/share/doc/vigil/README
repack minbase:1 m
umoci gc --layout minbase
cp -a minbase "$dest/minbase"
export_archives minbase 1 minbase localhost/e2e-minbase:1
echo minbase >>"$scratch/built"
rm -rf m

# ---- built: podman build, saved by podman ------------------------------------
if command -v podman >/dev/null 2>&1; then
    log "built (podman build, overlay storage)"
    cat >"$scratch/storage.conf" <<TOML
[storage]
driver = "overlay"
graphroot = "$scratch/store"
runroot = "$scratch/run"
TOML
    cat >"$scratch/containers.conf" <<TOML
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
tmp_dir = "$scratch/podman-tmp"
TOML
    export CONTAINERS_CONF="$scratch/containers.conf" CONTAINERS_STORAGE_CONF="$scratch/storage.conf"
    export CONTAINERS_REGISTRIES_CONF="$scratch/registries.conf"
    pb="$scratch/pbuild"
    mkdir -p "$pb/base" "$pb/ctx/sub" "$pb/addsrc/d"
    busybox_root "$pb/base"
    mkdir -p "$pb/base"/{data,old/sub,etc/conf.d}
    echo keep >"$pb/base/etc/keep"
    echo del >"$pb/base/etc/to-delete"
    echo o >"$pb/base/old/sub/f"
    echo c >"$pb/base/etc/conf.d/a.conf"
    echo x >"$pb/base/data/xf"
    setfattr -n user.base -v one "$pb/base/data/xf"
    setfattr -n user.dir -v d "$pb/base/data"
    tar --xattrs --xattrs-include='*' --numeric-owner -C "$pb/base" -cf "$pb/base.tar" .
    echo c >"$pb/ctx/c"
    chmod 0640 "$pb/ctx/c"
    setfattr -n user.ctx -v yes "$pb/ctx/c"
    echo s >"$pb/ctx/sub/s"
    echo a >"$pb/addsrc/d/a"
    echo b >"$pb/addsrc/d/b"
    setfattr -n user.add -v v "$pb/addsrc/d/b"
    chown 7:8 "$pb/addsrc/d/b"
    tar --xattrs --xattrs-include='*' --numeric-owner -C "$pb/addsrc" -cf "$pb/ctx/add.tar" .
    cat >"$pb/Containerfile" <<'EOF'
FROM localhost/e2e-base:1
RUN set -e; mkdir -p /data/a /data/b; echo x > /data/a/f; chmod 4755 /data/a/f; \
    chown 1234:5678 /data/b; ln -s ../etc/keep /data/sl; ln /data/a/f /data/hl; \
    mknod /data/cdev c 1 3; mkfifo /data/fifo; rm /etc/to-delete; rm -rf /old/sub; \
    chmod 2750 /data/xf; chown 0:1000 /data/xf
COPY ctx/ /ctx/
ADD ctx/add.tar /added/
RUN rm -rf /data/a && mkdir /data/a && echo new > /data/a/g && rm -rf /etc/conf.d && \
    mkdir /etc/conf.d && echo b > /etc/conf.d/b.conf
RUN rm -rf /ctx/sub; rm /added/d/a; chmod 1777 /data/b; rm /data/hl
CMD ["/bin/sh"]
EOF
    if podman import -q "$pb/base.tar" localhost/e2e-base:1 >/dev/null 2>"$scratch/podman.err" &&
        podman build -q --pull=never --network none -t localhost/e2e-built:1 -f "$pb/Containerfile" "$pb" \
            >/dev/null 2>>"$scratch/podman.err" &&
        podman save -q --format docker-archive -o "$dest/built-docker.tar" localhost/e2e-built:1 2>>"$scratch/podman.err" &&
        podman save -q --format oci-archive -o "$dest/built-oci.tar" localhost/e2e-built:1 2>>"$scratch/podman.err"; then
        echo built >>"$scratch/built"
    else
        log "skipping the podman-built image: $(tail -3 "$scratch/podman.err" | tr '\n' ' ')"
        rm -f "$dest/built-docker.tar" "$dest/built-oci.tar"
    fi
fi

{ echo "$version"; cat "$scratch/built"; } >"$dest/MANIFEST"
log "built: $(tail -n +2 "$dest/MANIFEST" | tr '\n' ' ')"
echo "$dest"
