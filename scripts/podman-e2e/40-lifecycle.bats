#!/usr/bin/env bats
# Lifecycle: stop (timeout, SIGKILL fallback), kill -s, restart, wait, rm -f, pods, healthcheck,
# cleanup through the exit command, --timeout, restart policy, OOM.

load helpers

setup() { e2e_setup; }
teardown() { e2e_teardown; }

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] stop: SIGTERM handled within the timeout" { scenario t_stop_term; }
t_stop_term() {
    local c t0 el
    c=$(cname st)
    p run -d --name "$c" "$IMG" sh -c 'trap "echo got-term; exit 42" TERM; echo ready; while :; do sleep 0.1; done' >/dev/null
    wait_for 30 "container ready" ctr_log_has "$c" ready
    t0=$(_now_ms)
    p stop -t 20 "$c" >out 2>err
    el=$(($(_now_ms) - t0))
    assert_bytes out "$c"$'\n' "podman stop output"
    assert_bytes err "" "podman stop stderr"
    [ "$el" -lt 10000 ] || fail "podman stop took ${el} ms for a container that exits on SIGTERM"
    assert_eq "$(ctr_field "$c" '{{.State.Status}} {{.State.ExitCode}}')" "exited 42" "inspect after stop"
    ctr_logs_eq "$c" $'ready\ngot-term\n' || fail "logs: $(q "$(p logs "$c" 2>&1)")"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] stop: SIGKILL fallback after the timeout, exit 137" { scenario t_stop_kill; }
t_stop_kill() {
    local c t0 el pid
    c=$(cname sk)
    # sleep as PID 1 ignores SIGTERM.
    p run -d --name "$c" "$IMG" sleep 1000 >/dev/null
    pid=$(ctr_field "$c" '{{.State.ConmonPid}}')
    t0=$(_now_ms)
    p stop -t 2 "$c" >out 2>err
    el=$(($(_now_ms) - t0))
    assert_bytes out "$c"$'\n' "podman stop output"
    assert_grep err 'StopSignal SIGTERM failed to stop container .* in 2 seconds, resorting to SIGKILL' "podman stop warning"
    # Podman waits up to 5 s for the exit file after the kill; a monitor that reports the death
    # late makes podman print "timed out waiting for file".
    assert_not_grep err 'timed out waiting for file|error|Error' "podman stop stderr"
    [ "$el" -ge 2000 ] && [ "$el" -lt 6000 ] || fail "podman stop -t 2 took ${el} ms"
    assert_eq "$(ctr_field "$c" '{{.State.Status}} {{.State.ExitCode}}')" "exited 137" "inspect after stop"
    wait_for 30 "monitor exits" pid_gone "$pid"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] kill -s: signals delivered, exit codes 143-style and 137" { scenario t_kill; }
t_kill() {
    local c c2
    c=$(cname kl)
    p run -d --name "$c" "$IMG" sh -c '
        n=0; trap "n=\$((n+1)); echo usr1-\$n" USR1; trap "echo got-hup; exit 21" HUP
        echo ready; while :; do sleep 0.1; done' >/dev/null
    wait_for 30 "container ready" ctr_log_has "$c" ready
    p kill -s USR1 "$c" >/dev/null
    wait_for 30 "first USR1 handled" ctr_log_has "$c" usr1-1
    p kill -s SIGUSR1 "$c" >/dev/null
    wait_for 30 "second USR1 handled" ctr_log_has "$c" usr1-2
    p kill -s HUP "$c" >out
    assert_bytes out "$c"$'\n' "podman kill output"
    assert_eq "$(p wait "$c")" 21 "podman wait after SIGHUP"
    ctr_logs_eq "$c" $'ready\nusr1-1\nusr1-2\ngot-hup\n' || fail "logs: $(q "$(p logs "$c" 2>&1)")"
    # Default signal SIGKILL, and a signal the container does not handle (behind --init, so
    # the default action applies): 128+N.
    c2=$(cname kl2)
    p run -d --name "$c2" "$IMG" sleep 1000 >/dev/null
    p kill "$c2" >/dev/null
    assert_eq "$(p wait "$c2")" 137 "exit code after podman kill (SIGKILL)"
    if [ -x /usr/libexec/podman/catatonit ]; then
        p run -d --init --name "$c2-i" "$IMG" sleep 1000 >/dev/null
        p kill -s TERM "$c2-i" >/dev/null
        assert_eq "$(p wait "$c2-i")" 143 "exit code after SIGTERM (behind --init)"
    fi
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] restart: new monitor, log appended, attach socket works again" { scenario t_restart; }
t_restart() {
    local c pid1 pid2
    c=$(cname rs)
    p run -d -i --name "$c" "$IMG" sh -c 'echo boot; while read l; do echo "in:$l"; done' >/dev/null
    wait_for 30 "first boot logged" ctr_logs_eq "$c" $'boot\n'
    pid1=$(ctr_field "$c" '{{.State.ConmonPid}}')
    p restart -t 0 "$c" >out
    assert_bytes out "$c"$'\n' "podman restart output"
    assert_eq "$(ctr_field "$c" '{{.State.Status}}')" running "state after restart"
    pid2=$(ctr_field "$c" '{{.State.ConmonPid}}')
    [ "$pid1" != "$pid2" ] || fail "ConmonPid unchanged after restart ($pid1)"
    assert_monitor_is_under_test "$c"
    wait_for 30 "old monitor $pid1 exits" pid_gone "$pid1"
    wait_for 30 "second boot appended to the log" ctr_logs_eq "$c" $'boot\nboot\n'
    printf 'hello\n' | p attach "$c" >out 2>&1
    wait_for 30 "container exited" ctr_status_is "$c" exited
    ctr_logs_eq "$c" $'boot\nboot\nin:hello\n' || fail "logs: $(q "$(p logs "$c" 2>&1)")"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] wait: blocks until exit, returns the exit code" { scenario t_wait; }
t_wait() {
    local c pid rc
    c=$(cname wt)
    mkdir w
    p run -d --name "$c" -v "$E2E_T/w:/w" "$IMG" sh -c 'while [ ! -e /w/go ]; do sleep 0.1; done; exit 3' >/dev/null
    timeout --kill-after=5 60 podman wait "$c" >out 2>err &
    pid=$!
    # podman wait must still be blocked while the container runs.
    wait_for 30 "container running" ctr_status_is "$c" running
    pid_alive "$pid" || fail "podman wait returned while the container was running: $(qfile out)"
    touch w/go
    wait_pid "$pid" 30 rc
    assert_eq "$rc" 0 "podman wait exit status"
    assert_bytes out $'3\n' "podman wait output"
    # Already exited: immediate answer; several containers at once.
    p run -d --name "$c-b" "$IMG" sh -c 'exit 5' >/dev/null
    p wait "$c" "$c-b" >out
    assert_bytes out $'3\n5\n' "podman wait on two containers"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] rm -f: running container removed, monitor gone, runtime state gone" { scenario t_rm_force; }
t_rm_force() {
    local c id pid rc
    c=$(cname rf)
    id=$(p run -d --name "$c" "$IMG" sleep 1000)
    pid=$(ctr_field "$c" '{{.State.ConmonPid}}')
    assert_monitor_is_under_test "$c"
    p rm -f -t 0 "$c" >out
    assert_bytes out "$c"$'\n' "podman rm -f output"
    ctr_gone "$c" || fail "container still exists after rm -f"
    wait_for 30 "monitor $pid exits" pid_gone "$pid"
    rc=0
    runc state "$id" >/dev/null 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "runc still knows container $id"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] pod: infra container and members under the monitor, pod stop/rm" { scenario t_pod; }
t_pod() {
    local pod infra=1 c1 c2 iid
    pod=$(cname pod)
    # Podman 4.3.1 builds its pause image locally from catatonit (no network needed).
    if ! p pod create --name "$pod" >out 2>err; then
        echo "pod create with infra failed: $(cat err); retrying with --infra=false" >&2
        p pod create --infra=false --name "$pod" >/dev/null
        infra=0
    fi
    c1=$(cname p1)
    c2=$(cname p2)
    p run -d --pod "$pod" --name "$c1" "$IMG" sh -c 'echo member; exec sleep 1000' >/dev/null
    assert_monitor_is_under_test "$c1"
    if [ "$infra" = 1 ]; then
        iid=$(p pod inspect --format '{{.InfraContainerID}}' "$pod")
        assert_eq "$(ctr_field "$iid" '{{.State.Status}}')" running "infra container state"
        assert_monitor_is_under_test "$iid"
    fi
    p run --rm --pod "$pod" --name "$c2" "$IMG" sh -c 'echo inpod; exit 0' >out
    assert_bytes out $'inpod\n' "output of a container in the pod"
    p exec "$c1" sh -c 'echo exec-in-pod' >out
    assert_bytes out $'exec-in-pod\n' "exec in a pod member"
    p pod stop -t 1 "$pod" >/dev/null
    assert_eq "$(ctr_field "$c1" '{{.State.Status}} {{.State.ExitCode}}')" "exited 137" "member after pod stop"
    [ "$infra" = 0 ] || assert_eq "$(ctr_field "$iid" '{{.State.Status}}')" exited "infra after pod stop"
    ctr_logs_eq "$c1" $'member\n' || fail "member logs"
    p pod rm -f "$pod" >/dev/null
    ctr_gone "$c1" || fail "member still exists after pod rm"
    [ "$infra" = 1 ] || echo "NOTE: tested with --infra=false (no local pause image: $(cat err))" >&2
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] healthcheck run: unhealthy then healthy, health log" { scenario t_healthcheck; }
t_healthcheck() {
    local c rc
    c=$(cname hc)
    p run -d --name "$c" --health-cmd 'test -e /tmp/ok && echo healthy-out' --health-interval disable \
        "$IMG" sleep 1000 >/dev/null
    rc=0; p healthcheck run "$c" >out 2>err || rc=$?
    assert_eq "$rc" 1 "healthcheck run exit status (unhealthy)"
    assert_bytes out $'unhealthy\n' "healthcheck run output (unhealthy)"
    p exec "$c" touch /tmp/ok
    rc=0; p healthcheck run "$c" >out 2>err || rc=$?
    assert_eq "$rc" 0 "healthcheck run exit status (healthy)"
    assert_bytes out "" "healthcheck run output (healthy)"
    assert_eq "$(ctr_field "$c" '{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{len .State.Health.Log}}')" \
        "healthy 0 2" "inspect Health"
    assert_eq "$(p inspect --format '{{range .State.Health.Log}}{{.ExitCode}}:{{.Output}};{{end}}' "$c")" \
        "1:;0:healthy-out;" "health log"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] exit command: podman container cleanup runs on its own" { scenario t_cleanup; }
t_cleanup() {
    local c id merged netns
    c=$(cname cl)
    mkdir w
    id=$(p run -d --name "$c" -v "$E2E_T/w:/w" "$IMG" sh -c 'while [ ! -e /w/go ]; do sleep 0.1; done; exit 6')
    merged=$(ctr_field "$c" '{{.GraphDriver.Data.MergedDir}}')
    netns=$(ctr_field "$c" '{{.NetworkSettings.SandboxKey}}')
    grep -qF " $merged " /proc/self/mountinfo || fail "rootfs $merged not mounted while running"
    touch w/go
    # From here on no podman command that syncs state runs until the exit command has done
    # its work: the died/cleanup events, the unmount and the netns removal are its doing.
    wait_for 30 "died and cleanup events" ctr_has_events "$id" died cleanup
    wait_for 30 "rootfs unmounted by cleanup" eval "! grep -qF ' $merged ' /proc/self/mountinfo"
    if [ -n "$netns" ]; then
        wait_for 30 "network namespace $netns removed" test ! -e "$netns"
    fi
    assert_eq "$(p events --stream=false --filter "container=$id" --filter event=died \
        --format '{{.ContainerExitCode}}')" 6 "exit code in the died event"
    assert_eq "$(ctr_field "$c" '{{.State.Status}} {{.State.ExitCode}}')" "exited 6" "inspect"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] run --timeout: container killed, exit 255, ExitCode -1" { scenario t_run_timeout; }
t_run_timeout() {
    local c rc t0 el
    c=$(cname to)
    t0=$(_now_ms)
    rc=0; p run --name "$c" --timeout 2 "$IMG" sleep 60 >out 2>err || rc=$?
    el=$(($(_now_ms) - t0))
    assert_eq "$rc" 255 "podman run --timeout exit status"
    [ "$el" -ge 2000 ] && [ "$el" -lt 15000 ] || fail "run --timeout 2 took ${el} ms"
    assert_eq "$(ctr_field "$c" '{{.State.Status}} {{.State.ExitCode}}')" "exited -1" "inspect"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] restart policy on-failure:2 through the exit command" { scenario t_restart_policy; }
t_restart_policy() {
    local c
    c=$(cname rp)
    p run -d --name "$c" --restart on-failure:2 "$IMG" sh -c 'echo attempt; exit 1' >/dev/null
    done_restarting() { [ "$(ctr_field "$c" '{{.RestartCount}} {{.State.Status}}')" = "2 exited" ]; }
    wait_for 60 "two restarts, then exited" done_restarting
    assert_eq "$(ctr_field "$c" '{{.State.ExitCode}}')" 1 "final ExitCode"
    ctr_logs_eq "$c" $'attempt\nattempt\nattempt\n' || fail "logs: $(q "$(p logs "$c" 2>&1)")"
}

# ---------------------------------------------------------------------------------------------
@test "[$E2E_LABEL] OOM kill: exit 137 and State.OOMKilled" { scenario t_oom; }
t_oom() {
    local c rc oom static where=""
    c=$(cname oom)
    rc=0; p run --name "$c" --memory 20m --memory-swap 20m "$IMG" tail /dev/zero >out 2>err || rc=$?
    assert_eq "$rc" 137 "exit status of an OOM-killed container"
    static=$(ctr_field "$c" '{{.StaticDir}}')
    oom=$(ctr_field "$c" '{{.State.OOMKilled}}')
    # Where did the monitor put its marker? (podman 4.3.1 reads <bundle>/oom; conmon 2.1.6
    # writes "oom" relative to its cwd, i.e. podman's cwd, which is this scenario's dir.)
    [ -e "$static/oom" ] && where+=" <bundle>/oom present;"
    [ -e "$E2E_T/oom" ] && where+=" oom marker written to podman's cwd ($E2E_T/oom);"
    [ -n "$where" ] || where=" no oom marker written anywhere;"
    echo "OOM markers:$where" >&2
    assert_eq "$oom" true "State.OOMKilled (exit 137;$where cgroup v$(stat -fc %T /sys/fs/cgroup | sed 's/cgroup2fs/2/;s/tmpfs/1/'))"
}
