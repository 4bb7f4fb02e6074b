#!/bin/bash
# Functions of the Kafka container (sourced by start.sh): formatting the
# storage for a dynamic KRaft quorum (KIP-853), joining that quorum, and the
# readiness state the kubelet's probe reads.
#
# Paths and timings come from the environment, with the pod's values as
# defaults, so that deploy/helm/tests/ can run each function against
# stand-in Kafka tools.

KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-/var/lib/kafka/data/logs}"
KAFKA_CONFIG="${KAFKA_CONFIG:-/opt/kafka/config/server.properties}"
MESHFLOW_STATE_DIR="${MESHFLOW_STATE_DIR:-/tmp}"
CONFIG_DIR="${MESHFLOW_KAFKA_CONFIG_DIR:-/opt/meshflow/kafka-config}"
ADMIN_CONFIG="$CONFIG_DIR/admin.properties"
CONTROLLER_BOOTSTRAP="${KAFKA_CONTROLLER_BOOTSTRAP:-localhost:9093}"
# How long node 0 listens for peers before it bootstraps a new quorum.
BOOTSTRAP_WAIT="${KAFKA_BOOTSTRAP_WAIT_SECONDS:-60}"
# How long a node with an empty volume waits for the quorum before it
# exits (and the kubelet restarts it), below the startup probe's budget.
QUORUM_WAIT_LIMIT="${KAFKA_QUORUM_WAIT_LIMIT_SECONDS:-540}"
WAIT_STEP="${KAFKA_WAIT_STEP_SECONDS:-5}"
# How long a restarted broker may stay out of an ISR before it reports
# ready anyway (a partition that cannot catch up must not block a rollout).
ISR_WAIT="${KAFKA_ISR_WAIT_SECONDS:-600}"
READINESS_INTERVAL="${KAFKA_READINESS_INTERVAL_SECONDS:-10}"
JOIN_INTERVAL="${KAFKA_JOIN_INTERVAL_SECONDS:-30}"

# Kafka's tools run as one small JVM at a time beside the broker; their
# bounds are part of the container's memory budget (values.yaml).
TOOLS_HEAP_OPTS="-Xms32m -Xmx96m"
TOOLS_JVM_OPTS="-XX:MaxMetaspaceSize=96m -XX:ReservedCodeCacheSize=32m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k"

log() { echo "[meshflow] $*" >&2; }

# tool NAME ARGS...: runs one of Kafka's command-line tools, logging to stderr.
tool() {
  local name="$1"
  shift
  KAFKA_HEAP_OPTS="$TOOLS_HEAP_OPTS" KAFKA_JVM_PERFORMANCE_OPTS="$TOOLS_JVM_OPTS" \
    KAFKA_GC_LOG_OPTS="" KAFKA_OPTS="" KAFKA_JMX_OPTS="" JMX_PORT="" \
    KAFKA_LOG4J_OPTS="-Dlog4j2.configurationFile=/opt/meshflow/kafka-config/tools-log4j2.yaml" \
    "$KAFKA_BIN/$name" "$@"
}

# --- server.properties ---------------------------------------------------------

# write_server_properties: the chart's server.properties plus what differs
# per pod (node id, advertised addresses).
write_server_properties() {
  {
    cat "$CONFIG_DIR/server.properties"
    echo "node.id=$KAFKA_NODE_ID"
    echo "advertised.listeners=PLAINTEXT://$POD_NAME.$KAFKA_HEADLESS_DOMAIN:9092,CONTROLLER://$POD_NAME.$KAFKA_HEADLESS_DOMAIN:9093"
  } >"$KAFKA_CONFIG"
}

# --- storage ---------------------------------------------------------------------

# peer_answers HOST:PORT: whether a Kafka listener there answers ApiVersions.
# A controller listens on 9093 only once its volume is formatted, so an
# answering peer means the cluster exists. (A TCP connect alone proves
# nothing in the mesh: the local ztunnel accepts every connection.)
peer_answers() {
  local reply
  # shellcheck disable=SC2016 # expanded by the inner bash
  reply=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
    printf "\x00\x00\x00\x10\x00\x12\x00\x00\x00\x00\x00\x01\x00\x06meshfl" >&3
    head -c 8 <&3 | od -An -tx1 | tr -d " \n"' peer "$1" 2>/dev/null)
  [ "${reply:8:8}" = 00000001 ]
}

# any_peer_answers: whether another controller of the cluster answers.
any_peer_answers() {
  local target
  for target in ${CONTROLLER_BOOTSTRAP//,/ }; do
    [[ "$target" == "${POD_NAME:-}."* ]] && continue
    peer_answers "$target" && return 0
  done
  return 1
}

# quorum_answers: whether the controller quorum has a leader that answers.
quorum_answers() {
  tool kafka-metadata-quorum.sh --bootstrap-controller "$CONTROLLER_BOOTSTRAP" \
    --command-config "$ADMIN_CONFIG" describe --status >/dev/null 2>&1
}

# format_storage: formats an empty volume, never one that holds data.
#
# Voters of a dynamic quorum are (node id, directory id) pairs, and format
# gives every volume a new random directory id, so a reformatted node can
# never pass for the voter it was: it joins as an observer and then asks to
# become a voter (join_quorum_once), which the leader refuses while the old
# directory is still a voter. Only node 0 ever bootstraps a quorum
# (--standalone), and only when no quorum answers and no peer has data for
# BOOTSTRAP_WAIT seconds: at the first install. The other nodes wait for
# the quorum and format with --no-initial-controllers.
format_storage() {
  if [ -f "$KAFKA_DATA_DIR/meta.properties" ]; then
    log "storage formatted: $(grep '^directory.id=' "$KAFKA_DATA_DIR/meta.properties")"
    return 0
  fi
  local start now mode="" peer_has_data=0
  start=$(date +%s)
  while :; do
    now=$(date +%s)
    if quorum_answers; then
      mode=--no-initial-controllers
      log "empty volume, and the quorum answers: formatting as a new directory that joins as an observer"
      break
    fi
    if [ "$KAFKA_NODE_ID" = 0 ] && [ "$peer_has_data" = 0 ]; then
      if any_peer_answers; then
        peer_has_data=1
        log "empty volume, but a peer has data: this node lost its volume and waits for the quorum to join it (never bootstraps a second one)"
      elif [ $((now - start)) -ge "$BOOTSTRAP_WAIT" ]; then
        mode=--standalone
        log "empty volume, no quorum and no peer with data for ${BOOTSTRAP_WAIT}s: bootstrapping the quorum with this node as its first voter"
        break
      fi
    fi
    if [ $((now - start)) -ge "$QUORUM_WAIT_LIMIT" ]; then
      log "empty volume and no quorum after ${QUORUM_WAIT_LIMIT}s: exiting, the kubelet restarts the container"
      return 1
    fi
    sleep "$WAIT_STEP"
  done
  tool kafka-storage.sh format --config "$KAFKA_CONFIG" --cluster-id "$CLUSTER_ID" "$mode"
}

# --- joining the quorum --------------------------------------------------------

directory_id() {
  sed -n 's/^directory\.id=//p' "$KAFKA_DATA_DIR/meta.properties"
}

# join_quorum_once: 0 when this node's directory is a voter; otherwise asks
# the leader to add it (add-controller, KIP-853) and returns 1 to be called
# again. A node whose id is a voter with another directory lost its volume:
# it prints the command that removes the old directory and waits.
join_quorum_once() {
  local dir status voters old out
  dir=$(directory_id)
  if ! status=$(tool kafka-metadata-quorum.sh --bootstrap-controller "$CONTROLLER_BOOTSTRAP" \
    --command-config "$ADMIN_CONFIG" describe --status 2>&1); then
    log "quorum: no answer yet"
    return 1
  fi
  voters=$(sed -n 's/^CurrentVoters:[[:space:]]*//p' <<<"$status")
  if grep -Eq "\"directoryId\": *\"$dir\"" <<<"$voters"; then
    return 0
  fi
  old=$(grep -Eo "\"id\": *$KAFKA_NODE_ID, *\"directoryId\": *\"[^\"]*\"" <<<"$voters" | sed 's/.*"directoryId": *"\([^"]*\)"/\1/')
  if [ -n "$old" ]; then
    log "node $KAFKA_NODE_ID is a voter with directory $old, but this volume is directory $dir: the volume was lost or replaced." \
      "It serves as a broker and an observer. After checking that the other voters are healthy, remove the old directory with:" \
      "kafka-metadata-quorum.sh --bootstrap-controller $CONTROLLER_BOOTSTRAP remove-controller --controller-id $KAFKA_NODE_ID --controller-directory-id $old" \
      "and this node then joins the voters (docs/kubernetes.md, Lost volume)."
    return 1
  fi
  if out=$(tool kafka-metadata-quorum.sh --bootstrap-controller "$CONTROLLER_BOOTSTRAP" \
    --command-config "$KAFKA_CONFIG" add-controller 2>&1); then
    log "asked to join the voters as node $KAFKA_NODE_ID, directory $dir"
  else
    log "add-controller refused (retrying): $(tail -n 1 <<<"$out")"
  fi
  return 1
}

join_loop() {
  until join_quorum_once; do
    sleep "$JOIN_INTERVAL"
  done
  log "node $KAFKA_NODE_ID (directory $(directory_id)) is a voter"
}

# --- readiness ----------------------------------------------------------------

# lagging_partitions NODE: reads `kafka-topics.sh --describe` on stdin and
# prints topic-partition for every partition that has NODE among its
# replicas but not in its ISR.
lagging_partitions() {
  awk -v node="$1" '
    function field(name,   i) {
      for (i = 1; i < NF; i++) if ($i == name && $(i + 1) !~ /:$/) return $(i + 1)
      return ""
    }
    {
      part = field("Partition:")
      if (part == "") next
      if (index("," field("Replicas:") ",", "," node ",") && !index("," field("Isr:") ",", "," node ","))
        print field("Topic:") "-" part
    }'
}

write_readiness() { # STATUS REASON
  printf '%s %s %s\n' "$1" "$(date +%s)" "$2" >"$MESHFLOW_STATE_DIR/readiness.tmp" &&
    mv "$MESHFLOW_STATE_DIR/readiness.tmp" "$MESHFLOW_STATE_DIR/readiness"
}

# check_readiness: ready when the cluster lists this node among its live
# (registered, unfenced) brokers, its log directory is online, and, after a
# start, it is back in the ISR of every partition it replicates, or
# ISR_WAIT seconds have passed since it became live. Once caught up it
# stays ready while other brokers restart (readiness_caught_up).
check_readiness() {
  local out lagging now
  now=$(date +%s)
  if ! out=$(tool kafka-log-dirs.sh --bootstrap-server localhost:9092 --command-config "$ADMIN_CONFIG" \
    --describe --broker-list "$KAFKA_NODE_ID" --topic-list __meshflow_probe 2>&1); then
    write_readiness not-ready "broker $KAFKA_NODE_ID not live in the cluster: $(tail -n 1 <<<"$out")"
    return
  fi
  if grep -q '"error":"' <<<"$out"; then
    write_readiness not-ready "broker $KAFKA_NODE_ID has an offline log directory"
    return
  fi
  : "${readiness_started:=$now}"
  if [ "${readiness_caught_up:-0}" != 1 ]; then
    if ! out=$(tool kafka-topics.sh --bootstrap-server localhost:9092 --command-config "$ADMIN_CONFIG" \
      --describe --under-replicated-partitions 2>&1); then
      out="Topic: ? Partition: ? Replicas: $KAFKA_NODE_ID Isr: unknown"
    fi
    lagging=$(lagging_partitions "$KAFKA_NODE_ID" <<<"$out" | head -n 5 | tr '\n' ' ')
    if [ -n "$lagging" ]; then
      if [ $((now - readiness_started)) -lt "$ISR_WAIT" ]; then
        write_readiness not-ready "catching up: not yet in the ISR of ${lagging}"
        return
      fi
      log "still not in the ISR of ${lagging}after ${ISR_WAIT}s: reporting ready anyway"
    fi
    readiness_caught_up=1
  fi
  write_readiness ready "live, log directory online, caught up with the partitions it replicates"
}

readiness_loop() {
  while :; do
    check_readiness
    sleep "$READINESS_INTERVAL"
  done
}
