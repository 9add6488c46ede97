//! Nothing here: the tests in `tests/` drive Apache RocketMQ's official
//! Rust client against real brokers (see `scripts/compat.sh`).
