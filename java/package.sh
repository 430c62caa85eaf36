#!/usr/bin/env bash
# Builds the release native library and writes target/tispark-telemetry.jar:
# the Java classes (compiled for Java 8+ against Spark's jars) and
# native/<platform>/<library>. Libraries built for other platforms can be
# added by placing them under target/native/<platform>/ first (see README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
spark_home=$(bash scripts/provision-spark.sh)

source scripts/platforms.sh
# The platform table comes from this very build (build.rs, from Names.java).
# --no-default-features: the library alone, without the command-line tool's
# crates (feature `cli`), which must not reach the cdylib.
PLATFORMS_TSV="$(out_dir_of --release --no-default-features --quiet)/platforms.tsv"

# The platform is the one of the target just built (rustc's host triple), not
# guessed from the machine: a glibc host with Debian's musl package installed
# still builds a glibc library.
triple=$(host_triple)
mapping=$(platform_of "$triple")  # fails, saying why, for a target with no platform
read -r platform lib <<<"$mapping"

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
