#!/usr/bin/env bash
# What building for, and testing on, each Linux platform needs, installed when
# missing (from rustup and Debian's package registry) and quick when present.
# Sourced by scripts/build-native.sh and scripts/platform-tests.sh:
#   toolchain_for <rust target triple>   installs the target's standard
#       library and C cross compiler, and exports CC_<triple> and
#       CARGO_TARGET_<TRIPLE>_LINKER for cargo (ring compiles C)
#   ensure_packages <debian package>...  apt-get installs the missing ones
#       (arm64 packages after `dpkg --add-architecture arm64`)
# Also runnable: bash scripts/toolchains.sh <triple>...

# ensure_packages <package>...: installs those not installed, with one apt-get update.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || {
    echo "missing Debian packages ${missing[*]}, and this machine has no apt-get: install their equivalents" >&2
    return 1
  }
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "installing ${missing[*]} needs root (or sudo)" >&2; return 1; }
    sudo=(sudo)
  fi
  if printf '%s\n' "${missing[@]}" | grep -q ':arm64$' \
    && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "adding the arm64 architecture to dpkg (once)" >&2
    "${sudo[@]}" dpkg --add-architecture arm64
  fi
  echo "installing ${missing[*]} (once)" >&2
  "${sudo[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# ensure_rust_target <triple>: rustup's standard library for the target.
ensure_rust_target() {
  rustup target list --installed 2>/dev/null | grep -qx "$1" && return 0
  echo "adding the Rust target $1 (once)" >&2
  rustup target add "$1" >&2
}

# toolchain_for <triple>: the target's standard library and C compiler, and cargo's settings.
toolchain_for() {
  local triple=$1 cc=""
  case "$triple" in
    x86_64-unknown-linux-gnu)
      [ "$(rustc -vV | sed -n 's/^host: //p')" = "$triple" ] || {
        echo "building for $triple from another host is not set up here" >&2; return 1; }
      ;;
    aarch64-unknown-linux-gnu)
      ensure_packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross
      cc=aarch64-linux-gnu-gcc
      ;;
    x86_64-unknown-linux-musl)
      # musl-gcc: gcc with musl's headers, start files and libc.so (a shared
      # library for a musl JVM, linked against musl, not glibc).
      ensure_packages musl-tools musl-dev
      cc=musl-gcc
      ;;
    aarch64-unknown-linux-musl)
      # Debian's musl-dev:arm64 ships aarch64-linux-musl-gcc, a wrapper of the
      # aarch64 cross gcc with musl's specs.
      ensure_packages gcc-aarch64-linux-gnu musl-dev:arm64
      cc=aarch64-linux-musl-gcc
      ;;
    *)
      echo "no cross toolchain is set up for $triple here (see docs/platforms.md)" >&2
      return 1
      ;;
  esac
  ensure_rust_target "$triple"
  [ -n "$cc" ] || return 0
  local under=${triple//-/_}
  local upper
  upper=$(echo "$under" | tr '[:lower:]' '[:upper:]')
  export "CC_$under=$cc" "CARGO_TARGET_${upper}_LINKER=$cc"
  case "$triple" in
    *-musl)
      # musl targets link the C runtime statically by default, which rules out
      # a shared library: -crt-static links against the JVM's own musl. Rust's
      # std then asks for libgcc_s (the unwinder), which a musl host may lack
      # and which on this glibc machine is glibc's (it needs _dl_find_object,
      # which musl has not): the linker is a wrapper whose first search
      # directory has a libgcc_s.so that is the LLVM libunwind rustup ships
      # for the target, linked in statically. The library needs only musl.
      local unwind dir
      unwind="$(rustc --print sysroot)/lib/rustlib/$triple/lib/self-contained/libunwind.a"
      [ -f "$unwind" ] || { echo "rustup's $triple has no $unwind" >&2; return 1; }
      dir="$PWD/target/toolchains/$triple"
      mkdir -p "$dir/lib"
      echo "INPUT($unwind)" >"$dir/lib/libgcc_s.so"
      printf '#!/bin/sh\nexec %s -L%s "$@"\n' "$cc" "$dir/lib" >"$dir/cc"
      chmod +x "$dir/cc"
      export "CARGO_TARGET_${upper}_LINKER=$dir/cc"
      local var="CARGO_TARGET_${upper}_RUSTFLAGS"
      export "$var=${!var:-} -C target-feature=-crt-static"
      ;;
  esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  [ $# -gt 0 ] || { echo "usage: bash scripts/toolchains.sh <rust target triple>..." >&2; exit 2; }
  for t in "$@"; do toolchain_for "$t"; done
fi
