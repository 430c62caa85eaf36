#!/usr/bin/env bash
# Builds the release native library and writes target/tispark-telemetry.jar:
# the Java classes (compiled for Java 8+ against Spark's jars) and
# native/<platform>/<library>. Libraries built for other platforms can be
# added by placing them under target/native/<platform>/ first (see README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
spark_home=$(bash scripts/provision-spark.sh)

cargo build --release --lib --quiet

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64)  platform=linux-x86_64 ;;
  Linux-aarch64) platform=linux-aarch64 ;;
  Darwin-arm64)  platform=macos-aarch64 ;;
  Darwin-x86_64) platform=macos-x86_64 ;;
  *) echo "package.sh: unsupported build platform $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac
if [ "$platform" != "${platform#linux}" ] && ls /lib/ld-musl-* >/dev/null 2>&1; then
  platform=linux-musl-${platform#linux-}
fi
lib=libtispark_telemetry.so
[ "${platform#macos}" != "$platform" ] && lib=libtispark_telemetry.dylib

stage=target/jar-stage
rm -rf "$stage"; mkdir -p "$stage/classes" "$stage/native/native"
# Libraries built for other platforms (scripts/build-native.sh), then this
# platform's, just built, over any older copy of it.
if [ -d target/native ]; then
  cp -r target/native/. "$stage/native/native/"
fi
mkdir -p "$stage/native/native/$platform"
cp "target/release/$lib" "$stage/native/native/$platform/$lib"

javac -nowarn -Xlint:-options --release 8 -d "$stage/classes" \
  -cp "$spark_home/jars/*" $(find java/src -name '*.java')
jar --create --file target/tispark-telemetry.jar -C "$stage/classes" .
# The native libraries are stored, not deflated: the sender thread copies its
# library out of the jar, and inflating it took longer than the copy itself.
jar --update --no-compress --file target/tispark-telemetry.jar -C "$stage/native" native
echo "wrote target/tispark-telemetry.jar ($(du -k target/tispark-telemetry.jar | cut -f1) KiB; native: $(cd "$stage/native/native" && ls | tr '\n' ' '))"
