#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# midasctl without servers (ctest label unit):
#   arguments: usage errors exit 2 with a message that names the fix; unreachable servers exit 1
#   json:      --json prints exactly one object with the documented fields (on memory://)
# Usage: midasctl_unit.sh arguments|json MIDASCTL
set -euo pipefail
what=$1 ctl=$2
source "$(dirname "$0")/lib.sh"
unset MIDAS_URL
m=memory://

case "$what" in
  arguments)
    run "$ctl" --help
    expect_rc 0 "--help"
    expect_stdout "memory:// lives inside one process"

    run "$ctl"
    expect_rc 2 "no command"
    expect_stderr "subcommand is required"

    run "$ctl" --url $m frobnicate
    expect_rc 2 "unknown command"

    run "$ctl" stats
    expect_rc 2 "no URL"
    expect_stderr "no backend URL — pass --url URL or set MIDAS_URL"

    run "$ctl" --url $m enqueue
    expect_rc 2 "enqueue without a type"
    expect_stderr "type is required"

    run "$ctl" --url $m enqueue demo --params '{"a": 1'
    expect_rc 2 "bad JSON"
    expect_stderr "--params is not valid JSON"
    expect_stderr "nothing was enqueued"

    run "$ctl" --url $m --json enqueue demo --params 'nope'
    expect_rc 2 "bad JSON with --json"
    expect_one_json
    expect_json '.error.code == "usage" and (.error.message | contains("not valid JSON")) and .error.exit_code == 2'

    run "$ctl" --url $m enqueue 'bad type!' --params '{}'
    expect_rc 2 "invalid type name"
    expect_stderr "invalid task type"

    run "$ctl" --url $m enqueue demo --queue 'a b'
    expect_rc 2 "invalid queue name"
    expect_stderr "invalid queue name"

    run "$ctl" --url $m enqueue demo --delay 10
    expect_rc 2 "delay without unit"
    expect_stderr "has no unit"

    run "$ctl" --url $m enqueue demo --delay 3w
    expect_rc 2 "unknown unit"
    expect_stderr "unknown unit 'w'"

    run "$ctl" --url $m enqueue demo --max-attempts -1
    expect_rc 2 "negative attempts"

    run "$ctl" --url $m enqueue demo --priority high
    expect_rc 2 "priority not a number"

    run "$ctl" --url $m list --status sleeping
    expect_rc 2 "unknown status"
    expect_stderr "unknown status 'sleeping'"

    run "$ctl" --url $m list --limit 0
    expect_rc 2 "limit 0"

    run "$ctl" --url $m show
    expect_rc 2 "show without id"

    run "$ctl" --url $m requeue
    expect_rc 2 "requeue with neither id nor status"
    expect_stderr "give exactly one"

    run "$ctl" --url $m requeue 42 --status failed
    expect_rc 2 "requeue with both"

    run "$ctl" --url $m requeue --status running
    expect_rc 2 "requeue of a status that cannot be requeued"

    run "$ctl" --url $m requeue 42 --queue q
    expect_rc 2 "--queue with an id"

    run "$ctl" --url $m prune
    expect_rc 2 "prune without --older-than"
    expect_stderr "--older-than is required"

    run "$ctl" --url $m prune --older-than yesterday
    expect_rc 2 "bad duration"
    expect_stderr "write it like 30s, 15m, 2h or 7d"

    run "$ctl" --url 'foo://x' stats
    expect_rc 2 "unknown scheme"
    expect_stderr "unsupported URL scheme 'foo'"

    run "$ctl" --url 'not a url' stats
    expect_rc 2 "garbage URL"
    expect_stderr "invalid backend URL"

    # Nothing listens on port 1: the error names the backend, the address, the cause and the fix.
    run "$ctl" --url 'postgresql://someone:secret@127.0.0.1:1/db' stats
    expect_rc 1 "postgres down"
    expect_stderr "cannot reach postgres at 127.0.0.1:1: connection refused — is the server running? check --url"
    checks=$((checks + 1))
    ! grep -q secret "$err" || fail "the password was printed"

    run "$ctl" --url 'redis://127.0.0.1:1/0' --json stats
    expect_rc 1 "redis down"
    expect_stderr "cannot reach redis at 127.0.0.1:1: connection refused — is the server running? check --url"
    expect_one_json
    expect_json '.error.code == "backend_unavailable" and .error.exit_code == 1'
    ;;

  json)
    run "$ctl" --url $m --json migrate
    expect_rc 0 migrate
    expect_one_json
    expect_json '.migrated == true and .backend == "memory"'

    # --json may come before or after the command; MIDAS_URL stands in for --url.
    MIDAS_URL=$m run "$ctl" enqueue demo.task --params '{"user": 42}' --queue q1 --priority 2 \
      --delay 15m --unique-key k --max-attempts 4 --json
    expect_rc 0 enqueue
    expect_one_json
    expect_json '(.id | type == "string" and length > 0) and .duplicate == false and .type == "demo.task" and .queue == "q1"'
    expect_stderr "memory:// lives in this process only"

    run "$ctl" --url $m --json stats
    expect_rc 0 stats
    expect_one_json
    expect_json '.backend == "memory" and .queues == [] and .running == 0 and .oldest_due_age_ms == null'
    expect_json '.totals | (.pending == 0 and .running == 0 and .retrying == 0 and .succeeded == 0 and .failed == 0 and .cancelled == 0 and .total == 0)'
    expect_json '(.durability_warnings | type == "array" and length >= 1)'

    run "$ctl" --url $m --json stats --queue q1
    expect_rc 0 "stats --queue"
    expect_one_json

    run "$ctl" --url $m --json list --queue q1 --status pending --type demo --limit 5
    expect_rc 0 list
    expect_one_json
    expect_json '.count == 0 and .tasks == []'

    run "$ctl" --url $m --json show 12345
    expect_rc 1 "show of an unknown id"
    expect_one_json
    expect_json '.error.code == "task_not_found" and (.error.message | contains("12345"))'

    run "$ctl" --url $m --json cancel 12345
    expect_rc 1 "cancel of an unknown id"
    expect_json '.error.code == "task_not_found"'

    run "$ctl" --url $m --json requeue 12345
    expect_rc 1 "requeue of an unknown id"
    expect_json '.error.code == "task_not_found"'

    run "$ctl" --url $m --json requeue --status failed --queue q1
    expect_rc 0 "requeue --status failed"
    expect_one_json
    expect_json '.requeued == 0 and .failed == 0 and .ids == [] and .errors == []'

    run "$ctl" --url $m --json prune --older-than 7d
    expect_rc 0 prune
    expect_one_json
    expect_json '.pruned == 0 and (.cutoff | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"))'

    # Human output: aligned tables with a header.
    run "$ctl" --url $m stats
    expect_rc 0 "stats (table)"
    expect_stdout "no tasks"
    expect_stdout "durability"
    ;;
  *)
    echo "unknown case $what"
    exit 2
    ;;
esac
pass
