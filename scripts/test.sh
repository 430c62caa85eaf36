#!/usr/bin/env bash
# Runs every test from a fresh machine: provisions Spark (the pinned pyspark),
# builds target/tispark-telemetry.jar, then the Rust unit tests, the JVM tests
# (JNI invocation, -Xcheck:jni) and the real Spark applications, with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in cargo java javac jar python3; do
  command -v "$tool" >/dev/null || { echo "test.sh: '$tool' is required (a JDK 17: apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }
done
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest (once)" >&2
  cargo install --locked cargo-nextest
fi
eval "$(bash scripts/provision-spark.sh --env)"
bash java/package.sh
cargo fmt --check
cargo nextest run --no-fail-fast "$@"
