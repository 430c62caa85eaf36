#!/usr/bin/env bash
# Prints a SPARK_HOME: $SPARK_HOME when set, otherwise a pinned pyspark
# (whose jars are a full Spark) installed once into a cache venv.
# With --env, prints `export SPARK_HOME=… PYSPARK_PYTHON=…` for eval instead.
#   PYSPARK_VERSION   the pyspark to provision (default: the pinned one below)
#   TISPARK_TELEMETRY_CACHE  where venvs live (default ~/.cache/tispark-telemetry)
set -euo pipefail
PINNED_PYSPARK=3.5.7
if [ -n "${SPARK_HOME:-}" ] && [ -z "${PYSPARK_VERSION:-}" ]; then
  [ -d "$SPARK_HOME/jars" ] || { echo "SPARK_HOME=$SPARK_HOME has no jars/ directory" >&2; exit 1; }
  if [ "${1:-}" = --env ]; then
    echo "export SPARK_HOME='$SPARK_HOME' PYSPARK_PYTHON='${PYSPARK_PYTHON:-python3}'"
  else
    echo "$SPARK_HOME"
  fi
  exit 0
fi
version=${PYSPARK_VERSION:-$PINNED_PYSPARK}
cache=${TISPARK_TELEMETRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tispark-telemetry}
venv=$cache/pyspark-$version
if [ ! -f "$venv/.complete" ]; then
  echo "provisioning pyspark $version into $venv (once)" >&2
  rm -rf "$venv"; mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "pyspark==$version" >&2
  touch "$venv/.complete"
fi
home=$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
[ -d "$home/jars" ] || { echo "pyspark $version at $home has no jars/" >&2; exit 1; }
if [ "${1:-}" = --env ]; then
  echo "export SPARK_HOME='$home' PYSPARK_PYTHON='$venv/bin/python'"
else
  echo "$home"
fi
