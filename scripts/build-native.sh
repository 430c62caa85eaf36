#!/usr/bin/env bash
# Builds the release library for one platform and puts it where java/package.sh
# takes it into the jar: target/native/<platform>/<library>.
#   bash scripts/build-native.sh <rust target triple>
# Installs what the target needs when missing (scripts/toolchains.sh: its
# standard library from rustup, a C cross compiler and linker from Debian's
# packages; ring compiles C); see docs/platforms.md for each one.
set -euo pipefail
cd "$(dirname "$0")/.."
triple=${1:?usage: bash scripts/build-native.sh <rust target triple>}
source scripts/platforms.sh
source scripts/toolchains.sh
# The table from build.rs (Names.java), through this machine's own build.
PLATFORMS_TSV=${PLATFORMS_TSV:-"$(out_dir_of --release --quiet)/platforms.tsv"}
mapping=$(platform_of "$triple")  # fails, saying why, for a target with no platform
read -r platform lib <<<"$mapping"
# The standard library, the C compiler and linker, and for musl a shared
# library against the JVM's own musl (-crt-static): see scripts/toolchains.sh.
toolchain_for "$triple"
cargo build --release --lib --no-default-features --target "$triple"
mkdir -p "target/native/$platform"
cp "target/$triple/release/$lib" "target/native/$platform/$lib"
echo "target/native/$platform/$lib"
