# Shared helpers for the Podman end-to-end suite (loaded by every *.bats file).
#
# Model: every test calls `scenario FUNCTION`. The scenario function runs in a subshell with
# `set -eE -o pipefail`, its own scratch directory ($E2E_T) as cwd and CONTAINERS_CONF pointing
# at a containers.conf whose conmon_path is the monitor of this pass:
#   E2E_ROLE=ref   Debian's /usr/bin/conmon (reference). A failure is reported as a skip (the
#                  environment or the reference itself cannot do it) and recorded.
#   E2E_ROLE=ours  the binary under test. A failure is a test failure, unless the same scenario
#                  also fails with the reference (recorded by the ref pass, or re-run on demand
#                  with /usr/bin/conmon): then it is skipped with
#                  "fails with /usr/bin/conmon too: <reason>".
# Helpers never sleep-and-hope: they poll a condition until a deadline (wait_for).

# ---------------------------------------------------------------------------------------------
# Pass configuration (exported by ./run or by setup_suite.bash)
: "${E2E_ROLE:=ours}"
: "${E2E_LABEL:=$E2E_ROLE}"
IMG=${E2E_IMAGE:-localhost/e2e-bb:latest}
E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-90}

# Result records: "<scenario key>\t<pass|fail|skip>\t<reason>", one file per role.
_e2e_record() { # ROLE STATUS REASON
    [ -n "${E2E_RESULTS_DIR:-}" ] || return 0
    local reason=${3//$'\n'/ }
    printf '%s\t%s\t%s\n' "$(_e2e_key)" "$2" "${reason//$'\t'/ }" >>"$E2E_RESULTS_DIR/$1.results"
}
_e2e_key() { local d=$BATS_TEST_DESCRIPTION; printf '%s' "${d#\[*\] }"; }
_e2e_lookup() { # ROLE -> prints "status\treason" of the last record for this scenario
    local f="${E2E_RESULTS_DIR:-/nonexistent}/$1.results" key
    [ -f "$f" ] || return 1
    key=$(_e2e_key)
    awk -F'\t' -v k="$key" '$1 == k { s = $2 "\t" $3; found = 1 } END { if (found) print s; exit !found }' "$f"
}

# ---------------------------------------------------------------------------------------------
# Running podman

# podman with a hard deadline, so a hanging monitor fails the scenario instead of the suite.
p() { timeout --kill-after=5 "$E2E_CMD_TIMEOUT" podman "$@"; }
# Same, but stays in the terminal's foreground process group (needed under a pty: -t).
pt() { timeout --foreground --kill-after=5 "$E2E_CMD_TIMEOUT" podman "$@"; }

# Unique container/pod name for this attempt.
cname() { printf '%s-%s' "$1" "$E2E_SUFFIX"; }

# ---------------------------------------------------------------------------------------------
# Failing, skipping, asserting (inside a scenario)

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    [ -s "$E2E_T/.reason" ] || printf '%s' "$*" >"$E2E_T/.reason"
    return 1
}
e2e_skip() {
    printf '%s' "$*" >"$E2E_T/.skip"
    exit 0
}
_e2e_src() { # map bats' preprocessed file name back to the .bats file
    case $1 in */bats.*.src | bats.*.src) basename "$BATS_TEST_FILENAME" ;; *) basename "$1" ;; esac
}
_e2e_on_err() { # RC COMMAND LINENO ARGS-OF-THE-FAILING-FUNCTION...
    [ -s "$E2E_T/.reason" ] && return 0
    local rc=$1 cmd=$2 line=$3 where
    shift 3
    # Show helper commands with their arguments (e.g. `podman "$@"` inside p()).
    [[ "$cmd" == *'"$@"'* ]] && cmd=${cmd//\"\$@\"/$*}
    where="$(_e2e_src "${BASH_SOURCE[1]}"):$line"
    if [ "${#FUNCNAME[@]}" -gt 2 ] && [ -n "${BASH_SOURCE[2]:-}" ]; then
        where+=" (${FUNCNAME[1]}, called from $(_e2e_src "${BASH_SOURCE[2]}"):${BASH_LINENO[1]})"
    fi
    printf 'command failed (exit %s) at %s: %s' "$rc" "$where" "$cmd" >"$E2E_T/.reason"
}

# Quote bytes for messages (keeps trailing newlines visible).
q() { printf '%q' "$1"; }
qfile() { local s; s=$(cat -- "$1" 2>/dev/null; printf x); s=${s%x}; printf '%q' "$s"; }

assert_eq() { # ACTUAL EXPECTED WHAT
    [ "$1" == "$2" ] || fail "$3: expected $(q "$2"), got $(q "$1")"
}
assert_match() { # STRING ERE WHAT
    [[ "$1" =~ $2 ]] || fail "$3: $(q "$1") does not match /$2/"
}
assert_bytes() { # FILE EXPECTED WHAT   (exact bytes)
    if ! printf '%s' "$2" | cmp -s - "$1"; then
        fail "$3: expected bytes $(q "$2"), got $(qfile "$1")"
    fi
}
assert_grep() { # FILE ERE WHAT
    grep -Eq -- "$2" "$1" || fail "$3: /$2/ not found in $(qfile "$1")"
}
assert_not_grep() { # FILE ERE WHAT
    ! grep -Eq -- "$2" "$1" || fail "$3: /$2/ unexpectedly found in $(qfile "$1")"
}

# ---------------------------------------------------------------------------------------------
# Waiting with deadlines

_now_ms() { local t=${EPOCHREALTIME/./}; printf '%s' "${t:0:-3}"; }

# wait_for SECONDS DESCRIPTION COMMAND... : poll COMMAND every 100 ms until it succeeds.
wait_for() {
    local secs=$1 desc=$2; shift 2
    local deadline=$(($(_now_ms) + secs * 1000))
    while :; do
        if "$@"; then return 0; fi
        if [ "$(_now_ms)" -ge "$deadline" ]; then
            fail "timed out after ${secs}s waiting for: $desc"
            return 1
        fi
        sleep 0.1
    done
}

# Process state without being fooled by zombies (kill -0 succeeds on a zombie).
pid_alive() {
    local st
    st=$(sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pid_gone() { ! pid_alive "$1"; }

# wait_pid PID SECONDS VAR : wait for a background child with a deadline; its exit status is
# stored in VAR. On timeout the process is killed and the scenario fails.
wait_pid() {
    local pid=$1 secs=$2 __var=$3 __rc=0
    if ! wait_for "$secs" "background process $pid to finish" pid_gone "$pid"; then
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 1
    fi
    wait "$pid" || __rc=$?
    printf -v "$__var" '%s' "$__rc"
}

file_has() { [ -f "$1" ] && grep -Eq -- "$2" "$1"; }
file_has_line() { [ -f "$1" ] && grep -qxF -- "$2" "$1"; }

# ---------------------------------------------------------------------------------------------
# Container helpers

ctr_field() { p inspect --format "$2" "$1"; }
ctr_status_is() { [ "$(p inspect --format '{{.State.Status}}' "$1" 2>/dev/null)" = "$2" ]; }
ctr_gone() { ! p container exists "$1"; }
ctr_logs_eq() { # CTR EXPECTED [podman logs options...]
    local c=$1 exp=$2; shift 2
    local got
    got=$(p logs "$@" "$c" 2>&1; printf x) || return 1
    [ "${got%x}" == "$exp" ]
}
ctr_log_has() { p logs "$1" 2>&1 | grep -qxF -- "$2"; }

# The long-lived monitor of a running container must be the binary of this pass.
assert_monitor_is_under_test() { # CTR
    local pid exe want
    pid=$(p inspect --format '{{.State.ConmonPid}}' "$1")
    [[ "$pid" =~ ^[1-9][0-9]*$ ]] || { fail "State.ConmonPid of $1 is $(q "$pid")"; return 1; }
    exe=$(readlink -f "/proc/$pid/exe") || { fail "conmon pid $pid of $1 is not running"; return 1; }
    want=$(readlink -f "$E2E_CONMON_ACTIVE")
    [ "$exe" = "$want" ] || fail "monitor of $1 (pid $pid) is $exe, expected $want"
}

# Events of a container from the events file (podman events does not sync container state).
ctr_events() { p events --stream=false --filter "container=$1" --format '{{.Status}}' 2>/dev/null; }
ctr_has_events() { # CTR EVENT...
    local ev c=$1; shift
    ev=$(ctr_events "$c") || return 1
    for e in "$@"; do grep -qxF "$e" <<<"$ev" || return 1; done
}

# Reconstruct one stream's text from a k8s-file log (P pieces joined, F ends a line).
k8s_stream_text() { # FILE STREAM
    awk -v s="$2" '{
        n = index($0, " "); rest = substr($0, n + 1)
        n2 = index(rest, " "); stream = substr(rest, 1, n2 - 1); rest = substr(rest, n2 + 1)
        n3 = index(rest, " "); tag = substr(rest, 1, n3 - 1); content = substr(rest, n3 + 1)
        if (n3 == 0) { tag = rest; content = "" }
        if (stream != s) next
        if (tag == "F") printf "%s\n", content; else printf "%s", content
    }' "$1"
}
K8S_LINE_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}[+-][0-9]{2}:[0-9]{2} (stdout|stderr) (F|P) '

# ---------------------------------------------------------------------------------------------
# Terminals: tmux with a private server per attempt

tm() { tmux -S "$E2E_T/tmux.sock" "$@"; }
# tmux_run NAME COMMAND : run COMMAND in a 100x30 window; its exit status lands in NAME.rc
tmux_run() {
    local name=$1 cmd=$2
    tm new-session -d -s "$name" -x 100 -y 30 \
        "$cmd; echo \$? >'$E2E_T/$name.rc.tmp'; mv '$E2E_T/$name.rc.tmp' '$E2E_T/$name.rc'; sleep 600"
}
tmux_screen() { tm capture-pane -p -J -t "$1" 2>/dev/null; }
tmux_screen_has() { tmux_screen "$1" | grep -Eq -- "$2"; }
tmux_done() { [ -f "$E2E_T/$1.rc" ]; }
tmux_rc() { cat "$E2E_T/$1.rc"; }
# Podman only recognises a detach sequence when each key arrives in its own read(); send
# ctrl-p and ctrl-q as separate writes, and repeat the pair until the client is gone.
tmux_detach() { # NAME
    local i
    for i in 1 2 3 4 5; do
        tm send-keys -t "$1" C-p
        sleep 0.3
        tm send-keys -t "$1" C-q
        if wait_for_quiet 3 tmux_done "$1"; then return 0; fi
    done
    fail "podman did not detach on ctrl-p ctrl-q; screen: $(q "$(tmux_screen "$1")")"
}
# Wait until the container's shell prompt is on screen, i.e. the client is attached and the
# terminal is in raw mode (typing earlier would race podman's terminal setup). Enter makes an
# attached shell print a fresh prompt; before that, nothing from the container shows up.
tmux_wait_prompt() { # NAME
    local i
    for i in $(seq 1 30); do
        if tmux_screen_has "$1" '^/ #'; then return 0; fi
        tm send-keys -t "$1" Enter
        if wait_for_quiet 1 tmux_screen_has "$1" '^/ #'; then return 0; fi
    done
    fail "no shell prompt on screen after 30 s: $(q "$(tmux_screen "$1")")"
}
wait_for_quiet() { # like wait_for, but no failure record
    local secs=$1; shift
    local deadline=$(($(_now_ms) + secs * 1000))
    while :; do
        if "$@"; then return 0; fi
        [ "$(_now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------------------------
# The scenario wrapper

# Run FUNCTION once with the given containers.conf; sets _A_RC, _A_REASON, _A_SKIP, _A_DIR.
_e2e_attempt() { # FUNCTION CONF CONMON TAG
    local fn=$1 conf=$2 conmon=$3 tag=$4
    _A_DIR=$(mktemp -d "$BATS_TEST_TMPDIR/$tag.XXXX")
    set +e
    (
        set -eE -o pipefail
        trap - DEBUG
        trap '_e2e_on_err "$?" "$BASH_COMMAND" "$LINENO" "$@"' ERR
        export CONTAINERS_CONF=$conf E2E_CONMON_ACTIVE=$conmon E2E_T=$_A_DIR
        export E2E_SUFFIX="$tag$BATS_TEST_NUMBER-$RANDOM"
        cd "$E2E_T"
        "$fn"
    ) 3>&- >"$_A_DIR/.log" 2>&1 </dev/null
    _A_RC=$?
    set -e
    _A_REASON=$(cat "$_A_DIR/.reason" 2>/dev/null || true)
    _A_SKIP=$(cat "$_A_DIR/.skip" 2>/dev/null || true)
    if [ "$_A_RC" -ne 0 ] && [ -z "$_A_REASON" ]; then _A_REASON="scenario exited with status $_A_RC"; fi
    _e2e_cleanup_attempt "$conf"
}

_e2e_cleanup_attempt() { # CONF
    [ -S "$_A_DIR/tmux.sock" ] && tmux -S "$_A_DIR/tmux.sock" kill-server >/dev/null 2>&1
    # Anything this scenario left running (attached clients, log followers) is killed by the
    # scenario's own deadlines; containers and pods are removed here.
    CONTAINERS_CONF=$1 timeout 120 podman pod rm -a -f -t 0 >/dev/null 2>&1 </dev/null 3>&-
    CONTAINERS_CONF=$1 timeout 120 podman rm -a -f -t 0 >/dev/null 2>&1 </dev/null 3>&-
    return 0
}

_e2e_show_attempt() { # TITLE
    echo "---- $1: reason: ${_A_REASON:-<none>}"
    echo "---- $1: scenario output:"
    sed -e 's/^/    /' "$_A_DIR/.log" | tail -n 60
}

scenario() { # FUNCTION
    local fn=$1 ref_conf="$E2E_WORK/containers-ref.conf"
    _e2e_attempt "$fn" "$E2E_WORK/containers.conf" "$E2E_CONMON" "${E2E_ROLE}"
    if [ -n "$_A_SKIP" ] && [ "$_A_RC" -eq 0 ]; then
        _e2e_record "$E2E_ROLE" skip "$_A_SKIP"
        skip "$_A_SKIP"
    fi
    if [ "$_A_RC" -eq 0 ]; then
        _e2e_record "$E2E_ROLE" pass ""
        return 0
    fi

    local reason=$_A_REASON
    if [ "$E2E_ROLE" = ref ]; then
        _e2e_show_attempt "reference $E2E_CONMON"
        _e2e_record ref fail "$reason"
        skip "reference $E2E_CONMON fails this scenario: $reason"
    fi

    # Ours failed: does the reference fail too?
    local ref_status="" ref_reason="" line
    if line=$(_e2e_lookup ref); then
        ref_status=${line%%$'\t'*}
        ref_reason=${line#*$'\t'}
    elif [ -x "${E2E_REF_CONMON:-}" ] && [ -f "$ref_conf" ]; then
        local ours_dir=$_A_DIR
        _e2e_attempt "$fn" "$ref_conf" "$E2E_REF_CONMON" "ref-ondemand"
        if [ "$_A_RC" -eq 0 ] && [ -z "$_A_SKIP" ]; then ref_status=pass
        elif [ -n "$_A_SKIP" ]; then ref_status=skip; ref_reason=$_A_SKIP
        else ref_status=fail; ref_reason=$_A_REASON; fi
        _A_DIR=$ours_dir
        _A_REASON=$reason
    fi
    if [ "$ref_status" = fail ] || [ "$ref_status" = skip ]; then
        _e2e_record ours skip "fails with $E2E_REF_CONMON too: $ref_reason"
        if [ "$ref_reason" = "$reason" ]; then
            skip "fails with $E2E_REF_CONMON too: $ref_reason"
        fi
        skip "fails with $E2E_REF_CONMON too: $ref_reason (ours: $reason)"
    fi
    _e2e_record ours fail "$reason"
    _e2e_show_attempt "binary under test $E2E_CONMON"
    echo "---- reference $E2E_REF_CONMON: ${ref_status:-not run}"
    return 1
}

e2e_setup() {
    [ -n "${E2E_WORK:-}" ] && [ -f "$E2E_WORK/containers.conf" ] || {
        echo "E2E_WORK is not prepared (run scripts/podman-e2e/run)" >&2
        return 1
    }
    export CONTAINERS_STORAGE_CONF="$E2E_WORK/storage.conf"
}
e2e_teardown() { :; }
