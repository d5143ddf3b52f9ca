#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Ratios of midas to the best peer per target, round by round (compare-with-peers.sh ROUNDS=R).

Usage: paired-ratios.py RESULTS_DIR PAIRED_JSONL ROUNDS
RESULTS_DIR holds the peer driver's round<k>-<peer>/latest.json; PAIRED_JSONL midas-bench's
--json lines, each with the round it belongs to. Prints a markdown table.
"""
import json
import os
import statistics
import sys

results, rounds = sys.argv[1], int(sys.argv[3])
midas = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]


def peer(r, name, workload, field):
    try:
        with open(os.path.join(results, f"round{r}-{name}", "latest.json")) as f:
            run = json.load(f)["peers"][name]["raw"][workload][0]
        return None if run.get("capped") else run[field]  # a capped run is no rate
    except (OSError, KeyError, IndexError, TypeError, ValueError):
        return None


def mine(r, backend, workload, field):
    for m in midas:
        if (m.get("round"), m.get("backend"), m.get("workload")) == (r, backend, workload):
            return m.get(field) if m.get("ok") else None
    return None


# name, goal (ratio), midas's figure, the best peer's figure
targets = [
    ("Redis drain", 5, ("redis", "drain", "tasks_per_s"), [("bullmq", "w2", "rate")]),
    ("Redis batch enqueue", 3, ("redis", "enqueue", "batch_tasks_per_s"), [("bullmq", "w1", "bulk")]),
    ("Postgres drain", 5, ("postgres", "drain", "tasks_per_s"), [("graphile-worker", "w2", "rate")]),
    ("Postgres batch enqueue", 3, ("postgres", "enqueue", "batch_tasks_per_s"), [("pg-boss", "w1", "bulk")]),
]
header = " | ".join(f"round {r}" for r in range(1, rounds + 1))
print(f"| target | {header} | median | met |")
print("|---|" + "---|" * rounds + "---|---|")
for name, goal, ours, theirs in targets:
    cells, ratios = [], []
    for r in range(1, rounds + 1):
        a = mine(r, *ours)
        b = max((v for v in (peer(r, *t) for t in theirs) if v), default=None)
        if a and b:
            ratios.append(a / b)
            cells.append(f"{a:,.0f} / {b:,.0f} = {a / b:.2f}x")
        else:
            cells.append("-")
    med = statistics.median(ratios) if ratios else None
    shown = "-" if med is None else f"{med:.2f}x (min {min(ratios):.2f}x)"
    met = "-" if med is None else ("yes" if med >= goal else "no")
    print(f"| {name} >= {goal}x | " + " | ".join(cells) + f" | {shown} | {met} |")
for backend, p50_goal, p99_goal in (("redis", 1, 3), ("postgres", 2, 5)):
    cells, p50s, p99s = [], [], []
    for r in range(1, rounds + 1):
        p50, p99 = mine(r, backend, "latency", "p50_ms"), mine(r, backend, "latency", "p99_ms")
        if p50 is None or p99 is None:
            cells.append("-")
            continue
        p50s.append(p50)
        p99s.append(p99)
        enq = mine(r, backend, "latency", "enqueue_p99_ms")
        cells.append(f"{p50:.2f} / {p99:.2f} ms" + ("" if enq is None else f" (enqueue p99 {enq:.2f})"))
    if p50s:
        a, b = statistics.median(p50s), statistics.median(p99s)
        shown, met = f"{a:.2f} / {b:.2f} ms", "yes" if a <= p50_goal and b <= p99_goal else "no"
    else:
        shown, met = "-", "-"
    print(f"| {backend} latency p50 <= {p50_goal}, p99 <= {p99_goal} ms | " + " | ".join(cells) +
          f" | {shown} | {met} |")
print()
print("Each drain and enqueue cell: midas / the best peer in the same round (tasks/s) = ratio. "
      "Latency cells: midas's p50 / p99, and the p99 of the enqueue call alone. Raw: paired.jsonl, results/round*/latest.json.")
