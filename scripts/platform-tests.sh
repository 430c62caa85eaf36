#!/usr/bin/env bash
# The cross-platform proof (issue 11, which called it scripts/platforms.sh;
# that name was already the platform mapping's): tests/platforms.rs runs the
# jar's aarch64 library in an arm64 JVM under qemu-user-static with
# -Xcheck:jni, delivering one report to a loopback collector, and loads both
# musl libraries with musl's own loader, resolving their JNI entry points.
#   bash scripts/platform-tests.sh             installs what the tests need,
#                                              builds the jar, runs them
#   bash scripts/platform-tests.sh --prepare   only installs (scripts/test.sh
#                                              does this, then runs the whole
#                                              suite, tests/platforms.rs included)
# Installs only what is missing: quick on a machine that has it all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchains.sh
# qemu-aarch64-static and the arm64 JVM (glibc); musl's loaders for both
# machines; the compilers of the musl probe; unzip and readelf to inspect the jar.
ensure_packages qemu-user-static openjdk-17-jre-headless:arm64 \
  musl musl-tools musl-dev musl:arm64 musl-dev:arm64 gcc-aarch64-linux-gnu \
  unzip binutils
if [ "${1:-}" = --prepare ]; then
  exit 0
fi
bash scripts/prerequisites.sh --nextest
eval "$(bash scripts/provision-spark.sh --env)"
bash java/package.sh
cargo nextest run --no-fail-fast --test platforms "$@"
