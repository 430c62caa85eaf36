#!/usr/bin/env bash
# Runs every test from a fresh machine: provisions Spark (the pinned pyspark),
# builds target/tispark-telemetry.jar, then the Rust unit tests, the JVM tests
# (JNI invocation, -Xcheck:jni) and the real Spark applications, with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh --nextest
eval "$(bash scripts/provision-spark.sh --env)"
bash java/package.sh
cargo fmt --check
cargo nextest run --no-fail-fast "$@"
