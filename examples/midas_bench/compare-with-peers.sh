#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Measures midas next to the peer task queues (RQ, Celery, BullMQ, graphile-worker, pg-boss) on
# the same private Redis and Postgres servers, back to back: the peer harness first (its
# bench/driver.py), then midas-bench on every workload against both servers. docs/benchmarks.md
# shows the output and how to read it.
#
#   examples/midas_bench/compare-with-peers.sh PATH/TO/midas-bench [PEERS_DIR]
#
# PEERS_DIR (default /work/shared/peers, read-only) is copied to $WORK (default /tmp/midas-peers);
# its setup.sh installs what the peers need (apt: python3-rq, python3-celery, python3-redis; npm ci).
# Environment:
#   N (20000)            tasks for enqueue and drain, N/4 for retry (peers and midas alike)
#   RUNS (3)             runs per peer workload (the peer table shows medians)
#   MIDAS_RUNS (3)       runs of each midas workload (medians are printed)
#   CONCURRENCY (8)      worker slots; midas also drains with 2 x CONCURRENCY
#   PEERS, WORKLOADS     passed to the peer driver (see its README)
#   SKIP_PEERS=1         measure midas only (the servers are started all the same)
#   REDIS_PORT (56490), PG_PORT (56491)   the private servers (never 6379/5432)
#   OUT ($WORK/out)      where peers.md, peers.json, midas.jsonl and midas.md are written
#   ROUNDS=R             paired mode instead: R rounds, each one run of the best peer per target
#                        (BullMQ W1 and W2, graphile-worker W2, pg-boss W1) right before one run of
#                        midas's enqueue, drain and latency on both servers. Prints each target's
#                        ratio per round and their median (paired.md, paired-ratios.py): on a
#                        noisy machine, runs a minute apart drift less than medians half an hour
#                        apart.
set -euo pipefail
bench=$(readlink -f "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
peers_src=${2:-/work/shared/peers}
[ -x "$bench" ] || { echo "usage: $0 PATH/TO/midas-bench [PEERS_DIR]" >&2; exit 2; }
work=${WORK:-/tmp/midas-peers}
export N=${N:-20000} RUNS=${RUNS:-3} CONCURRENCY=${CONCURRENCY:-8}
export REDIS_PORT=${REDIS_PORT:-56490} PG_PORT=${PG_PORT:-56491}
export TQP_DATA=$work/data LOG_DIR=$work/data/logs
midas_runs=${MIDAS_RUNS:-3}
out=${OUT:-$work/out}

mkdir -p "$work" "$out"
# Copy the harness, keeping node_modules of an earlier copy (npm ci is slow).
(cd "$peers_src" && tar --exclude=node_modules --exclude=results -cf - .) | (cd "$work" && tar -xf -)
cd "$work"
./setup.sh >/dev/null
py=/usr/bin/python3
"$py" -c 'import rq, celery, redis' || { echo "the peers need python3-rq, python3-celery, python3-redis" >&2; exit 1; }
export PYTHON=$py

./services.sh start
trap './services.sh stop >/dev/null 2>&1 || true' EXIT
mkdir -p "$LOG_DIR"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  redis-server --version
  "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/postgres" --version
} | tee "$out/machine.txt"

# midas on the same servers: Redis db 2 (the driver uses 0 and 1), Postgres schema midas_bench.
redis_url="redis://127.0.0.1:$REDIS_PORT/2?prefix=midas-bench"
pg_url="postgresql://postgres@127.0.0.1:$PG_PORT/bench?schema=midas_bench"

# measure URL WORKLOAD CONCURRENCY KEY VALUE FILE: one midas-bench run, its JSON lines tagged with
# {KEY: VALUE} and appended to FILE; a failed run leaves its lines out.
measure() {
  "$bench" --url "$1" --workload "$2" --tasks "$N" --concurrency "$3" --json \
    | jq -c --argjson v "$5" ". + {$4: \$v}" >>"$6" || true
}

if [ -n "${ROUNDS:-}" ]; then
  : >"$out/paired.jsonl"
  rm -rf "$work"/results/round*  # an earlier run's rounds must not be read as this one's
  for round in $(seq 1 "$ROUNDS"); do
    echo "round $round/$ROUNDS: peers" >&2
    for cell in bullmq:w1,w2 graphile-worker:w2 pg-boss:w1; do
      PEERS=${cell%%:*} WORKLOADS=${cell#*:} RUNS=1 OUT_DIR=$work/results/round$round-${cell%%:*} \
        "$py" bench/driver.py >>"$LOG_DIR/driver.log" 2>&1 ||
        echo "round $round: the peer driver failed for ${cell%%:*} (see $LOG_DIR/driver.log)" >&2
    done
    echo "round $round/$ROUNDS: midas" >&2
    for url in "$redis_url" "$pg_url"; do
      for w in enqueue drain latency; do measure "$url" $w "$CONCURRENCY" round "$round" "$out/paired.jsonl"; done
    done
  done
  "$py" "$here/paired-ratios.py" "$work/results" "$out/paired.jsonl" "$ROUNDS" \
    >"$out/paired.md"
  cat "$out/paired.md"
  echo "results in $out"
  exit 0
fi

if [ -z "${SKIP_PEERS:-}" ]; then
  OUT_DIR=$work/results "$py" bench/driver.py 2>&1 | tee "$LOG_DIR/driver.log"
  cp results/latest.md "$out/peers.md"
  cp results/latest.json "$out/peers.json"
fi

: >"$out/midas.jsonl"
for run in $(seq 1 "$midas_runs"); do
  for url in "$redis_url" "$pg_url"; do
    echo "midas run $run: $url" >&2
    measure "$url" all "$CONCURRENCY" run "$run" "$out/midas.jsonl"
    measure "$url" drain $((2 * CONCURRENCY)) run "$run" "$out/midas.jsonl"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"

# Medians per backend and workload.
"$py" - "$out/midas.jsonl" >"$out/midas.md" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(backend, workload, field, conc=None):
    v = [r[field] for r in rows if r["backend"] == backend and r["workload"] == workload
         and r.get(field) is not None and (conc is None or r.get("concurrency") == conc)]
    return statistics.median(v) if v else None
def f(v, d=0):
    return "-" if v is None else (f"{v:.{d}f}")
print("| backend | enqueue single (tasks/s) | enqueue batch 1000 (tasks/s) | drain C (tasks/s) | drain 2C (tasks/s) | retry: s, ms/attempt, x drain | latency p50 / p99 / max (ms) | crash: done / lost / ran 2x / finished 2x / killed tasks re-run after (s) |")
print("|---|---|---|---|---|---|---|---|")
for b in ("redis", "postgres"):
    concs = sorted({r["concurrency"] for r in rows if r["backend"] == b and r["workload"] == "drain"})
    c1, c2 = (concs + [None, None])[:2]
    print(f"| {b} | {f(med(b,'enqueue','single_tasks_per_s'))} | {f(med(b,'enqueue','batch_tasks_per_s'))} "
          f"| {f(med(b,'drain','tasks_per_s',c1))} (C={c1}) | {f(med(b,'drain','tasks_per_s',c2))} (C={c2}) "
          f"| {f(med(b,'retry','seconds'),2)} s, {f(med(b,'retry','per_attempt_ms'),3)}, {f(med(b,'retry','per_attempt_vs_drain'),2)}x "
          f"| {f(med(b,'latency','p50_ms'),2)} / {f(med(b,'latency','p99_ms'),2)} / {f(med(b,'latency','max_ms'),2)} "
          f"| {f(med(b,'crash','completed'))} / {f(med(b,'crash','lost'))} / {f(med(b,'crash','ran_twice'))} / {f(med(b,'crash','finished_twice'))} / {f(med(b,'crash','recovery_s'),1)} |")
print()
print(f"{len(rows)} runs; every value is the median of the runs. Raw: midas.jsonl")
EOF
cat "$out/midas.md"
[ -f "$out/peers.md" ] && cat "$out/peers.md"
echo "results in $out"
