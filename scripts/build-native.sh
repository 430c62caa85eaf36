#!/usr/bin/env bash
# Builds the release library for one platform and puts it where java/package.sh
# takes it into the jar: target/native/<platform>/<library>.
#   bash scripts/build-native.sh <rust target triple>
# The triple's standard library (`rustup target add <triple>`) and a C compiler
# and linker for it must be installed (ring compiles C); see the README,
# "Platforms", for each one.
set -euo pipefail
cd "$(dirname "$0")/.."
triple=${1:?usage: bash scripts/build-native.sh <rust target triple>}
source scripts/platforms.sh
# The table from build.rs (Names.java), through this machine's own build.
PLATFORMS_TSV="$(out_dir_of --release --quiet)/platforms.tsv"
mapping=$(platform_of "$triple")  # fails, saying why, for a target with no platform
read -r platform lib <<<"$mapping"
case "$triple" in
  # musl targets link the C runtime statically by default, which rules out a
  # shared library; a musl JVM (Alpine) has the C runtime to link against.
  *-musl) export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=-crt-static" ;;
esac
cargo build --release --lib --no-default-features --target "$triple"
mkdir -p "target/native/$platform"
cp "target/$triple/release/$lib" "target/native/$platform/$lib"
echo "target/native/$platform/$lib"
