#!/usr/bin/env bash
# The one mapping from a Rust target triple to the jar's platform directory
# and library name (NativeLoader.platform() picks the directory at run time).
# Sourced by java/package.sh and scripts/build-native.sh; also runnable:
#   bash scripts/platforms.sh <triple>   prints "<platform> <library>"
#   bash scripts/platforms.sh            the same for the host triple of `rustc -vV`
# An unknown triple is an error (exit 1).

# platform_of <triple>: prints "<platform> <library>", or fails.
platform_of() {
  case "$1" in
    x86_64-unknown-linux-gnu)   echo "linux-x86_64 libtispark_telemetry.so" ;;
    aarch64-unknown-linux-gnu)  echo "linux-aarch64 libtispark_telemetry.so" ;;
    x86_64-unknown-linux-musl)  echo "linux-musl-x86_64 libtispark_telemetry.so" ;;
    aarch64-unknown-linux-musl) echo "linux-musl-aarch64 libtispark_telemetry.so" ;;
    x86_64-apple-darwin)        echo "macos-x86_64 libtispark_telemetry.dylib" ;;
    aarch64-apple-darwin)       echo "macos-aarch64 libtispark_telemetry.dylib" ;;
    *) echo "no platform directory for the Rust target '$1' (see scripts/platforms.sh and NativeLoader.platform())" >&2
       return 1 ;;
  esac
}

# host_triple: the target rustc builds for by default (what `cargo build` without --target makes).
host_triple() {
  local host
  host=$(rustc -vV | sed -n 's/^host: //p')
  [ -n "$host" ] || { echo "cannot read the host triple from 'rustc -vV'" >&2; return 1; }
  echo "$host"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  if [ $# -gt 1 ]; then
    echo "usage: bash scripts/platforms.sh [<rust target triple>]" >&2
    exit 2
  fi
  platform_of "${1:-$(host_triple)}"
fi
