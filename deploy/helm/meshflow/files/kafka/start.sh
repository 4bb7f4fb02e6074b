#!/bin/bash
# Entrypoint of the Kafka container. The image's own start-up formats the
# storage with --cluster-id alone, which a dynamic KRaft quorum refuses, so
# the chart starts Kafka itself: write server.properties, format an empty
# volume safely (kafka-lib.sh), keep joining the voters and checking
# readiness in the background, and run the broker in the foreground.
set -uo pipefail
# shellcheck source=kafka-lib.sh
source /opt/meshflow/kafka/kafka-lib.sh

write_server_properties || exit 1
format_storage || exit 1
join_loop &
readiness_loop &
# The container's KAFKA_* JVM settings are those of tools run with kubectl
# exec; the broker gets its own.
KAFKA_HEAP_OPTS="$BROKER_HEAP_OPTS" \
  KAFKA_JVM_PERFORMANCE_OPTS="$BROKER_JVM_PERFORMANCE_OPTS" \
  KAFKA_GC_LOG_OPTS="$BROKER_GC_LOG_OPTS" \
  KAFKA_LOG4J_OPTS="$BROKER_LOG4J_OPTS" \
  exec "$KAFKA_BIN/kafka-server-start.sh" "$KAFKA_CONFIG"
