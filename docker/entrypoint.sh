#!/bin/sh
# Formats the data directory on first start (as the Apache and Bitnami images do), then runs the broker.
# The cluster id comes from KAFKA_CLUSTER_ID or CLUSTER_ID (the two images' names), else a new random one.
set -eu
CONFIG=${KRAFTWERK_CONFIG:-/etc/kraftwerk/server.properties}
CLUSTER_ID=${KAFKA_CLUSTER_ID:-${CLUSTER_ID:-$(kraftwerk random-uuid)}}
kraftwerk format --config "$CONFIG" --cluster-id "$CLUSTER_ID" --ignore-formatted
exec kraftwerk --config "$CONFIG" "$@"
