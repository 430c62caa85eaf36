#!/usr/bin/env bash
# The main job: a real local Spark application with the telemetry plugin and
# telemetry on, reporting to a collector on loopback. Prints the log line the
# operator would grep for and what the collector received, and checks that
# they are the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/provision-spark.sh --env)"
bash java/package.sh
cargo build --quiet --example collector

work=$(mktemp -d)
trap 'kill "$collector_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
target/debug/examples/collector 127.0.0.1:0 > "$work/collector.out" &
collector_pid=$!
for _ in $(seq 50); do grep -q '^listening on' "$work/collector.out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/^listening on //p' "$work/collector.out")api/v1/tispark/report"
echo "collector: $url"

SPARK_LOCAL_IP=127.0.0.1 "$SPARK_HOME/bin/spark-submit" --master 'local[2]' \
  --jars target/tispark-telemetry.jar \
  --conf spark.plugins=com.pingcap.tispark.telemetry.TelemetryPlugin \
  --conf spark.tispark.telemetry.enable=true \
  --conf "spark.tispark.telemetry.url=$url" \
  --conf "spark.tispark.telemetry.state_dir=$work/state" \
  --conf spark.ui.enabled=false \
  --driver-java-options "-Dlog4j.configurationFile=examples/log4j2.properties -Dtispark.example.log=$work/spark.log" \
  examples/spark_job.py

echo
echo '$ grep "Telemetry report" spark.log | tail -n 1'
grep "Telemetry report" "$work/spark.log" | tail -n 1
grep "Telemetry sent\|Telemetry written\|Failed to report telemetry" "$work/spark.log" || true
sleep 0.3
echo
echo "collector received:"
tail -n +2 "$work/collector.out"
logged=$(grep "Telemetry report: " "$work/spark.log" | tail -n 1 | sed 's/.*Telemetry report: //')
received=$(tail -n +2 "$work/collector.out")
if [ "$logged" = "$received" ]; then
  echo; echo "OK: the collector received exactly the logged report"
else
  echo; echo "MISMATCH between the logged report and what the collector received" >&2; exit 1
fi
