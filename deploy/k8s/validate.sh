#!/usr/bin/env bash
# Checks the Kubernetes manifests without a cluster:
#  1. every resource against the Kubernetes API schema, strictly (unknown
#     fields are errors), with kubernetes-validate from PyPI;
#  2. the configuration files in the ConfigMaps with the real binaries:
#     each must start (stopped after 3 s) rather than exit on a bad key.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
if ! command -v kubernetes-validate >/dev/null 2>&1; then
    echo "validate: installing kubernetes-validate (pip)"
    python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    PATH="$PATH:$(python3 -m site --user-base)/bin"
fi
kubernetes-validate --strict --quiet namespace.yaml nameserver.yaml controller.yaml broker.yaml

(cd "$ROOT" && cargo build -q --bin broker --bin nameserver --bin controller --bin mqsecrets)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The secrets the configuration files name live under /etc/mq/secrets in a
# pod; here they are made in $WORK and the paths overridden.
"$ROOT/target/debug/mqsecrets" init "$WORK/secrets" >/dev/null
for server in NAMESRV BROKER CONTROLLER; do
    export "MQ_${server}_AUTH_SECRET_FILE=$WORK/secrets/admin.secret"
    export "MQ_${server}_TLS_CERT_FILE=$WORK/secrets/server.pem"
    export "MQ_${server}_TLS_KEY_FILE=$WORK/secrets/server.key"
    export "MQ_${server}_TLS_CA_FILE=$WORK/secrets/ca.pem"
done
# Writes the file `key` of the ConfigMap in `manifest` to $WORK/key.
extract() {
    python3 - "$1" "$2" "$WORK/$2" <<'PY'
import sys, yaml
manifest, key, out = sys.argv[1:]
for doc in yaml.safe_load_all(open(manifest)):
    if doc and doc.get("kind") == "ConfigMap" and key in doc.get("data", {}):
        open(out, "w").write(doc["data"][key])
        break
else:
    sys.exit(f"{manifest}: no ConfigMap with {key}")
PY
}
# Starts `binary` with the file; it must still run after 3 s.
starts() {
    local status=0
    timeout 3 "$@" >"$WORK/out" 2>&1 || status=$?
    if [[ $status != 124 ]]; then
        echo "validate: $* exited with $status:" >&2
        cat "$WORK/out" >&2
        exit 1
    fi
}
extract nameserver.yaml nameserver.toml
extract broker.yaml broker.toml
extract controller.yaml controller.toml
# Only what differs outside a pod is overridden (environment beats file).
MQ_NAMESRV_LISTEN=127.0.0.1:0 MQ_NAMESRV_METRICS_LISTEN=127.0.0.1:0 starts "$ROOT/target/debug/nameserver" --config "$WORK/nameserver.toml"
MQ_CONTROLLER_LISTEN=127.0.0.1:0 MQ_CONTROLLER_METRICS_LISTEN=127.0.0.1:0 MQ_CONTROLLER_DATA_DIR="$WORK/controller" \
    starts "$ROOT/target/debug/controller" --config "$WORK/controller.toml" --id 1
# The brokers wait for the controllers (not there: they keep trying).
MQ_BROKER_LISTEN=127.0.0.1:0 MQ_BROKER_METRICS_LISTEN=127.0.0.1:0 MQ_BROKER_STORE_DIR="$WORK/store" MQ_BROKER_BROKER_NAME=mq-broker-0 \
    starts "$ROOT/target/debug/broker" --config "$WORK/broker.toml" --broker-id 1
# The second member's StatefulSet command, as its pod mq-broker-replica-0
# runs it (the controllers are not there: it starts and keeps trying).
command=$(python3 - "$PWD/broker.yaml" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "StatefulSet" and doc["metadata"]["name"] == "mq-broker-replica":
        print(doc["spec"]["template"]["spec"]["containers"][0]["command"][2])
PY
)
[[ -n $command ]] || { echo "validate: no replica StatefulSet command" >&2; exit 1; }
command=${command//\/etc\/mq\/broker.toml/$WORK\/broker.toml}
PATH="$ROOT/target/debug:$PATH" POD_NAME=mq-broker-replica-0 MQ_BROKER_LISTEN=127.0.0.1:0 MQ_BROKER_METRICS_LISTEN=127.0.0.1:0 \
    MQ_BROKER_STORE_DIR="$WORK/replica-store" starts sh -c "$command"
grep -q 'cannot register with the controller' "$WORK/out" || { echo "validate: the second member's command did not ask the controllers:" >&2; cat "$WORK/out" >&2; exit 1; }
for manifest in nameserver.yaml controller.yaml broker.yaml; do
    grep -q 'auth_enabled = true' "$manifest" && grep -q 'tls_cert_file' "$manifest" ||
        { echo "validate: $manifest does not run with authentication and TLS" >&2; exit 1; }
done
echo "validate: manifests and their configuration files are valid (authentication and TLS on)"
