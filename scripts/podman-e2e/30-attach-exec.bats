#!/usr/bin/env bats
# podman attach (output, stdin, tty + detach keys) and podman exec (-i, -t, -d, exit codes,
# --preserve-fds).

load helpers

setup() { e2e_setup; }
teardown() { e2e_teardown; }

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] attach: output of a running container, exit on container end" { scenario t_attach_output; }
t_attach_output() {
    local c pid rc
    c=$(cname ao)
    mkdir w
    # Ticks until /w/go exists, so we can tell when the attach client is live.
    p run -d --name "$c" -v "$E2E_T/w:/w" "$IMG" sh -c '
        while [ ! -e /w/go ]; do echo tick; sleep 0.1; done; echo late-out; echo late-err >&2; exit 2' >/dev/null
    timeout --kill-after=5 60 podman attach --no-stdin "$c" >out 2>err &
    pid=$!
    wait_for 30 "attach client receives output" file_has_line out tick
    touch w/go
    wait_pid "$pid" 30 rc
    # podman 4.3.1's attach exits 0 when the container ends (it does not relay the exit code).
    assert_eq "$rc" 0 "podman attach exit status"
    grep -vxF tick out >rest || true
    # (podman 4.3.1 attach adds one newline at the end when its stdin is not a terminal)
    assert_bytes rest $'late-out\n\n' "stdout after the ticks"
    assert_bytes err $'late-err\n' "stderr"
    assert_eq "$(ctr_field "$c" '{{.State.ExitCode}}')" 2 "inspect ExitCode"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] attach: piped stdin to a -i container, EOF closes its stdin" { scenario t_attach_stdin; }
t_attach_stdin() {
    local c rc
    c=$(cname as)
    p run -d -i --name "$c" "$IMG" sh -c 'while read l; do echo "got:$l"; done; echo bye; exit 3' >/dev/null
    wait_for 30 "container running" ctr_status_is "$c" running
    rc=0
    printf 'a\nb\n' | p attach "$c" >out 2>err || rc=$?
    # podman 4.3.1 prints one extra newline when the attached stdin is not a terminal.
    assert_bytes out $'got:a\ngot:b\nbye\n\n' "podman attach stdout"
    assert_eq "$rc" 0 "podman attach exit status"
    wait_for 30 "container exited" ctr_status_is "$c" exited
    assert_eq "$(ctr_field "$c" '{{.State.ExitCode}}')" 3 "inspect ExitCode"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] attach -t in tmux: output, input, window size, detach keys" { scenario t_attach_tty; }
t_attach_tty() {
    local c
    c=$(cname at)
    p run -dit --name "$c" "$IMG" sh >/dev/null
    wait_for 30 "container running" ctr_status_is "$c" running
    tmux_run s1 "timeout --foreground 120 podman attach $c"
    tmux_wait_prompt s1
    tm send-keys -t s1 'stty size; echo "att=$((3*5))"' Enter
    wait_for 30 "shell output via attach" tmux_screen_has s1 '^att=15$'
    tmux_screen_has s1 '^30 100$' || fail "stty size after attach is not '30 100': $(q "$(tmux_screen s1)")"
    tmux_detach s1
    assert_eq "$(tmux_rc s1)" 0 "podman attach exit status after detach"
    assert_eq "$(ctr_field "$c" '{{.State.Status}}')" running "container after detach"
    # Output produced while nobody was attached is in the log (tty: \r\n).
    p exec "$c" sh -c 'printf "\\nfrom-exec\\n" >/proc/1/fd/1'
    wait_for 30 "tty output logged" ctr_log_has "$c" $'from-exec\r'
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] exec: stdout/stderr bytes and exit codes, 126/127" { scenario t_exec_basic; }
t_exec_basic() {
    local c rc
    c=$(cname ex)
    p run -d --name "$c" "$IMG" sleep 1000 >/dev/null
    rc=0; p exec "$c" sh -c 'echo eo; echo ee >&2; printf tail; exit 7' >out 2>err || rc=$?
    assert_eq "$rc" 7 "exec exit status"
    assert_bytes out $'eo\ntail' "exec stdout"
    assert_bytes err $'ee\n' "exec stderr"
    rc=0; p exec "$c" true >out 2>err || rc=$?
    assert_eq "$rc" 0 "exec true"
    assert_bytes out "" "exec true stdout"
    rc=0; p exec "$c" sh -c 'kill -9 $$' || rc=$?
    assert_eq "$rc" 137 "exec killed by SIGKILL"
    rc=0; p exec "$c" /no/such/command >out 2>err || rc=$?
    assert_eq "$rc" 127 "exec of a missing command"
    assert_grep err '[Nn]o such file or directory' "exec missing command error"
    rc=0; p exec "$c" /etc >out 2>err || rc=$?
    assert_eq "$rc" 126 "exec of a non-executable"
    assert_grep err 'permission denied' "exec non-executable error"
    # The container is unaffected; no exec session bundles are left behind.
    assert_eq "$(ctr_field "$c" '{{.State.Status}}')" running "container state"
    local static
    static=$(ctr_field "$c" '{{.StaticDir}}')
    wait_for 30 "exec bundles removed" exec_bundles_gone "$static"
}
exec_bundles_gone() { [ -z "$(find "$1" -mindepth 1 -maxdepth 1 -type d -regextype egrep -regex '.*/[0-9a-f]{64}')" ]; }

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] exec: bulk output complete when the process exits right after writing" { scenario t_exec_bulk; }
t_exec_bulk() {
    local c i
    c=$(cname eb)
    p run -d --name "$c" "$IMG" sleep 1000 >/dev/null
    seq 1 30000 >expected
    for i in 1 2 3; do
        p exec "$c" seq 1 30000 >out
        cmp -s out expected || fail "exec seq 1 30000 output differs (try $i: $(wc -c <out) of $(wc -c <expected) bytes)"
        p exec "$c" sh -c 'head -c 700000 /dev/zero; head -c 300000 /dev/zero >&2' >out 2>err
        assert_eq "$(wc -c <out) $(wc -c <err)" "700000 300000" "bytes on stdout/stderr of podman exec (try $i)"
    done
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] exec -i: piped stdin, EOF, 1.5 MB through" { scenario t_exec_stdin; }
t_exec_stdin() {
    local c
    c=$(cname ei)
    p run -d --name "$c" "$IMG" sleep 1000 >/dev/null
    printf 'x\ny' | p exec -i "$c" sh -c 'cat; echo; echo done' >out
    assert_bytes out $'x\ny\ndone\n' "exec -i stdout"
    head -c 1500000 /dev/urandom >big
    p exec -i "$c" md5sum <big >out
    assert_eq "$(cut -d' ' -f1 out)" "$(md5sum <big | cut -d' ' -f1)" "md5 of 1.5 MB piped through exec -i"
    # Without -i the exec'd process gets /dev/null.
    echo ignored | p exec "$c" sh -c 'cat; echo "rc=$?"' >out
    assert_bytes out $'rc=0\n' "exec without -i"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] exec -t under a pty: CRLF output, tty, exit code" { scenario t_exec_tty; }
t_exec_tty() {
    local c rc
    c=$(cname et)
    p run -d --name "$c" "$IMG" sleep 1000 >/dev/null
    rc=0
    script -qec "timeout --foreground 60 podman exec -t $c sh -c 'echo ttyhi; tty; exit 9'" /dev/null >out 2>err || rc=$?
    assert_eq "$rc" 9 "exec -t exit status"
    assert_match "$(cat -v out)" '^ttyhi\^M
/dev/pts/[0-9]+\^M$' "exec -t output"
    # exec -it in tmux: the initial window size reaches the exec pty.
    tmux_run s1 "timeout --foreground 60 podman exec -it $c sh"
    tmux_wait_prompt s1
    tm send-keys -t s1 'stty size; echo "x=$((6*7))"' Enter
    wait_for 30 "exec -it shell output" tmux_screen_has s1 '^x=42$'
    tmux_screen_has s1 '^30 100$' || fail "stty size in exec -it is not '30 100': $(q "$(tmux_screen s1)")"
    tm send-keys -t s1 'exit 3' Enter
    wait_for 30 "podman exec -it ends" tmux_done s1
    assert_eq "$(tmux_rc s1)" 3 "exec -it exit status"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] exec -d: runs detached, exit command records the exit code" { scenario t_exec_detached; }
t_exec_detached() {
    local c sid static
    c=$(cname ed)
    p run -d --name "$c" "$IMG" sleep 1000 >/dev/null
    sid=$(p exec -d "$c" sh -c 'echo detached-ran >/tmp/marker; exit 4')
    assert_match "$sid" '^[0-9a-f]{64}$' "exec -d output"
    static=$(ctr_field "$c" '{{.StaticDir}}')
    # The exit command (podman container cleanup --exec) removes the session bundle.
    wait_for 30 "exec session bundle removed by the exit command" test ! -e "$static/$sid"
    p exec "$c" cat /tmp/marker >out
    assert_bytes out $'detached-ran\n' "side effect of exec -d"
    # The recorded exit code is only visible through the REST API.
    if command -v curl >/dev/null; then
        timeout 60 podman system service --time 0 "unix://$E2E_T/api.sock" </dev/null >/dev/null 2>&1 3>&- &
        local svc=$!
        wait_for 30 "API socket" test -S "$E2E_T/api.sock"
        api_exit() {
            curl -sf --unix-socket "$E2E_T/api.sock" "http://d/v4.0.0/libpod/exec/$sid/json" >inspect.json &&
                [ "$(jq -r '.Running' inspect.json)" = false ]
        }
        wait_for 30 "exec session inspect via API" api_exit
        kill "$svc" 2>/dev/null || true
        assert_eq "$(jq -r '.ExitCode' inspect.json)" 4 "exec session ExitCode (REST API)"
    fi
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] exec --preserve-fds and run --preserve-fds" { scenario t_exec_preserve_fds; }
t_exec_preserve_fds() {
    local c
    c=$(cname pf)
    p run -d --name "$c" "$IMG" sleep 1000 >/dev/null
    echo preserved-three >f3
    p exec --preserve-fds 2 "$c" sh -c 'cat <&3; cat <&4; ls /proc/self/fd | wc -l' 3<f3 4< <(echo four) >out
    # fds: 0 1 2 3 4 + the one ls uses for the directory = 6
    assert_bytes out $'preserved-three\nfour\n6\n' "exec --preserve-fds 2"
    p run --rm --preserve-fds 1 "$IMG" sh -c 'cat <&3; ls /proc/self/fd | wc -l' 3<f3 >out
    assert_bytes out $'preserved-three\n5\n' "run --preserve-fds 1"
}
