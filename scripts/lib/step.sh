# shellcheck shell=bash
# Sourced by the test scripts: one way to run a named check and count it.
#
# step NAME COMMAND...: runs one check, prints "ok   - NAME" or
# "FAIL - NAME" followed by its output, and counts it in $passed or
# $failed. A script may redefine two hooks after sourcing this file:
# step_summary LOG (text appended to an "ok" line; nothing by default) and
# step_failure_output (filters a failed check's output; all of it by default).

passed=0
failed=0

step_summary() { :; }
step_failure_output() { cat; }

step() {
  local name="$1"
  shift
  local log
  log="$(mktemp)"
  if "$@" >"$log" 2>&1; then
    echo "ok   - $name$(step_summary "$log")"
    passed=$((passed + 1))
  else
    echo "FAIL - $name"
    step_failure_output <"$log" | sed 's/^/       /'
    failed=$((failed + 1))
  fi
  rm -f "$log"
}
