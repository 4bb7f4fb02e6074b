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
exec "$KAFKA_BIN/kafka-server-start.sh" "$KAFKA_CONFIG"
