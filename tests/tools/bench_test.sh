#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# midas-bench: argument errors and a small run of every workload, checking the documented JSON
# fields (docs/benchmarks.md) and that nothing is lost when the worker process is killed.
# Usage: bench_test.sh arguments|memory|postgres|redis MIDAS_BENCH
# Exit 77 (ctest: skipped) for postgres/redis when MIDAS_TEST_PG_URL / MIDAS_TEST_REDIS_URL is unset.
set -euo pipefail
what=$1 bench=$2
case "$what" in
  postgres) base=${MIDAS_TEST_PG_URL:-} var=MIDAS_TEST_PG_URL ;;
  redis) base=${MIDAS_TEST_REDIS_URL:-} var=MIDAS_TEST_REDIS_URL ;;
  *) base=memory:// var="" ;;
esac
[ -n "$base" ] || { echo "skipped: $var is not set (scripts/services start)"; exit 77; }
source "$(dirname "$0")/lib.sh"
unset MIDAS_URL

# expect_workload WORKLOAD FILTER: stdout holds exactly one object of that workload, and the jq
# FILTER is true for it.
expect_workload() {
  checks=$((checks + 1))
  jq -s -e "map(select(.workload == \"$1\")) | length == 1 and (.[0] | $2)" <"$out" >/dev/null ||
    fail "JSON check failed for workload $1: $2"
}

# check_common WORKLOAD BACKEND: the fields every workload object has.
check_common() {
  expect_workload "$1" ".backend == \"$2\" and (.queue | startswith(\"bench-$1-\")) and .ok == true"
}

case "$what" in
  arguments)
    run "$bench" --help
    expect_rc 0 --help
    expect_stdout "--workload"
    run "$bench" --workload drain
    expect_rc 2 "no URL"
    expect_stderr "no backend URL"
    run "$bench" --url memory:// --workload sprint
    expect_rc 2 "unknown workload"
    run "$bench" --url memory:// --tasks 0
    expect_rc 2 "zero tasks"
    run "$bench" --url memory:// --concurrency x
    expect_rc 2 "bad concurrency"
    run "$bench" --url memory:// --prefetch -2
    expect_rc 2 "prefetch below -1"
    expect_stderr "--prefetch: Value -2 not in range"
    run "$bench" --url 'foo://x'
    expect_rc 2 "unknown scheme"
    expect_stderr "unsupported URL scheme"
    run "$bench" --url redis://127.0.0.1:1/0 --workload drain
    expect_rc 1 "server down"
    expect_stderr "cannot reach redis at 127.0.0.1:1: connection refused"
    ;;

  memory)
    run "$bench" --url memory:// --workload all --tasks 200 --latency-tasks 50 --latency-rate 500 --json
    expect_rc 0 "bench all on memory"
    checks=$((checks + 1))
    [ "$(jq -s length <"$out")" -eq 5 ] || fail "expected 5 JSON objects, one per workload"
    checks=$((checks + 1))
    jq -s -e 'all(.[]; type == "object")' <"$out" >/dev/null || fail "a line is not a JSON object"
    for w in enqueue drain retry latency; do check_common $w memory; done
    expect_workload enqueue '.tasks == 200 and .batch_size == 1000 and .single_tasks_per_s > 0 and .batch_tasks_per_s > 0 and .single_seconds > 0 and .batch_seconds > 0 and .queue_left_empty == true'
    expect_workload drain '.tasks == 200 and .concurrency == 8 and .prefetch == null and .succeeded == 200 and .tasks_per_s > 0 and .seconds > 0 and .queue_left_empty == true'
    expect_workload retry '.tasks == 50 and .prefetch == null and .attempts == 150 and .all_ran_exactly_3_times == true and .per_attempt_ms > 0 and (.per_attempt_vs_drain | type == "number")'
    expect_workload latency '.tasks == 50 and .started == 50 and .p50_ms >= 0 and .p99_ms >= .p50_ms and .max_ms >= .p99_ms and .enqueue_p50_ms >= 0 and .enqueue_p99_ms >= .enqueue_p50_ms and .enqueue_max_ms >= .enqueue_p99_ms'
    expect_workload crash '.supported == false and (.reason | contains("memory://")) and .ok == true'

    run "$bench" --url memory:// --workload drain --tasks 100 --prefetch 3 --json
    expect_rc 0 "drain with a fixed prefetch"
    expect_workload drain '.prefetch == 3 and .succeeded == 100'

    run "$bench" --url memory:// --workload drain --tasks 100
    expect_rc 0 "table output"
    expect_stdout "WORKLOAD"
    expect_stdout "tasks/s"
    ;;

  postgres | redis)
    isolated_url "$what" "$base"
    run "$bench" --url "$url" --workload all --tasks 200 --latency-tasks 100 --crash-tasks 400 \
      --timeout 120 --json
    expect_rc 0 "bench all on $what"
    checks=$((checks + 1))
    [ "$(jq -s length <"$out")" -eq 5 ] || fail "expected 5 JSON objects, one per workload"
    for w in enqueue drain retry latency crash; do
      check_common $w "$what"
      expect_workload "$w" ".supported == true and .queue_left_empty == true"
    done
    expect_workload enqueue '.single_tasks_per_s > 0 and .batch_tasks_per_s > 0'
    expect_workload drain '.succeeded == 200 and .tasks_per_s > 0'
    expect_workload retry '.tasks == 50 and .attempts == 150 and .all_ran_exactly_3_times == true and .tasks_recorded_with_3_attempts == 50'
    expect_workload latency '.started == 100 and .p99_ms >= .p50_ms'
    expect_workload crash '.tasks == 400 and .completed == 400 and .lost == 0 and .finished_twice == 0 and .leased_at_kill >= 1 and .leased_at_kill >= .in_flight_at_kill and .ran_twice >= .in_flight_at_kill and ((.recovery_s | type == "number") or (.in_flight_at_kill == 0 and .ran_twice == 0)) and (.all_done_after_kill_s | type == "number")'
    echo "crash: $(jq -c 'select(.workload == "crash") | {leased_at_kill, in_flight_at_kill, ran_twice, recovery_s, all_done_after_kill_s}' <"$out")"

    # Tasks scheduled for later stay out of the latency figures and are cleaned up (more than
    # one page of 1000), so the queue is left empty.
    run "$bench" --url "$url" --workload latency --latency-tasks 50 --latency-rate 500 \
      --latency-scheduled 1500 --json
    expect_rc 0 "latency with tasks scheduled for later on $what"
    expect_workload latency '.scheduled == 1500 and .started == 50 and .tasks == 50 and .queue_left_empty == true'
    ;;
  *)
    echo "unknown case $what"
    exit 2
    ;;
esac
pass
