#!/usr/bin/env bash
# Makes docs/fleet-page.png, the README's picture of the collector's fleet
# page (`collect --ui`). The example's Spark application
# (examples/spark_job.py, as scripts/run-example.sh runs it) reports to a
# real collector on loopback. So that the picture shows a fleet rather than
# one host, 40 made-up hosts derived from that report (other Spark, TiSpark
# and TiDB versions, read engines, streaming, OS and cores; track ids
# trkid_00000000-0000-4000-8000-0000000000NN) are posted to the same
# collector, then, the collector stopped, dated back over the last 14 days
# in its database (the intake dates a report by its own clock). The
# collector is started again on that database, and Debian's Chromium,
# headless and reaching nothing but loopback, takes the screenshot.
# Needs Spark (provisioned as the tests do), python3 and chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/provision-spark.sh --env)"
source scripts/example-job.sh
source scripts/toolchains.sh
ensure_packages chromium
TISPARK_TELEMETRY_PLATFORMS=host bash java/package.sh
cargo build --quiet --bin tispark-telemetry
tool=target/debug/tispark-telemetry

work=$(mktemp -d)
collector_pid=
trap '[ -z "$collector_pid" ] || kill "$collector_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -m 700 "$work/collector"
db=$work/collector/reports.db

# start_collector: runs `collect` on $db; sets $url (reports) and $ui (the page).
start_collector() {
  rm -f "$work/collector.out"
  "$tool" collect --listen 127.0.0.1:0 --ui 127.0.0.1:0 --db "$db" > "$work/collector.out" &
  collector_pid=$!
  for _ in $(seq 100); do grep -q '^the fleet page at' "$work/collector.out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^collecting reports at \(http:[^ ]*\) into .*/\1/p' "$work/collector.out")
  ui=$(sed -n 's/^the fleet page at \(http:[^ ]*\) and .*/\1/p' "$work/collector.out")
  [ -n "$url" ] && [ -n "$ui" ] || { echo "the collector did not start:" >&2; cat "$work/collector.out" >&2; exit 1; }
}
stop_collector() {
  kill -TERM "$collector_pid"
  wait "$collector_pid"
  collector_pid=
}

start_collector
example_job "$url" "$work/state" "$work/spark.log"
"$tool" export --db "$db" > "$work/example.jsonl"
[ "$(wc -l < "$work/example.jsonl")" -eq 1 ] || { echo "the example stored no report" >&2; exit 1; }

python3 - "$url" "$work/example.jsonl" "$work/made-up" <<'EOF'
import json, random, sys, urllib.request
url, example, made_up = sys.argv[1:4]
real = json.loads(open(example).read())
rng = random.Random(20)
pick = lambda pairs: rng.choices([v for v, _ in pairs], [w for _, w in pairs])[0]
sent = []
for n in range(1, 41):
    report = json.loads(json.dumps(real))
    report["track_id"] = f"trkid_00000000-0000-4000-8000-{n:012d}"
    i = report["instance"]
    i["spark_version"] = pick([("3.5.1", 5), ("3.4.3", 4), ("3.3.4", 3), ("3.2.4", 1)])
    i["tispark_version"] = pick([("3.3.0", 6), ("3.2.3", 3), ("3.1.5", 1)])
    i["tidb_version"] = pick([("v7.5.1", 5), ("v8.1.0", 3), ("v6.5.9", 2)])
    c = report["configuration"]
    c["spark.tispark.isolation_read_engines"] = pick([("tikv,tiflash", 5), ("tikv", 4), ("tiflash", 1)])
    c["spark.tispark.coprocess.streaming"] = rng.random() < 0.3
    report["hardware"]["os"] = pick([("Debian GNU/Linux", 4), ("Ubuntu", 4), ("Rocky Linux", 2), ("Amazon Linux", 1)])
    report["hardware"]["cpu"]["logicalCores"] = pick([(8, 3), (16, 4), (32, 3), (64, 1)])
    # Each host reports on a few of the last 14 days, a few times a day.
    for day in sorted(rng.sample(range(14), rng.randint(1, 6)), reverse=True):
        for _ in range(rng.randint(1, 3)):
            body = json.dumps(report, ensure_ascii=False, separators=(",", ":")).encode()
            req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as answer:
                assert answer.status == 200
            sent.append(day)
open(made_up, "w").write(json.dumps(sent))
EOF
stop_collector

# The made-up reports (all but the example's, the first row), dated back by
# their day, in the order they were sent.
python3 - "$db" "$work/made-up" <<'EOF'
import json, sqlite3, sys
db, made_up = sys.argv[1:3]
days = json.load(open(made_up))
conn = sqlite3.connect(db)
ids = [r[0] for r in conn.execute("SELECT id FROM reports ORDER BY id")][1:]
assert len(ids) == len(days)
for row, day in zip(ids, days):
    conn.execute("UPDATE reports SET received = received - ? WHERE id = ?", (day * 86400, row))
conn.commit()
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.close()
EOF

start_collector
profile=$work/chromium
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --disable-extensions --disable-default-apps \
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1' \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1280,1470 \
  --screenshot="$work/fleet-page.png" "$ui" 2> "$work/chromium.err" \
  || { cat "$work/chromium.err" >&2; exit 1; }
stop_collector
cp "$work/fleet-page.png" docs/fleet-page.png
echo "wrote docs/fleet-page.png ($(wc -c < docs/fleet-page.png) bytes)"
