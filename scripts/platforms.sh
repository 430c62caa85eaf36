#!/usr/bin/env bash
# The one mapping from a Rust target triple to the jar's platform directory
# and library name. It is defined in java/src/com/pingcap/tispark/telemetry/Names.java
# (PLATFORMS, which NativeLoader uses at run time); build.rs generates
# $OUT_DIR/platforms.tsv from it, and this script reads that table.
# Sourced by java/package.sh and scripts/build-native.sh; also runnable:
#   bash scripts/platforms.sh <triple>   prints "<platform> <library>"
#   bash scripts/platforms.sh            the same for the host triple of `rustc -vV`
# An unknown triple is an error (exit 1). PLATFORMS_TSV names the table when
# the caller has it (package.sh, from its own build); otherwise a debug build
# of the library says where build.rs put it.

# out_dir_of <cargo build arguments…>: builds the library and prints build.rs's OUT_DIR.
out_dir_of() {
  cargo build --lib --message-format=json-render-diagnostics "$@" | python3 -c '
import json, sys
dirs = [m["out_dir"] for m in map(json.loads, sys.stdin)
        if m.get("reason") == "build-script-executed" and "tispark-telemetry" in m["package_id"]]
if not dirs:
    sys.exit("cargo did not report the out_dir of tispark-telemetry'"'"'s build script")
print(dirs[-1])'
}

# platform_of <triple>: prints "<platform> <library>", or fails.
platform_of() {
  local table=${PLATFORMS_TSV:-}
  if [ -z "$table" ]; then
    table="$(out_dir_of --quiet)/platforms.tsv" || return 1
  fi
  local row
  row=$(awk -F '\t' -v t="$1" '$1 == t { print $2 " " $3 }' "$table")
  if [ -z "$row" ]; then
    echo "no platform directory for the Rust target '$1' (see PLATFORMS in java/src/com/pingcap/tispark/telemetry/Names.java)" >&2
    return 1
  fi
  echo "$row"
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
  cd "$(dirname "$0")/.."
  if [ $# -gt 1 ]; then
    echo "usage: bash scripts/platforms.sh [<rust target triple>]" >&2
    exit 2
  fi
  platform_of "${1:-$(host_triple)}"
fi
