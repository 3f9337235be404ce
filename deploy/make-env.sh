#!/usr/bin/env bash
# Write a .env beside docker-compose.yml with a fresh random value for every secret the compose
# file requires: webhook secrets, query API tokens, the Kafka users' passwords. Refuses to
# overwrite an existing .env (rotating means editing it: see README, "Running on Apache Kafka").
#
#   deploy/make-env.sh            # writes ./.env
#   deploy/make-env.sh other.env  # or another file
set -euo pipefail

target="${1:-.env}"
if [[ -e "$target" ]]; then
  echo "make-env: $target exists; not overwriting it" >&2
  exit 1
fi
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
umask 077
{
  echo "# Secrets for docker-compose.yml, made by deploy/make-env.sh. Keep this file private."
  for name in \
      AG1_WEBHOOK_SECRET AG2_WEBHOOK_SECRET \
      ARREARS_OPS_TOKEN ARREARS_COMPLIANCE_TOKEN \
      ARREARS_KAFKA_ADMIN_PASSWORD ARREARS_KAFKA_WORKER_PASSWORD \
      ARREARS_KAFKA_ADAPTER_AG1_PASSWORD ARREARS_KAFKA_ADAPTER_AG2_PASSWORD ARREARS_KAFKA_ADAPTER_AG3_PASSWORD \
      ARREARS_KAFKA_TOOLING_PASSWORD ARREARS_KAFKA_LOANSYSTEM_PASSWORD; do
    echo "${name}=$(random)"
  done
} > "$target"
echo "make-env: wrote $target"
