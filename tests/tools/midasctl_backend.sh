#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# midasctl against a server (ctest labels postgres / redis), each run in a schema or key prefix of
# its own:
#   roundtrip: enqueue -> list -> show -> cancel -> requeue, unique keys, errors on bad states
#   requeue:   requeue --status failed of several failed tasks (queue filter, history kept)
#   prune:     prune --older-than keeps young and unfinished tasks, deletes more than one batch
# Usage: midasctl_backend.sh roundtrip|requeue|prune postgres|redis MIDASCTL HELPER
# Exit 77 (ctest: skipped) when MIDAS_TEST_PG_URL / MIDAS_TEST_REDIS_URL is unset.
set -euo pipefail
what=$1 backend=$2 ctl=$3 helper=$4
case "$backend" in
  postgres) base=${MIDAS_TEST_PG_URL:-} var=MIDAS_TEST_PG_URL ;;
  redis) base=${MIDAS_TEST_REDIS_URL:-} var=MIDAS_TEST_REDIS_URL ;;
  *) echo "unknown backend $backend"; exit 2 ;;
esac
[ -n "$base" ] || { echo "skipped: $var is not set (scripts/services start)"; exit 77; }
source "$(dirname "$0")/lib.sh"
unset MIDAS_URL
isolated_url "$backend" "$base"
ctl() { run "$ctl" --url "$url" "$@"; }

ctl --json migrate
expect_rc 0 migrate
expect_json ".migrated == true and .backend == \"$backend\""

case "$what" in
  roundtrip)
    ctl --json enqueue demo.roundtrip --params '{"n": 1, "name": "ada"}' --queue rt --priority 3 \
      --max-attempts 4
    expect_rc 0 enqueue
    expect_one_json
    id=$(json_get .id)
    expect_json '.duplicate == false and .queue == "rt" and .type == "demo.roundtrip"'

    # Bad JSON enqueues nothing.
    ctl enqueue demo.roundtrip --params '{"n": ' --queue rt
    expect_rc 2 "bad JSON"
    expect_stderr "nothing was enqueued"
    ctl --json stats --queue rt
    expect_rc 0 stats
    expect_one_json
    expect_json '.queues | length == 1 and .[0].queue == "rt" and .[0].pending == 1 and .[0].total == 1'
    expect_json '.totals.total == 1 and .running == 0 and (.durability_warnings | type == "array")'
    expect_json '(.queues[0].oldest_due_age_ms | type == "number")'

    ctl --json list --queue rt
    expect_rc 0 list
    expect_one_json
    expect_json ".count == 1 and .tasks[0].id == \"$id\" and .tasks[0].status == \"pending\""
    expect_json '.tasks[0] | (.type == "demo.roundtrip" and .queue == "rt" and .attempt == 0 and .max_attempts == 4 and .priority == 3 and .unique_key == null and .finished_at == null and (.run_at | type == "string") and (.created_at | type == "string") and (.updated_at | type == "string"))'

    ctl list --queue rt
    expect_rc 0 "list (table)"
    expect_stdout "ID"
    expect_stdout "$id"
    expect_stdout "0/4"

    ctl --json show "$id"
    expect_rc 0 show
    expect_one_json
    expect_json ".task.id == \"$id\" and .task.status == \"pending\" and .task.params == {\"n\": 1, \"name\": \"ada\"} and .task.history == []"

    ctl --json cancel "$id"
    expect_rc 0 cancel
    expect_json ".id == \"$id\" and .status == \"cancelled\""
    ctl --json show "$id"
    expect_json '.task.status == "cancelled" and (.task.finished_at | type == "string")'
    ctl --json cancel "$id"
    expect_rc 0 "cancel of a cancelled task is a no-op"

    ctl --json requeue "$id"
    expect_rc 0 requeue
    expect_json ".requeued == 1 and .failed == 0 and .ids == [\"$id\"]"
    ctl --json show "$id"
    expect_json '.task.status == "pending" and .task.attempt == 0'

    ctl requeue "$id"
    expect_rc 1 "requeue of a pending task"
    expect_stderr "is pending: only failed or cancelled tasks can be requeued"

    ctl --json show "no-such-task"
    expect_rc 1 "show of an unknown id"
    expect_json '.error.code == "task_not_found"'

    # Unique keys: the second enqueue returns the first task.
    ctl --json enqueue demo.unique --queue rt --unique-key order-7
    first=$(json_get .id)
    ctl --json enqueue demo.unique --queue rt --unique-key order-7
    expect_rc 0 "duplicate enqueue"
    expect_json ".duplicate == true and .id == \"$first\""

    # A delayed task is pending but not due.
    ctl --json enqueue demo.later --queue later --delay 2h
    later=$(json_get .id)
    ctl --json show "$later"
    expect_json '.task.status == "pending"'
    ctl --json stats --queue later
    expect_json '.queues[0].pending == 1 and .queues[0].oldest_due_age_ms == null'
    ;;

  requeue)
    run "$helper" enqueue "$url" dead demo.fail 5 1
    expect_rc 0 "helper enqueue"
    run "$helper" enqueue "$url" other demo.fail 1 1
    run "$helper" run "$url" dead demo.fail fail
    expect_rc 0 "helper run dead"
    expect_stdout "failed 5"
    run "$helper" run "$url" other demo.fail fail
    expect_stdout "failed 1"

    ctl --json stats --queue dead
    expect_json '.queues[0].failed == 5 and .queues[0].pending == 0'
    ctl --json list --queue dead --status failed
    expect_json '.count == 5'
    one=$(json_get '.tasks[0].id')
    ctl --json show "$one"
    expect_json '.task.status == "failed" and (.task.history | length == 1) and .task.history[0].decision == "fail" and (.task.history[0].error.message | contains("on purpose"))'

    ctl show "$one"
    expect_rc 0 "show (table)"
    expect_stdout "history (1 attempt record)"
    expect_stdout "on purpose"

    ctl --json requeue --status failed --queue dead
    expect_rc 0 "requeue --status failed"
    expect_one_json
    expect_json '.requeued == 5 and .failed == 0 and (.ids | length == 5) and .errors == []'

    ctl --json stats --queue dead
    expect_json '.queues[0].failed == 0 and .queues[0].pending == 5'
    ctl --json stats --queue other
    expect_json '.queues[0].failed == 1'
    ctl --json show "$one"
    expect_json '.task.status == "pending" and .task.attempt == 0 and (.task.history | length == 1)'

    # Requeued tasks run again; then every failed task of every queue, in the table form.
    run "$helper" run "$url" dead demo.fail fail
    expect_stdout "failed 5"
    ctl requeue --status failed
    expect_rc 0 "requeue --status failed, all queues"
    expect_stdout "requeued 6 failed tasks"
    ctl --json show "$one"
    expect_json '(.task.history | length == 2)'
    ;;

  prune)
    run "$helper" enqueue "$url" old demo.ok 2500
    expect_rc 0 "helper enqueue"
    run "$helper" run "$url" old demo.ok succeed
    expect_stdout "succeeded 2500"
    ctl --json enqueue demo.ok --queue young
    pending=$(json_get .id)

    ctl --json prune --older-than 1h
    expect_rc 0 "prune of nothing old enough"
    expect_json '.pruned == 0'
    sleep 1.5
    ctl --json prune --older-than 1s
    expect_rc 0 prune
    expect_one_json
    expect_json '.pruned == 2500 and (.cutoff | type == "string")'
    ctl --json stats
    expect_json '([.queues[] | select(.queue == "old")] | length == 0) or (.queues[] | select(.queue == "old") | .total == 0)'
    ctl --json show "$pending"
    expect_rc 0 "an unfinished task is never pruned"
    expect_json '.task.status == "pending"'

    ctl prune --older-than 0s
    expect_rc 0 "prune (text)"
    expect_stdout "pruned 0 finished tasks"
    ;;
  *)
    echo "unknown case $what"
    exit 2
    ;;
esac
pass
