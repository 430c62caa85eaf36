#!/usr/bin/env bash
# Checks what the scripts need and says how to get it: Rust, a JDK 17
# (java, javac, jar) and Python 3. With --nextest, installs cargo-nextest
# from crates.io when it is missing (once), Debian's acl (setfacl and
# getfacl, for tests/cli.rs), chromium (headless, for tests/collector_page.rs)
# and mariadb-server (a MySQL-protocol server tests/collector_mysql.rs starts
# as an unprivileged process of its own, never as a service).
set -euo pipefail
for tool in cargo java javac jar python3; do
  command -v "$tool" >/dev/null || {
    echo "'$tool' is required (Rust from rustup; a JDK 17: apt-get install openjdk-17-jdk-headless; python3 with venv)" >&2
    exit 1
  }
done
if [ "${1:-}" = --nextest ] && ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest (once)" >&2
  cargo install --locked cargo-nextest
fi
if [ "${1:-}" = --nextest ]; then
  source "$(dirname "$0")/toolchains.sh"
  ensure_packages acl chromium mariadb-server
fi
