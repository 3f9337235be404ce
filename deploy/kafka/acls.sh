#!/usr/bin/env bash
# Apply deploy/kafka/acls.txt to the broker of docker-compose.yml, as admin (idempotent).
# Run once by the compose service `acls` after the broker is healthy; run it again after editing
# acls.txt. The broker refuses everything no ACL allows (allow.everyone.if.no.acl.found=false).
set -euo pipefail

BOOTSTRAP="${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}"
ACLS="${ARREARS_ACLS:-$(dirname "$0")/acls.txt}"
CONFIG=$(mktemp)
trap 'rm -f "$CONFIG"' EXIT
cat > "$CONFIG" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${ARREARS_KAFKA_ADMIN_PASSWORD:?the admin password}";
PROPERTIES

count=0
while read -r principal resource pattern name operations rest; do
  [[ -z "$principal" || "$principal" == \#* ]] && continue
  args=(--allow-principal "User:${principal}" --resource-pattern-type "$pattern")
  case "$resource" in
    topic) args+=(--topic "$name") ;;
    group) args+=(--group "$name") ;;
    *) echo "acls.txt: unknown resource type $resource" >&2; exit 1 ;;
  esac
  IFS=, read -ra ops <<< "$operations"
  for op in "${ops[@]}"; do args+=(--operation "$op"); done
  /opt/kafka/bin/kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$CONFIG" --add "${args[@]}" >/dev/null
  count=$((count + 1))
done < "$ACLS"
echo "acls: $count rule(s) applied from $ACLS"
