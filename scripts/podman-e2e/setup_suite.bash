# bats suite setup. ./run prepares each pass itself (E2E_WORK set); when bats is invoked
# directly (`bats scripts/podman-e2e`), prepare a single "ours" pass here.

setup_suite() {
    local here repo
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    repo=$(cd "$here/../.." && pwd)
    if [ -n "${E2E_WORK:-}" ] && [ -f "$E2E_WORK/containers.conf" ]; then
        return 0
    fi
    # shellcheck source=prepare.bash
    . "$here/prepare.bash"
    export E2E_ROLE=${E2E_ROLE:-ours}
    export E2E_LABEL=${E2E_LABEL:-$E2E_ROLE}
    export E2E_CONMON=${E2E_CONMON:-${CONMON_BINARY:-$repo/target/release/conmon}}
    export E2E_REF_CONMON=${E2E_REF_CONMON:-/usr/bin/conmon}
    [ -x "$E2E_REF_CONMON" ] || E2E_REF_CONMON=""
    export E2E_WORK="$BATS_RUN_TMPDIR/pass-$E2E_ROLE"
    export E2E_SUITE_OWNS_WORK=1
    e2e_ensure_journald >/dev/null || true
    e2e_rootfs_tar "$BATS_RUN_TMPDIR/rootfs.tar"
    e2e_prepare_pass "$E2E_WORK" "$E2E_CONMON" "$E2E_REF_CONMON" "$BATS_RUN_TMPDIR/rootfs.tar"
}

teardown_suite() {
    if [ "${E2E_SUITE_OWNS_WORK:-0}" = 1 ]; then
        local here
        here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
        . "$here/prepare.bash"
        e2e_teardown_pass "$E2E_WORK" >/dev/null 2>&1 || true
    fi
}
