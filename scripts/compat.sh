#!/usr/bin/env bash
# Apache RocketMQ's official Rust client (crate rocketmq 5.0.0, unchanged)
# against the broker binaries of this workspace: compat/rocketmq-client,
# a crate with its own lock file and target directory, so that the
# client's dependencies stay out of the product's tree.
#
#   scripts/compat.sh            # builds the binaries if needed, runs the tests
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

cargo fmt --check --manifest-path compat/rocketmq-client/Cargo.toml
cargo build --workspace --bins --locked --features mq-broker/failpoints
MQ_BIN_DIR="$ROOT/target/debug" CARGO_TARGET_DIR="$ROOT/target/compat-rocketmq" \
    cargo test --locked --manifest-path compat/rocketmq-client/Cargo.toml -- --test-threads 2
