#!/usr/bin/env bash
# Makes the cluster's secrets once, before the first `kubectl apply -k
# deploy/k8s`: a CA, one server certificate for every name the servers are
# reached by inside the cluster (and localhost, for the probes), and the
# administrator's secret key, in deploy/k8s/secrets/ (git-ignored), which
# the kustomization turns into the Secret mq-secrets. A second run keeps
# them. The administrator's key: deploy/k8s/secrets/admin.secret.
#
#   deploy/k8s/secrets.sh [MQSECRETS]     # default: the mqsecrets on PATH, else cargo run
set -euo pipefail
cd "$(dirname "$0")"
names=""
for set in mq-namesrv-headless mq-controller mq-broker; do
    names+="*.$set.mq.svc.cluster.local,"
done
names+="mq-namesrv,mq-namesrv.mq,mq-namesrv.mq.svc,mq-namesrv.mq.svc.cluster.local"
if [[ $# -gt 0 ]]; then
    "$1" init secrets --names "$names"
elif command -v mqsecrets >/dev/null 2>&1; then
    mqsecrets init secrets --names "$names"
else
    (cd ../.. && cargo run -q -p mq-tools --bin mqsecrets -- init deploy/k8s/secrets --names "$names")
fi
