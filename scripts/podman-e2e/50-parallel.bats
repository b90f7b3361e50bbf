#!/usr/bin/env bats
# Many containers at once: 20 parallel `podman run`, every exit file and log correct.

load helpers

setup() { e2e_setup; }
teardown() { e2e_teardown; }

@test "[$E2E_LABEL] 20 parallel podman run: exit codes, attached output, logs" { scenario t_parallel; }
t_parallel() {
    local i n=20 pids=() rc want c
    for i in $(seq 1 $n); do
        c=$(cname par$i)
        timeout --kill-after=5 120 podman run --name "$c" "$IMG" sh -c \
            "echo start-$i; seq 1 $((i * 200)); echo end-$i >&2; exit $((i % 7))" >"out.$i" 2>"err.$i" &
        pids[i]=$!
    done
    for i in $(seq 1 $n); do
        wait_pid "${pids[i]}" 150 rc
        echo "$rc" >"rc.$i"
    done
    for i in $(seq 1 $n); do
        c=$(cname par$i)
        want=$((i % 7))
        assert_eq "$(cat "rc.$i")" "$want" "exit status of podman run #$i"
        { echo "start-$i"; seq 1 $((i * 200)); } >"exp.$i"
        cmp -s "out.$i" "exp.$i" || fail "stdout of podman run #$i differs ($(wc -c <"out.$i") bytes, want $(wc -c <"exp.$i"))"
        assert_bytes "err.$i" "end-$i"$'\n' "stderr of podman run #$i"
        assert_eq "$(ctr_field "$c" '{{.State.Status}} {{.State.ExitCode}}')" "exited $want" "inspect #$i"
        p logs "$c" >"lo.$i" 2>"le.$i"
        cmp -s "lo.$i" "exp.$i" || fail "podman logs stdout #$i differs"
        assert_bytes "le.$i" "end-$i"$'\n' "podman logs stderr #$i"
    done
}

@test "[$E2E_LABEL] 20 parallel podman run -d: all exit through the exit command" { scenario t_parallel_detached; }
t_parallel_detached() {
    local i n=20 ids=() c
    for i in $(seq 1 $n); do
        c=$(cname pd$i)
        p run -d --name "$c" "$IMG" sh -c "seq 1 $((i * 100)); exit $((i % 5 + 1))" >"id.$i" &
        ids[i]=$!
    done
    local rc
    for i in $(seq 1 $n); do
        wait_pid "${ids[i]}" 120 rc
        assert_eq "$rc" 0 "podman run -d #$i"
    done
    for i in $(seq 1 $n); do
        wait_for 60 "died+cleanup events for #$i" ctr_has_events "$(cat "id.$i")" died cleanup
    done
    for i in $(seq 1 $n); do
        c=$(cname pd$i)
        assert_eq "$(ctr_field "$c" '{{.State.Status}} {{.State.ExitCode}}')" "exited $((i % 5 + 1))" "inspect #$i"
        seq 1 $((i * 100)) >"exp.$i"
        p logs "$c" >"lo.$i"
        cmp -s "lo.$i" "exp.$i" || fail "podman logs #$i differs"
    done
}
