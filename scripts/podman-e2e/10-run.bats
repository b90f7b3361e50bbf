#!/usr/bin/env bats
# podman run: foreground, -d, --rm, exit codes, runtime errors, --init, --sig-proxy, -i, -t.

load helpers

setup() { e2e_setup; }
teardown() { e2e_teardown; }

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] podman info reports the conmon under test" { scenario t_info; }
t_info() {
    local path ver
    path=$(p info --format '{{.Host.Conmon.Path}}')
    assert_eq "$path" "$E2E_CONMON_ACTIVE" "podman info Host.Conmon.Path"
    ver=$(p info --format '{{.Host.Conmon.Version}}')
    assert_match "$ver" '^conmon version [0-9]+\.[0-9]+\.[0-9]+, commit: ' "podman info Host.Conmon.Version"
    assert_eq "$(p info --format '{{.Host.OCIRuntime.Name}}')" runc "OCI runtime"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run: foreground stdout/stderr bytes and exit codes 0 and 3" { scenario t_run_foreground; }
t_run_foreground() {
    local c rc
    c=$(cname fg)
    rc=0
    p run --name "$c" "$IMG" sh -c 'echo out; echo err >&2; echo; printf "no newline"; exit 3' \
        >out 2>err || rc=$?
    assert_eq "$rc" 3 "exit status of podman run"
    assert_bytes out $'out\n\nno newline' "stdout of podman run"
    assert_bytes err $'err\n' "stderr of podman run"
    assert_eq "$(ctr_field "$c" '{{.State.Status}} {{.State.ExitCode}}')" "exited 3" "inspect State"

    rc=0
    p run --rm "$IMG" true >out 2>err || rc=$?
    assert_eq "$rc" 0 "exit status of podman run true"
    assert_bytes out "" "stdout of podman run true"
    assert_bytes err "" "stderr of podman run true"

}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run: bulk output complete when the container exits right after writing" { scenario t_run_bulk; }
t_run_bulk() {
    local i
    # Every byte through the attach socket, in order, although the container exits at once.
    seq 1 30000 >expected
    for i in 1 2 3; do
        p run --rm "$IMG" seq 1 30000 >out
        cmp -s expected out || fail "seq 1 30000 through podman run differs (try $i: $(wc -c <out) of $(wc -c <expected) bytes)"
        # 700000 NUL bytes on stdout, then 300000 on stderr.
        p run --rm "$IMG" sh -c 'head -c 700000 /dev/zero; head -c 300000 /dev/zero >&2' >out 2>err
        assert_eq "$(wc -c <out) $(wc -c <err)" "700000 300000" "bytes on stdout/stderr of podman run (try $i)"
        assert_eq "$(tr -d '\0' <out | wc -c)" 0 "stdout only NULs"
    done
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run: a slow reader still gets every byte (back-pressure, no drop)" { scenario t_run_slow_reader; }
t_run_slow_reader() {
    # podman's stdout is a pipe nobody reads for 2 s while the container writes 20 MB:
    # conmon blocks on the attach client; nothing may be lost.
    p run --rm "$IMG" sh -c 'head -c 20000000 /dev/zero; echo "done-$?" >&2' 2>err | { sleep 2; wc -c; } >count
    assert_eq "$(tr -d ' ' <count)" 20000000 "bytes received by a slow reader of podman run"
    assert_bytes err $'done-0\n' "stderr after the bulk output"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run: exit code 137 when the container is SIGKILLed" { scenario t_run_137; }
t_run_137() {
    local c pid rc
    c=$(cname k)
    p run --name "$c" "$IMG" sh -c 'echo ready; exec sleep 1000' >out 2>err &
    pid=$!
    wait_for 30 "container prints ready" file_has_line out ready
    p kill "$c" >/dev/null
    wait_pid "$pid" 30 rc
    assert_eq "$rc" 137 "exit status of attached podman run after podman kill"
    assert_bytes out $'ready\n' "stdout"
    assert_eq "$(ctr_field "$c" '{{.State.ExitCode}}')" 137 "inspect ExitCode"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run: errors map to 125, 126 and 127" { scenario t_run_runtime_errors; }
t_run_runtime_errors() {
    local rc
    # podman's own errors (before any monitor is involved): 125.
    rc=0; p run --rm --no-such-option "$IMG" true >out 2>err || rc=$?
    assert_eq "$rc" 125 "exit status for a podman usage error"
    rc=0; p run --rm localhost/e2e-no-such-image:latest true >out 2>err || rc=$?
    assert_eq "$rc" 125 "exit status for a missing image"
    rc=0; p run --rm "$IMG" /no/such/command >out 2>err || rc=$?
    assert_eq "$rc" 127 "exit status for a missing command"
    assert_grep err '/no/such/command.*[Nn]o such file or directory' "error for a missing command"

    rc=0; p run --rm "$IMG" nosuchcmd >out 2>err || rc=$?
    assert_eq "$rc" 127 "exit status for a command not in PATH"
    assert_grep err 'executable file not found in \$PATH' "error for a command not in PATH"

    rc=0; p run --rm "$IMG" /etc >out 2>err || rc=$?
    assert_eq "$rc" 126 "exit status for a non-executable"
    assert_grep err 'exec.*permission denied' "error for a non-executable"

    # runc fails before writing its JSON log: the monitor must pass runc's stderr on.
    rc=0; p --runtime-flag invalidflag run --rm "$IMG" true >out 2>err || rc=$?
    assert_eq "$rc" 126 "exit status for an invalid runtime flag"
    assert_grep err 'Error: .*invalidflag' "error for an invalid runtime flag"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run --rm: container removed, foreground and by the exit command" { scenario t_run_rm; }
t_run_rm() {
    local c c2
    c=$(cname rm)
    p run --rm --name "$c" "$IMG" echo bye >out
    assert_bytes out $'bye\n' "stdout"
    ctr_gone "$c" || fail "--rm container $c still exists"
    # Detached: only the exit command (podman container cleanup --rm) can remove it.
    c2=$(cname rmd)
    p run -d --rm --name "$c2" "$IMG" sh -c 'exit 0' >/dev/null
    wait_for 30 "exit command removes --rm container" ctr_gone "$c2"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run -d: monitor process, conmon pidfile, exit file, exit command" { scenario t_run_detached; }
t_run_detached() {
    local c id pid pidfile
    c=$(cname d)
    mkdir w
    id=$(p run -d --name "$c" -v "$E2E_T/w:/w" "$IMG" \
        sh -c 'echo started; while [ ! -e /w/go ]; do sleep 0.1; done; echo leaving; exit 4')
    assert_match "$id" '^[0-9a-f]{64}$' "podman run -d output"
    wait_for 30 "container logs 'started'" ctr_log_has "$c" started
    assert_eq "$(ctr_field "$c" '{{.State.Status}}')" running "state"
    assert_monitor_is_under_test "$c"
    pid=$(ctr_field "$c" '{{.State.ConmonPid}}')
    pidfile=$(ctr_field "$c" '{{.ConmonPidFile}}')
    assert_bytes "$pidfile" "$pid" "conmon pidfile content (digits, no newline)"
    # Monitor detached from podman: own session, stdio on /dev/null.
    assert_eq "$(ps -o sid= -p "$pid" | tr -d ' ')" "$pid" "monitor is a session leader"
    assert_eq "$(readlink /proc/"$pid"/fd/0) $(readlink /proc/"$pid"/fd/1) $(readlink /proc/"$pid"/fd/2)" \
        "/dev/null /dev/null /dev/null" "monitor stdio"
    touch w/go
    wait_for 30 "died and cleanup events from the exit command" ctr_has_events "$id" died cleanup
    wait_for 30 "monitor $pid exits" pid_gone "$pid"
    assert_eq "$(p events --stream=false --filter "container=$id" --filter event=died \
        --format '{{.ContainerExitCode}}')" 4 "exit code in the died event"
    assert_eq "$(ctr_field "$c" '{{.State.Status}} {{.State.ExitCode}} {{.State.ConmonPid}}')" \
        "exited 4 0" "inspect after exit"
    ctr_logs_eq "$c" $'started\nleaving\n' || fail "podman logs: $(q "$(p logs "$c" 2>&1)")"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run --init: catatonit as PID 1, exit codes through it" { scenario t_run_init; }
t_run_init() {
    local init rc
    init=/usr/libexec/podman/catatonit
    [ -x "$init" ] || e2e_skip "podman's init binary $init (catatonit) is not installed"
    p run --rm --init "$IMG" sh -c 'tr "\0" " " </proc/1/cmdline; echo; echo "sh-pid=$$"' >out
    assert_grep out '^/run/podman-init -- sh -c ' "PID 1 is podman-init"
    assert_not_grep out '^sh-pid=1$' "shell is not PID 1"
    rc=0; p run --rm --init "$IMG" sh -c 'kill -9 $$' || rc=$?
    assert_eq "$rc" 137 "exit status when the child is SIGKILLed behind --init"
    rc=0; p run --rm --init "$IMG" sh -c 'exit 5' || rc=$?
    assert_eq "$rc" 5 "exit status through --init"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run --sig-proxy: signals forwarded (true) or not (false)" { scenario t_run_sig_proxy; }
t_run_sig_proxy() {
    local c pid rc
    c=$(cname sp)
    timeout --kill-after=5 60 podman run --name "$c" --sig-proxy=true "$IMG" \
        sh -c 'trap "echo got-usr1; exit 11" USR1; echo ready; while :; do sleep 0.1; done' >out 2>err &
    pid=$!
    wait_for 30 "container prints ready" file_has_line out ready
    # Signal podman itself (timeout forwards only its own signals, so look up the podman child).
    kill -USR1 "$(pgrep -P "$pid" -x podman)"
    wait_pid "$pid" 30 rc
    assert_eq "$rc" 11 "exit status after proxied SIGUSR1"
    assert_bytes out $'ready\ngot-usr1\n' "stdout"

    c=$(cname spf)
    timeout --kill-after=5 60 podman run --name "$c" --sig-proxy=false "$IMG" \
        sh -c 'trap "echo got-usr1" USR1; trap "echo got-term; exit 12" TERM; echo ready; while :; do sleep 0.1; done' \
        >out2 2>err2 &
    pid=$!
    wait_for 30 "container prints ready" file_has_line out2 ready
    kill -USR1 "$(pgrep -P "$pid" -x podman)"
    p kill -s TERM "$c" >/dev/null
    wait_pid "$pid" 30 rc
    assert_eq "$rc" 12 "exit status"
    assert_bytes out2 $'ready\ngot-term\n' "stdout (SIGUSR1 must not reach the container)"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run -i: piped stdin reaches the container and EOF closes it" { scenario t_run_stdin; }
t_run_stdin() {
    printf 'abc\ndef' | p run --rm -i "$IMG" sh -c 'cat; echo; echo END' >out
    assert_bytes out $'abc\ndef\nEND\n' "stdout"
    head -c 1500000 /dev/urandom >big
    p run --rm -i "$IMG" md5sum <big >out
    assert_eq "$(cut -d' ' -f1 out)" "$(md5sum <big | cut -d' ' -f1)" "md5 of 1.5 MB piped through run -i"
    # Without -i the container's stdin is /dev/null.
    echo ignored | p run --rm "$IMG" sh -c 'cat; echo "rc=$?"' >out
    assert_bytes out $'rc=0\n' "stdout without -i"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run -t under a pty: CRLF output, tty, exit code" { scenario t_run_tty; }
t_run_tty() {
    local rc
    rc=0
    script -qec "timeout --foreground 60 podman run --rm -t $IMG sh -c 'echo hello; tty; exit 4'" /dev/null \
        >out 2>err || rc=$?
    assert_eq "$rc" 4 "exit status of podman run -t"
    assert_match "$(cat -v out)" '^hello\^M
/dev/pts/[0-9]+\^M$' "pty output (ONLCR: \\r\\n)"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run -it in tmux: window size, input, detach keys, exit code" { scenario t_run_it_tmux; }
t_run_it_tmux() {
    local c
    c=$(cname it)
    tmux_run s1 "timeout --foreground 120 podman run -it --name $c $IMG sh"
    wait_for 30 "container running" ctr_status_is "$c" running
    tmux_wait_prompt s1
    tm send-keys -t s1 'stty size; echo "sum=$((40+2))"' Enter
    wait_for 30 "shell output on screen" tmux_screen_has s1 '^sum=42$'
    tmux_screen_has s1 '^30 100$' || fail "stty size inside run -it is not '30 100': $(q "$(tmux_screen s1)")"
    tmux_detach s1
    assert_eq "$(tmux_rc s1)" 0 "exit status of podman run -it after detach"
    assert_eq "$(ctr_field "$c" '{{.State.Status}}')" running "container after detach"
    # Re-attach and leave with an exit code.
    tmux_run s2 "timeout --foreground 120 podman attach $c"
    tmux_wait_prompt s2
    tm send-keys -t s2 'echo back-$((1+1))' Enter
    wait_for 30 "shell output after re-attach" tmux_screen_has s2 '^back-2'
    tm send-keys -t s2 'exit 6' Enter
    wait_for 30 "podman attach to end" tmux_done s2
    wait_for 30 "container exited" ctr_status_is "$c" exited
    assert_eq "$(ctr_field "$c" '{{.State.ExitCode}}')" 6 "inspect ExitCode"
}
