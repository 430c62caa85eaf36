#!/usr/bin/env bash
# The overhead benchmark (README, "Performance"): what telemetry costs a Spark
# user, each figure a median with its spread, from one run. From a fresh clone:
# provisions the pinned pyspark (or uses $SPARK_HOME), builds the release
# library and the jar (every Linux platform: the first time, the cross builds
# add minutes), compiles the Java harness against them, then runs
# benches/overhead.rs, which also runs a JVM-only sender beside ours and lists
# each library's size from the jar (docs/performance.md), then benches/collector.rs
# (the collector's throughput, reports a second, into SQLite and into a
# MariaDB it starts for the run). Takes about 5
# minutes on 2 cores. Figures, not tests: nothing here fails on a slow number.
#   TT_BENCH_JVMS, TT_BENCH_CALLS, TT_BENCH_SPARK_ROUNDS, TT_BENCH_BUILDS
#   size the run (see benches/overhead.rs).
#   --baseline REV  also measures the jar of an earlier commit (its own
#   package.sh, in a temporary worktree), its driver JVMs run between ours,
#   and prints the ratio of each driver-thread figure: "no worse" shown in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=
if [ "${1:-}" = --baseline ]; then
  baseline=${2:?usage: bench.sh [--baseline REV]}
fi
bash scripts/prerequisites.sh
# MariaDB, for the collector's throughput into a MySQL-protocol store.
(source scripts/toolchains.sh && ensure_packages mariadb-server)
eval "$(bash scripts/provision-spark.sh --env)"
bash java/package.sh >&2

harness() { # harness JAR OUT: the Java harness compiled against JAR
  local classes=target/report-cost-classes
  rm -rf "$classes"; mkdir -p "$classes"
  javac -nowarn -Xlint:-options -d "$classes" \
    -cp "$1:$SPARK_HOME/jars/*" benches/jvm/ReportCost.java
  jar --create --file "$2" -C "$classes" .
}
if [ -n "$baseline" ]; then
  rev=$(git rev-parse --short "$baseline")
  tree=$(mktemp -d)
  trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
  git worktree add --detach "$tree" "$rev" >/dev/null
  # The earlier commit's own packaging, this host's library only.
  (cd "$tree" && TISPARK_TELEMETRY_PLATFORMS=host \
    bash java/package.sh >&2)
  mkdir -p target/baseline
  cp "$tree/target/tispark-telemetry.jar" target/baseline/tispark-telemetry.jar
  harness target/baseline/tispark-telemetry.jar target/baseline/report-cost.jar
  export TT_BENCH_BASELINE=$rev
fi

# The Java harness: a driver that times NativeTelemetry.report(sc.getConf()).
harness target/tispark-telemetry.jar target/report-cost.jar

cargo bench --quiet --bench overhead
# The collector (tispark-telemetry collect): reports stored a second.
cargo bench --quiet --bench collector
