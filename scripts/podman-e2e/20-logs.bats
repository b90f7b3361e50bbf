#!/usr/bin/env bats
# Log drivers (k8s-file, journald, none, passthrough, max-size) and podman logs (-f, --tail,
# --since, --until, -t) on k8s-file and journald.

load helpers

setup() { e2e_setup; }
teardown() { e2e_teardown; }

# The journald driver needs a journal we can read back.
need_journal() {
    command -v journalctl >/dev/null || fail "journalctl not installed"
    [ -S /run/systemd/journal/socket ] || fail "no journald socket at /run/systemd/journal/socket"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] log-driver k8s-file: record format, F/P tags, podman logs" { scenario t_log_k8s_file; }
t_log_k8s_file() {
    local c log line
    c=$(cname kf)
    mkdir w
    p run -d --name "$c" --log-driver k8s-file -v "$E2E_T/w:/w" "$IMG" sh -c '
        echo one; echo two >&2; echo; echo "  spaced  out  "
        printf part; while [ ! -e /w/go ]; do sleep 0.05; done; echo ial; exit 0' >/dev/null
    log=$(ctr_field "$c" '{{.HostConfig.LogConfig.Path}}')
    assert_eq "$(ctr_field "$c" '{{.HostConfig.LogConfig.Type}}')" k8s-file "log driver"
    # The partial line must be on disk as a P record before the rest of it is written.
    wait_for 30 "partial record in $log" file_has "$log" ' stdout P part$'
    touch w/go
    assert_eq "$(p wait "$c")" 0 "podman wait"
    while IFS= read -r line; do
        [[ "$line" =~ $K8S_LINE_RE ]] || fail "bad k8s-file record: $(q "$line")"
    done <"$log"
    k8s_stream_text "$log" stdout >stdout.txt
    k8s_stream_text "$log" stderr >stderr.txt
    assert_bytes stdout.txt $'one\n\n  spaced  out  \npartial\n' "stdout stream reconstructed from $log"
    assert_bytes stderr.txt $'two\n' "stderr stream reconstructed from $log"
    p logs "$c" >lo 2>le
    assert_bytes lo $'one\n\n  spaced  out  \npartial\n' "podman logs stdout"
    assert_bytes le $'two\n' "podman logs stderr"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] log-driver journald: entries, fields, podman logs" { scenario t_log_journald; }
t_log_journald() {
    local c id pid
    need_journal
    c=$(cname jd)
    mkdir w
    id=$(p run -d --name "$c" --log-driver journald -v "$E2E_T/w:/w" "$IMG" sh -c '
        echo one; echo two >&2; printf part; while [ ! -e /w/go ]; do sleep 0.05; done
        echo ial; exec sleep 1000')
    pid=$(ctr_field "$c" '{{.State.ConmonPid}}')
    assert_monitor_is_under_test "$c"
    touch w/go
    jq_entries() {
        journalctl -q --no-pager -o json "CONTAINER_ID_FULL=$id" |
            jq -c '[.MESSAGE, .PRIORITY, .CONTAINER_ID, .CONTAINER_NAME, .SYSLOG_IDENTIFIER, ._PID, ._COMM, (.CONTAINER_PARTIAL_MESSAGE // "")]' >entries
        [ "$(wc -l <entries)" -ge 3 ]
    }
    wait_for 30 "3 journal entries for $id" jq_entries
    local s=${id:0:12}
    printf '%s\n' \
        "[\"one\\n\",\"6\",\"$s\",\"$c\",\"$c\",\"$pid\",\"conmon\",\"\"]" \
        "[\"two\\n\",\"3\",\"$s\",\"$c\",\"$c\",\"$pid\",\"conmon\",\"\"]" \
        "[\"partial\\n\",\"6\",\"$s\",\"$c\",\"$c\",\"$pid\",\"conmon\",\"\"]" >expected
    cmp -s expected entries || fail "journal entries [MESSAGE,PRIORITY,CONTAINER_ID,CONTAINER_NAME,SYSLOG_IDENTIFIER,_PID,_COMM,PARTIAL]: expected $(qfile expected), got $(qfile entries)"
    p logs "$c" >lo 2>le
    assert_bytes lo $'one\npartial\n' "podman logs stdout"
    assert_bytes le $'two\n' "podman logs stderr"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] log-driver none: attached output still flows, no log" { scenario t_log_none; }
t_log_none() {
    local c rc
    c=$(cname ln)
    rc=0
    p run --name "$c" --log-driver none "$IMG" sh -c 'echo none-out; echo none-err >&2; exit 2' >out 2>err || rc=$?
    assert_eq "$rc" 2 "exit status"
    assert_bytes out $'none-out\n' "stdout"
    assert_bytes err $'none-err\n' "stderr"
    rc=0
    p logs "$c" >lo 2>le || rc=$?
    assert_eq "$rc" 125 "podman logs exit status"
    assert_grep le "using the 'none' log driver" "podman logs error"
    [ ! -e "$(ctr_field "$c" '{{.StaticDir}}')/ctr.log" ] || fail "ctr.log exists with --log-driver none"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] log-driver passthrough: container writes to podman's stdio directly" { scenario t_log_passthrough; }
t_log_passthrough() {
    local c rc
    c=$(cname lp)
    rc=0
    p run --name "$c" --log-driver passthrough "$IMG" sh -c 'echo pt-out; echo pt-err >&2; exit 2' >out 2>err || rc=$?
    assert_eq "$rc" 2 "exit status"
    assert_bytes out $'pt-out\n' "stdout"
    assert_bytes err $'pt-err\n' "stderr"
    # No attach socket / no logs for passthrough containers.
    p run -d --name "$c-d" --log-driver passthrough "$IMG" sleep 1000 >/dev/null 2>&1 </dev/null
    [ ! -e "$(ctr_field "$c-d" '{{.StaticDir}}')/attach" ] || fail "attach socket exists for a passthrough container"
    rc=0
    p logs "$c" >lo 2>le || rc=$?
    assert_eq "$rc" 125 "podman logs exit status"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] log-opt max-size: k8s-file truncated, newest lines kept" { scenario t_log_max_size; }
t_log_max_size() {
    local c log size
    c=$(cname ms)
    p run --name "$c" --log-opt max-size=400 "$IMG" sh -c 'for i in $(seq 1 60); do echo line-$i; done' >out
    seq -f 'line-%g' 1 60 >expected
    cmp -s out expected || fail "attached output with max-size differs: $(qfile out)"
    log=$(ctr_field "$c" '{{.HostConfig.LogConfig.Path}}')
    size=$(stat -c %s "$log")
    # One record is at most 45 + 8 bytes here: the file may exceed the cap by one record.
    [ "$size" -le 460 ] || fail "log file is $size bytes with max-size=400"
    [ "$size" -gt 0 ] || fail "log file is empty"
    while IFS= read -r line; do
        [[ "$line" =~ $K8S_LINE_RE ]] || fail "bad k8s-file record: $(q "$line")"
    done <"$log"
    p logs "$c" >lo
    # What is left is a non-empty run of the newest lines, ending with line-60.
    local n
    n=$(wc -l <lo)
    [ "$n" -ge 1 ] && [ "$n" -lt 60 ] || fail "podman logs returned $n lines"
    tail -n "$n" expected | cmp -s - lo || fail "podman logs after truncation is not the newest $n lines: $(qfile lo)"
}

# ---------------------------------------------------------------------------------------------
# podman logs -f: shows what is there, follows new lines, ends when the container ends.
_logs_follow() { # DRIVER
    local driver=$1 c pid rc ev=()
    [ "$driver" = journald ] && { need_journal; ev=(--events-backend journald); }
    c=$(cname lf)
    mkdir w
    p "${ev[@]}" run -d --name "$c" --log-driver "$driver" -v "$E2E_T/w:/w" "$IMG" sh -c '
        echo first; while [ ! -e /w/go ]; do sleep 0.1; done; echo second; printf third; exit 0' >/dev/null
    wait_for 30 "first line logged" ctr_log_has "$c" first
    timeout --kill-after=5 60 podman "${ev[@]}" logs -f "$c" >out 2>err &
    pid=$!
    wait_for 30 "podman logs -f prints the existing line" file_has_line out first
    touch w/go
    wait_pid "$pid" 30 rc
    assert_eq "$rc" 0 "podman logs -f exit status"
    assert_bytes out $'first\nsecond\nthird' "podman logs -f output"
    # Following a container that already exited ends right away.
    p "${ev[@]}" logs -f "$c" >out2
    assert_bytes out2 $'first\nsecond\nthird' "podman logs -f on an exited container"
}
@test "[$E2E_LABEL] logs -f k8s-file: follows new lines, ends with the container" { scenario t_logs_follow_k8s; }
t_logs_follow_k8s() { _logs_follow k8s-file; }
@test "[$E2E_LABEL] logs -f journald: follows new lines, ends with the container" { scenario t_logs_follow_journald; }
t_logs_follow_journald() { _logs_follow journald; }

# ---------------------------------------------------------------------------------------------
# podman logs --tail, --since, --until, -t.
_logs_options() { # DRIVER
    local driver=$1 c t
    [ "$driver" = journald ] && need_journal
    c=$(cname lo)
    mkdir w
    p run -d --name "$c" --log-driver "$driver" -v "$E2E_T/w:/w" "$IMG" sh -c '
        echo a1; echo a2; echo a3; while [ ! -e /w/go ]; do sleep 0.1; done; echo b1; echo b2 >&2; exit 0' >/dev/null
    wait_for 30 "a3 logged" ctr_log_has "$c" a3
    # Everything before this instant is a*, everything after it b*.
    t=$(date +%Y-%m-%dT%H:%M:%S.%N%:z)
    touch w/go
    assert_eq "$(p wait "$c")" 0 "podman wait"
    p logs "$c" >o 2>e
    assert_bytes o $'a1\na2\na3\nb1\n' "podman logs stdout"
    assert_bytes e $'b2\n' "podman logs stderr"
    p logs --tail 2 "$c" >o 2>&1
    assert_bytes o $'b1\nb2\n' "podman logs --tail 2"
    p logs --tail 4 "$c" >o 2>/dev/null
    assert_bytes o $'a2\na3\nb1\n' "podman logs --tail 4 (stdout)"
    p logs --tail 0 "$c" >o 2>&1
    assert_bytes o "" "podman logs --tail 0"
    p logs --since "$t" "$c" >o 2>e
    assert_bytes o $'b1\n' "podman logs --since (stdout)"
    assert_bytes e $'b2\n' "podman logs --since (stderr)"
    p logs --until "$t" "$c" >o 2>e
    assert_bytes o $'a1\na2\na3\n' "podman logs --until (stdout)"
    assert_bytes e "" "podman logs --until (stderr)"
    p logs -t "$c" >o 2>/dev/null
    local ts='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})'
    [ "$(wc -l <o)" -eq 4 ] || fail "podman logs -t: $(qfile o)"
    local i=0 want
    for want in a1 a2 a3 b1; do
        i=$((i + 1))
        assert_match "$(sed -n "${i}p" o)" "^$ts $want\$" "podman logs -t line $i"
    done
}
@test "[$E2E_LABEL] logs --tail/--since/--until/-t on k8s-file" { scenario t_logs_options_k8s; }
t_logs_options_k8s() { _logs_options k8s-file; }
@test "[$E2E_LABEL] logs --tail/--since/--until/-t on journald" { scenario t_logs_options_journald; }
t_logs_options_journald() { _logs_options journald; }
