# SPDX-License-Identifier: MIT
# Helpers of the midasctl / midas-bench tests (sourced). Each check prints what it expected and
# what it got, and a failed check ends the test with status 1.

command -v jq >/dev/null || { echo "FAIL: jq is needed by these tests (apt-get install jq)"; exit 1; }

checks=0
tmp_dir=$(mktemp -d /tmp/midas-tools-test.XXXXXX)
out=$tmp_dir/out
err=$tmp_dir/err
cleanups=()
run_cleanups() {
  local c
  for c in "${cleanups[@]}"; do eval "$c" || true; done
  rm -rf "$tmp_dir"
}
trap run_cleanups EXIT

fail() {
  echo "FAIL: $*"
  echo "--- stdout:"; cat "$out" 2>/dev/null || true
  echo "--- stderr:"; cat "$err" 2>/dev/null || true
  exit 1
}

# run CMD...: runs it with stdout in $out and stderr in $err; the status is in $rc.
run() {
  set +e
  "$@" >"$out" 2>"$err"
  rc=$?
  set -e
  return 0
}

expect_rc() {
  checks=$((checks + 1))
  [ "$rc" -eq "$1" ] || fail "expected exit status $1, got $rc: ${2:-}"
}

# expect_stderr TEXT: stderr contains TEXT (fixed string).
expect_stderr() {
  checks=$((checks + 1))
  grep -qF -- "$1" "$err" || fail "stderr does not contain: $1"
}

expect_stdout() {
  checks=$((checks + 1))
  grep -qF -- "$1" "$out" || fail "stdout does not contain: $1"
}

# expect_one_json: stdout is exactly one JSON object.
expect_one_json() {
  checks=$((checks + 1))
  local n
  n=$(jq -s 'length' <"$out" 2>/dev/null) || fail "stdout is not JSON"
  [ "$n" -eq 1 ] || fail "stdout holds $n JSON documents, expected exactly one"
  jq -e 'type == "object"' <"$out" >/dev/null || fail "stdout is not a JSON object"
}

# expect_json FILTER: the jq FILTER is true for stdout (one document).
expect_json() {
  checks=$((checks + 1))
  jq -e "$1" <"$out" >/dev/null || fail "JSON check failed: $1"
}

# json_get FILTER: prints the jq FILTER's value (raw) for stdout.
json_get() { jq -r "$1" <"$out"; }

# with_param URL K=V: adds a query parameter.
with_param() { case "$1" in *\?*) echo "$1&$2" ;; *) echo "$1?$2" ;; esac; }

# isolated_url BACKEND BASE_URL: sets `url` to a URL with a schema (postgres) or key prefix
# (redis) of its own, removed when the test ends. (Not in $(...): the cleanup must be registered
# in this shell.)
isolated_url() {
  local backend=$1 base=$2 name
  name="tools_$$_${RANDOM}"
  case "$backend" in
    postgres)
      cleanups+=("psql -q '$base' -c 'SET client_min_messages = warning; DROP SCHEMA IF EXISTS $name CASCADE' >/dev/null 2>&1")
      url=$(with_param "$base" "schema=$name")
      ;;
    redis)
      local hostport host port db
      hostport=${base#redis://}
      hostport=${hostport##*@}
      db=${hostport#*/}
      [ "$db" != "$hostport" ] || db=0
      db=${db%%\?*}
      hostport=${hostport%%/*}
      host=${hostport%%:*}
      port=${hostport##*:}
      [ "$port" != "$host" ] || port=6379
      cleanups+=("redis-cli -h $host -p $port -n ${db:-0} --scan --pattern '*$name*' | xargs -r redis-cli -h $host -p $port -n ${db:-0} del >/dev/null")
      url=$(with_param "$base" "prefix=$name")
      ;;
    *) url=$base ;;
  esac
}

pass() { echo "PASS ($checks checks)"; }
