#!/bin/sh
# One-shot (temporalio/admin-tools): the namespace vmflow uses and its four custom
# search attributes (vmflow/names.py), all Keyword. Safe to run again: an existing
# namespace is kept, and creating an attribute that exists with the same type is a
# no-op. Each step is retried: a new namespace takes a few seconds to be visible.
set -eu
NAMESPACE=${NAMESPACE:-default}
RETENTION=${RETENTION:-30d}
ADDRESS=${TEMPORAL_ADDRESS:-temporal:7233}
# by IPv4 address, as upstream's create-namespace.sh does: the service name alone
# can resolve to an address the server does not listen on
host=${ADDRESS%:*}
ip=$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 { print $1 }') || true
[ -z "$ip" ] || ADDRESS="$ip:${ADDRESS##*:}"

retry() {  # retry <what> <command...>
  what=$1
  shift
  i=0
  until "$@"; do
    i=$((i + 1))
    if [ "$i" -ge 30 ]; then
      echo "gave up: $what" >&2
      exit 1
    fi
    echo "retrying: $what ($i)"
    sleep 2
  done
}

t() { temporal --address "$ADDRESS" "$@"; }

echo "Temporal at $ADDRESS, namespace $NAMESPACE"
retry "Temporal health" t operator cluster health
if ! t operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  retry "namespace $NAMESPACE" \
    t operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
fi
for name in VmflowResource VmflowProject VmflowOperation VmflowHost; do
  retry "search attribute $name" t operator search-attribute create \
    --namespace "$NAMESPACE" --name "$name" --type Keyword
done
t operator search-attribute list --namespace "$NAMESPACE"
