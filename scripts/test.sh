#!/usr/bin/env bash
# Runs every test from a fresh machine: provisions Spark (the pinned pyspark)
# and what the platform tests need (scripts/platform-tests.sh --prepare: qemu,
# an arm64 JVM, musl), builds target/tispark-telemetry.jar with every Linux
# platform, then the Rust unit tests, the JVM tests (JNI invocation,
# -Xcheck:jni), the platform tests and the real Spark applications, with nextest.
# The collector's tests run against both stores: SQLite, and a MariaDB
# (prerequisites.sh installs mariadb-server) that tests/collector_mysql.rs
# starts itself as the mysql user on loopback and stops at its end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh --nextest
bash scripts/platform-tests.sh --prepare
eval "$(bash scripts/provision-spark.sh --env)"
eval "$(bash scripts/jdk25.sh --env)"  # TT_JDK25_JAVA, for tests/jdk25.rs
bash java/package.sh
cargo fmt --check
cargo nextest run --no-fail-fast "$@"
