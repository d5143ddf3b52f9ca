#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Process-level Postgres tests, run by ctest (label postgres):
#   two:     two worker processes drain one queue; every task runs exactly once (leases hold).
#   restart: the server restarts in the middle of a drain; the worker recovers by itself and every
#            task succeeds (a task whose ack was in doubt may run twice; none is lost).
# Usage: postgres_processes.sh two|restart DRAINER REPO_ROOT
# Exit 77 (ctest: skipped) when MIDAS_TEST_PG_URL is unset.
set -euo pipefail
what=$1 drainer=$2 repo=$3
[ -n "${MIDAS_TEST_PG_URL:-}" ] || { echo "skipped: MIDAS_TEST_PG_URL is not set (scripts/services start)"; exit 77; }

tmp=$(mktemp -d /tmp/midas-pgproc.XXXXXX)
# Private servers for the restart case, on ports nobody else uses now (tests may run in parallel),
# below Linux's ephemeral range (32768-60999) so that no client connection can hold them.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(( $1 + RANDOM % 500 ))
    port_free "$p" && { echo "$p"; return; }
  done
  echo "no free port near $1" >&2; exit 1
}
pg_port=$(pick_port 25500) redis_port=$(pick_port 26500)
cleanup() {
  if [ -f "$tmp/svc/env" ]; then MIDAS_SERVICES_DIR=$tmp/svc MIDAS_PG_PORT=$pg_port MIDAS_REDIS_PORT=$redis_port "$repo/scripts/services" stop >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

with_param() { case "$1" in *\?*) echo "$1&$2" ;; *) echo "$1?$2" ;; esac; }

# check_runs LOG N: every one of N tasks ran; prints runs, distinct tasks, duplicates.
check_runs() {
  local log=$1 n=$2 runs distinct
  runs=$(wc -l <"$log")
  distinct=$(awk '{print $1}' "$log" | sort -u | wc -l)
  echo "tasks=$n runs=$runs distinct=$distinct ran_twice=$((runs - distinct)) lost=$((n - distinct))"
  [ "$distinct" -eq "$n" ] || { echo "FAIL: $((n - distinct)) task(s) never ran"; return 1; }
}

case "$what" in
  two)
    n=2000
    schema=procs_$$_$RANDOM
    url=$(with_param "$MIDAS_TEST_PG_URL" "schema=$schema")
    "$drainer" enqueue "$url" twoproc $n
    "$drainer" drain "$url" twoproc $n 4 1 "$tmp/runs" 120 &
    a=$!
    "$drainer" drain "$url" twoproc $n 4 1 "$tmp/runs" 120 &
    b=$!
    rc=0
    wait $a || rc=1
    wait $b || rc=1
    psql -q "$MIDAS_TEST_PG_URL" -c "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
    [ $rc -eq 0 ] || { echo "FAIL: a drainer did not finish"; exit 1; }
    check_runs "$tmp/runs" $n
    twice=$(( $(wc -l <"$tmp/runs") - $(awk '{print $1}' "$tmp/runs" | sort -u | wc -l) ))
    by_pid=$(awk '{print $3}' "$tmp/runs" | sort | uniq -c | tr '\n' ' ')
    echo "runs per process: $by_pid"
    [ "$twice" -eq 0 ] || { echo "FAIL: $twice task(s) ran twice while their leases held"; exit 1; }
    echo "PASS"
    ;;
  restart)
    n=3000
    export MIDAS_SERVICES_DIR=$tmp/svc MIDAS_PG_PORT=$pg_port MIDAS_REDIS_PORT=$redis_port
    "$repo/scripts/services" start >/dev/null
    url=postgresql://midas@127.0.0.1:$pg_port/midas_test
    "$drainer" enqueue "$url" restart $n
    MIDAS_TEST_LEASE_MS=3000 "$drainer" drain "$url" restart $n 8 2 "$tmp/runs" 180 &
    d=$!
    sleep 1.5
    dir=$(cat "$tmp/svc/postgres.dir")
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    done_before=$(wc -l <"$tmp/runs")
    user=postgres; id postgres >/dev/null 2>&1 || user=midas-pg
    t0=$(date +%s%N)
    (cd / && runuser -u "$user" -- "$bin/pg_ctl" -D "$dir/data" -m fast -w restart >/dev/null)
    head -n 1 "$dir/data/postmaster.pid" >"$tmp/svc/postgres.pid"  # so cleanup stops the new server
    echo "restarted postgres in $(( ($(date +%s%N) - t0) / 1000000 )) ms with $done_before of $n runs done"
    rc=0
    wait $d || rc=1
    [ $rc -eq 0 ] || { echo "FAIL: the worker did not finish after the restart"; exit 1; }
    check_runs "$tmp/runs" $n
    left=$(psql -At "$url" -c "SELECT count(*) FROM midas.midas_tasks WHERE status <> 'succeeded'")
    [ "$left" -eq 0 ] || { echo "FAIL: $left task(s) not succeeded"; exit 1; }
    echo "PASS"
    ;;
  *) echo "usage: $0 two|restart DRAINER REPO_ROOT" >&2; exit 2 ;;
esac
