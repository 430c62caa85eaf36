#!/usr/bin/env bash
# Builds the release native library for every Linux platform and writes
# target/tispark-telemetry.jar: the Java classes (compiled for Java 8+ against
# Spark's jars) and native/<platform>/<library>. This host's library is built
# by cargo as usual; every other Linux row of the platform table (Names.java)
# by scripts/build-native.sh, which installs its cross toolchain when missing
# (docs/platforms.md). TISPARK_TELEMETRY_PLATFORMS=host builds this host's
# library only (a quicker build while developing; the platform tests then
# fail). Libraries built elsewhere (macOS) are added by placing them under
# target/native/<platform>/ first.
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

case "${TISPARK_TELEMETRY_PLATFORMS:-linux}" in
  linux)
    for other in $(awk -F '\t' '$1 ~ /-linux-/ { print $1 }' "$PLATFORMS_TSV"); do
      if [ "$other" != "$triple" ]; then
        echo "building the library for $other" >&2
        PLATFORMS_TSV=$PLATFORMS_TSV bash scripts/build-native.sh "$other" >&2
      fi
    done
    ;;
  host) ;;
  *) echo "TISPARK_TELEMETRY_PLATFORMS is 'linux' (the default) or 'host'" >&2; exit 2 ;;
esac

stage=target/jar-stage
rm -rf "$stage"; mkdir -p "$stage/classes" "$stage/native/native"
# Libraries built for other platforms (scripts/build-native.sh), then this
# platform's, just built, over any older copy of it.
if [ -d target/native ]; then
  cp -r target/native/. "$stage/native/native/"
fi
mkdir -p "$stage/native/native/$platform"
cp "target/release/$lib" "$stage/native/native/$platform/$lib"
# Each library's SHA-256 and size, written into NativeLoader's LIBRARY_DIGESTS as
# the classes are compiled: the loader names its per-user cached copy by them
# and checks the copy against them as it writes it (docs/security.md, "the
# native library"), with no look-up of a resource through the class path.
digests=""
for so in "$stage"/native/native/*/*; do
  digests+="${so#"$stage"/native/native/} $(sha256sum "$so" | cut -d' ' -f1) $(stat -c %s "$so")\\\\n"  # \\n: sed writes \n
done
cp -r java/src "$stage/src"
loader="$stage/src/com/pingcap/tispark/telemetry/NativeLoader.java"
sed -i "s|^    static final String LIBRARY_DIGESTS = \"\";\$|    static final String LIBRARY_DIGESTS = \"$digests\";|" "$loader"
if ! grep -q '^    static final String LIBRARY_DIGESTS = "linux-' "$loader"; then
  echo "java/package.sh: the libraries' digests were not written into $loader" >&2
  exit 1
fi

javac -nowarn -Xlint:-options --release 8 -d "$stage/classes" \
  -cp "$spark_home/jars/*" $(find "$stage/src" -name '*.java')
jar --create --file target/tispark-telemetry.jar -C "$stage/classes" .
# The native libraries are deflated: the jar with every Linux library stays
# under 6 MB (stored, it was 9.9 MB, and a Spark application ships its jars to
# every executor). The sender thread inflates its library as it copies it out
# of the jar, about 15 ms more than a stored copy, on its own thread, never on
# the driver's (docs/platforms.md, "Sizes").
jar --update --file target/tispark-telemetry.jar -C "$stage/native" native
echo "wrote target/tispark-telemetry.jar ($(du -k target/tispark-telemetry.jar | cut -f1) KiB; native: $(cd "$stage/native/native" && ls | tr '\n' ' '))"
