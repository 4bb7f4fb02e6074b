#!/bin/bash
# The kubelet's readiness probe. It starts no JVM: it reads the state that
# the readiness loop (kafka-lib.sh, check_readiness) writes every few
# seconds, and refuses a state too old to trust.
state="${MESHFLOW_STATE_DIR:-/tmp}/readiness"
max_age="${KAFKA_READINESS_MAX_AGE_SECONDS:-90}"
if ! read -r status at reason <"$state" 2>/dev/null; then
  echo "no readiness state yet"
  exit 1
fi
age=$(($(date +%s) - at))
if [ "$age" -gt "$max_age" ]; then
  echo "readiness state is ${age}s old: the check loop is stuck"
  exit 1
fi
echo "$status: $reason"
[ "$status" = ready ]
