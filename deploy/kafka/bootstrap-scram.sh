#!/usr/bin/env bash
# Start the Kafka broker of docker-compose.yml with its SCRAM users.
#
# KRaft keeps SCRAM credentials in the cluster metadata, and the first ones (the admin's above all,
# which the broker itself uses between its listeners) can only be written when the storage is
# formatted. So on the first start this formats the storage with every user named in
# ARREARS_KAFKA_SCRAM_USERS ("user=VARIABLE ...": the variable holds that user's password), then
# hands over to the image's own start script, which finds the storage formatted and starts Kafka.
# Later starts skip the formatting. Passwords: letters and digits (deploy/make-env.sh makes them).
# To add a user or change a password on a running cluster, as admin:
#   kafka-configs.sh --bootstrap-server kafka:9092 --command-config admin.properties --alter \
#     --add-config 'SCRAM-SHA-512=[password=...]' --entity-type users --entity-name USER
set -euo pipefail

if [[ ! -f "${KAFKA_LOG_DIRS}/meta.properties" ]]; then
  cat > /tmp/format.properties <<PROPERTIES
node.id=${KAFKA_NODE_ID}
process.roles=${KAFKA_PROCESS_ROLES}
controller.quorum.voters=${KAFKA_CONTROLLER_QUORUM_VOTERS}
controller.listener.names=${KAFKA_CONTROLLER_LISTENER_NAMES}
listeners=${KAFKA_LISTENERS}
listener.security.protocol.map=${KAFKA_LISTENER_SECURITY_PROTOCOL_MAP}
inter.broker.listener.name=${KAFKA_INTER_BROKER_LISTENER_NAME}
log.dirs=${KAFKA_LOG_DIRS}
PROPERTIES
  scram=()
  for entry in ${ARREARS_KAFKA_SCRAM_USERS:?list the SCRAM users as user=VARIABLE}; do
    user="${entry%%=*}"
    variable="${entry#*=}"
    password="${!variable:-}"
    if [[ -z "$password" || ! "$password" =~ ^[A-Za-z0-9]+$ ]]; then
      echo "bootstrap-scram: $variable (the password of $user) must be set to letters and digits only" >&2
      exit 1
    fi
    scram+=(--add-scram "SCRAM-SHA-512=[name=${user},password=${password}]")
  done
  echo "bootstrap-scram: formatting ${KAFKA_LOG_DIRS} with ${#scram[@]} SCRAM user(s)"
  /opt/kafka/bin/kafka-storage.sh format --cluster-id "${CLUSTER_ID}" --config /tmp/format.properties "${scram[@]}"
  rm -f /tmp/format.properties
fi

exec /etc/kafka/docker/run
