#!/usr/bin/env bash
# The main job: a real local Spark application with the telemetry plugin and
# telemetry on, reporting to the real collector (`tispark-telemetry collect`)
# on loopback. Prints the log line the operator would grep for and what the
# collector stored, checks that they are the same bytes, and ends with the
# collector's `fleet`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/provision-spark.sh --env)"
source scripts/example-job.sh
bash java/package.sh
cargo build --quiet --bin tispark-telemetry
tool=target/debug/tispark-telemetry

work=$(mktemp -d)
collector_pid=
trap '[ -z "$collector_pid" ] || kill "$collector_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -m 700 "$work/collector"
db=$work/collector/reports.db
"$tool" collect --listen 127.0.0.1:0 --db "$db" > "$work/collector.out" &
collector_pid=$!
for _ in $(seq 100); do grep -q '^collecting reports at' "$work/collector.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^collecting reports at \(http:[^ ]*\) into .*/\1/p' "$work/collector.out")
[ -n "$url" ] || { echo "the collector did not start:" >&2; cat "$work/collector.out" >&2; exit 1; }
echo "collector: $url"

example_job "$url" "$work/state" "$work/spark.log"

echo
echo '$ grep "Telemetry report" spark.log | tail -n 1'
grep "Telemetry report" "$work/spark.log" | tail -n 1
grep "Telemetry sent\|Telemetry written\|Failed to report telemetry" "$work/spark.log" || true
echo
echo '$ tispark-telemetry export --db reports.db'
"$tool" export --db "$db" | tee "$work/stored.jsonl"
logged=$(grep "Telemetry report: " "$work/spark.log" | tail -n 1 | sed 's/.*Telemetry report: //')
stored=$(cat "$work/stored.jsonl")
if [ "$logged" = "$stored" ]; then
  echo; echo "OK: the collector stored exactly the logged report"
else
  echo; echo "MISMATCH between the logged report and what the collector stored" >&2; exit 1
fi
echo
echo '$ tispark-telemetry fleet --db reports.db'
"$tool" fleet --db "$db"
