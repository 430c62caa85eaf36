#!/usr/bin/env bash
# One jar for every Spark it claims: builds target/tispark-telemetry.jar once
# (classes compiled with --release 8 against the pinned pyspark's jars), then
# runs the real-Spark end-to-end tests (tests/spark.rs) with that same jar
# against each pyspark below, each provisioned once into its own cached venv.
# Java 17. Prints one line per Spark and fails if any failed.
#   COMPAT_PYSPARK_VERSIONS  the pysparks to run (default below)
set -euo pipefail
cd "$(dirname "$0")/.."
# Spark 3.4 and 3.5 ship Scala 2.12; Spark 4 ships Scala 2.13.
versions=${COMPAT_PYSPARK_VERSIONS:-"3.4.4 3.5.7 4.0.5 4.3.0"}
bash scripts/prerequisites.sh --nextest
java_version=$(java -version 2>&1 | head -n 1)

# The one jar, built against the pinned Spark whatever SPARK_HOME says.
(unset SPARK_HOME PYSPARK_VERSION; bash java/package.sh)
mkdir -p target/compat
cp target/tispark-telemetry.jar target/compat/tispark-telemetry.jar
jar_sum=$(sha256sum target/compat/tispark-telemetry.jar | cut -c1-16)
cargo nextest run --test spark --no-run >&2

declare -a results
failed=0
for v in $versions; do
  echo "=== pyspark $v ===" >&2
  env_line=$(PYSPARK_VERSION=$v bash scripts/provision-spark.sh --env)
  scala=$(eval "$env_line"; ls "$SPARK_HOME/jars" | sed -n 's/^scala-library-\(.*\)\.jar$/\1/p')
  if (eval "$env_line"; TISPARK_TELEMETRY_JAR=$PWD/target/compat/tispark-telemetry.jar \
        cargo nextest run --test spark --no-fail-fast); then
    results+=("PASS  pyspark $v (Scala $scala)")
  else
    results+=("FAIL  pyspark $v (Scala $scala)")
    failed=1
  fi
done

echo
echo "compat: one jar (sha256 $jar_sum…), $java_version"
printf '%s\n' "${results[@]}"
exit $failed
