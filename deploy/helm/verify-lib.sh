# shellcheck shell=bash
# Sourced by verify.sh: the helpers its demonstrations share. Expects the
# variables its command line sets ($ns, $hard, $settle).

k() { kubectl -n "$ns" "$@"; }
now_ms() { date +%s%3N; }
log() { echo "[$(date +%H:%M:%S)] $*"; }

results=()
failures=0
record() { # record PASS|FAIL NAME DETAILS
  results+=("$(printf '%-4s  %-34s  %s' "$1" "$2" "$3")")
  [ "$1" = PASS ] || failures=$((failures + 1))
  log "$1 $2: $3"
}

# --- port-forwards to the exporter and the producer ---------------------------

forward_pids=()
verify_objects=()
cleanup() {
  local pid
  for pid in "${forward_pids[@]}"; do kill "$pid" 2>/dev/null; done
  if [ "${#verify_objects[@]}" -gt 0 ]; then
    k delete --ignore-not-found --wait=false "${verify_objects[@]}" >/dev/null 2>&1
  fi
}
trap cleanup EXIT

# forward DEPLOYMENT PORT: starts a port-forward, sets forward_port to its
# local port. (Not to be called in a subshell: the pid must reach cleanup.)
forward() {
  local out
  out="$(mktemp)"
  # kubectl itself, not through k(): $! must be the port-forward's own pid.
  kubectl -n "$ns" port-forward "deployment/$1" ":$2" >"$out" 2>&1 &
  forward_pids+=("$!")
  for _ in $(seq 1 50); do
    forward_port="$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$out" | head -n 1)"
    if [ -n "$forward_port" ]; then
      rm -f "$out"
      return 0
    fi
    sleep 0.2
  done
  echo "port-forward to $1 failed: $(cat "$out")" >&2
  rm -f "$out"
  return 1
}

connect() {
  forward meshflow-exporter 9466 || return 1
  exporter_port="$forward_port"
  forward meshflow-producer 9464 || return 1
  producer_port="$forward_port"
}

exporter_port=""
producer_port=""
# scrape: refresh $exporter_metrics and $producer_metrics (reconnecting the
# port-forwards once if a pod was replaced).
scrape() {
  for _ in 1 2; do
    exporter_metrics="$(curl -fsS --max-time 5 "http://127.0.0.1:$exporter_port/metrics" 2>/dev/null)" &&
      producer_metrics="$(curl -fsS --max-time 5 "http://127.0.0.1:$producer_port/metrics" 2>/dev/null)" &&
      return 0
    connect || return 1
  done
  return 1
}

# sum TEXT NAME [LABEL="VALUE"...]: sum of the samples of NAME whose labels
# contain every given pair.
sum() {
  local text="$1" name="$2"
  shift 2
  awk -v name="$name" -v want="$*" '
    BEGIN { n = split(want, pairs, " ") }
    /^#/ { next }
    {
      metric = $1; sub(/\{.*/, "", metric)
      if (metric != name) next
      for (i = 1; i <= n; i++) if (index($1, pairs[i]) == 0) next
      total += $NF
    }
    END { printf "%.0f\n", total }' <<<"$text"
}

# snapshot: sets snap to
#   "lost log processed duplicated send_failed lag under_replicated"
snapshot() {
  scrape || return 1
  local e="$exporter_metrics"
  snap="$(sum "$e" meshflow_messages_lost_total)"
  snap+=" $(sum "$e" meshflow_messages_total 'stage="log"')"
  snap+=" $(sum "$e" meshflow_messages_total 'stage="processed"')"
  snap+=" $(sum "$e" meshflow_messages_duplicated_total)"
  snap+=" $(sum "$producer_metrics" meshflow_producer_messages_total 'outcome="failed"')"
  snap+=" $(sum "$e" meshflow_consumer_lag_messages)"
  snap+=" $(sum "$e" meshflow_partition_under_replicated)"
}

# seconds DURATION: 30s / 2m / 500ms -> whole seconds.
seconds() {
  case "$1" in
    *ms) echo $((${1%ms} / 1000)) ;;
    *s) echo "${1%s}" ;;
    *m) echo $((${1%m} * 60)) ;;
    *h) echo $((${1%h} * 3600)) ;;
    *) echo 0 ;;
  esac
}

delete_pod() {
  if [ "$hard" -eq 1 ]; then
    k delete pod "$1" --grace-period=0 --force --wait=false >/dev/null 2>&1
  else
    k delete pod "$1" --wait=false >/dev/null
  fi
}

# watch_until TIMEOUT COMMAND...: takes a snapshot every 2s (in $snap, which
# COMMAND may read) until COMMAND succeeds; sets watch_ms (time taken) and
# stall_ms (the longest stretch in which no new message reached the log).
watch_until() {
  local timeout="$1" start last_change last_log t log
  shift
  start="$(now_ms)"
  last_change="$start"
  last_log=-1
  stall_ms=0
  while :; do
    t="$(now_ms)"
    if snapshot; then
      read -r _ log _ <<<"$snap"
      if [ "$log" -gt "$last_log" ]; then
        last_change="$t"
        last_log="$log"
      fi
    fi
    [ $((t - last_change)) -gt "$stall_ms" ] && stall_ms=$((t - last_change))
    if "$@"; then
      watch_ms=$((t - start))
      return 0
    fi
    if [ $((t - start)) -gt $((timeout * 1000)) ]; then
      watch_ms=$((t - start))
      return 1
    fi
    sleep 2
  done
}

# compare NAME BEFORE AFTER [MORE [BAD]]: checks and records what changed.
# MORE is added to the details; BAD=1 fails the step whatever the counters say.
compare() {
  local name="$1" b a more="${4:-}" bad="${5:-0}"
  read -r -a b <<<"$2"
  read -r -a a <<<"$3"
  local lost=$((a[0] - b[0])) logged=$((a[1] - b[1])) processed=$((a[2] - b[2]))
  local dup=$((a[3] - b[3])) failed=$((a[4] - b[4]))
  local detail="lost $lost, reached log $logged, processed $processed, duplicates $dup, send failures $failed${more:+; $more}"
  if [ "$logged" -lt 0 ] || [ "$processed" -lt 0 ]; then
    record FAIL "$name" "exporter counters went backwards (exporter restarted?): $detail"
  elif [ "$bad" -eq 1 ] || [ "$lost" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$logged" -le 0 ] || [ "$processed" -le 0 ]; then
    record FAIL "$name" "$detail"
  else
    record PASS "$name" "$detail"
  fi
}

# settle_then_snapshot STEP NAME WINDOWS: waits out the exporter's windows
# after a disruption, then takes the closing snapshot (in $snap); records a
# failure of NAME and returns 1 if the metrics cannot be read.
settle_then_snapshot() {
  log "$1 waiting ${settle}s for the exporter's $3"
  sleep "$settle"
  snapshot || { record FAIL "$2" "cannot read metrics"; return 1; }
}
