#!/usr/bin/env bash
# The overhead benchmark (README, "Performance"): what telemetry costs a Spark
# user, each figure a median with its spread, from one run. From a fresh clone:
# provisions the pinned pyspark (or uses $SPARK_HOME), builds the release
# library and the jar (every Linux platform: the first time, the cross builds
# add minutes), compiles the Java harness against them, then runs
# benches/overhead.rs, which also runs a JVM-only sender beside ours and lists
# each library's size from the jar (docs/performance.md), then benches/collector.rs
# (the collector's throughput, reports a second). Takes about 5
# minutes on 2 cores. Figures, not tests: nothing here fails on a slow number.
#   TT_BENCH_JVMS, TT_BENCH_CALLS, TT_BENCH_SPARK_ROUNDS, TT_BENCH_BUILDS
#   size the run (see benches/overhead.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh
eval "$(bash scripts/provision-spark.sh --env)"
bash java/package.sh >&2

# The Java harness: a driver that times NativeTelemetry.report(sc.getConf()).
classes=target/report-cost-classes
rm -rf "$classes"; mkdir -p "$classes"
javac -nowarn -Xlint:-options -d "$classes" \
  -cp "target/tispark-telemetry.jar:$SPARK_HOME/jars/*" benches/jvm/ReportCost.java
jar --create --file target/report-cost.jar -C "$classes" .

cargo bench --quiet --bench overhead
# The collector (tispark-telemetry collect): reports stored a second.
cargo bench --quiet --bench collector
