#!/usr/bin/env bash
# Builds the `mq` image: release binaries from cargo on this host, on the
# base image that base-image.sh provides (see deploy/README.md).
#
#   deploy/docker/build-images.sh [TAG]     # default tag: latest
set -euo pipefail
cd "$(dirname "$0")"
TAG=${1:-latest}
ROOT=$(cd ../.. && pwd)
BASE=$(./base-image.sh)
(cd "$ROOT" && cargo build --release --locked -q -p mq-broker -p mq-nameserver -p mq-controller -p mq-proxy -p mq-tools)
rm -rf bin && mkdir bin
for binary in nameserver broker controller proxy mqadmin mqbench mqhealth mqsecrets; do
    cp "$ROOT/target/release/$binary" bin/
done
docker build -q --build-arg "BASE=$BASE" -t "mq:$TAG" . >/dev/null
echo "built mq:$TAG on $BASE"
