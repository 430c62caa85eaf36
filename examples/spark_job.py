"""A small real Spark application: sums a range and prints the result.

Run by spark-submit with the telemetry jar (see scripts/run-example.sh). For
the tests it can also exercise the ways TiSpark reaches telemetry:
  TT_SESSIONS=N   build N more SparkSessions (TiSpark reports when each is built)
  TT_API_CALLS=N  call NativeTelemetry.report(conf) from N threads at once
"""
import os
import threading

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("tispark-telemetry-example").getOrCreate()

for _ in range(int(os.environ.get("TT_SESSIONS", "0"))):
    spark.newSession().range(1).count()

calls = int(os.environ.get("TT_API_CALLS", "0"))
if calls:
    api = spark._jvm.com.pingcap.tispark.telemetry.NativeTelemetry
    conf = spark.sparkContext._jsc.sc().getConf()
    threads = [threading.Thread(target=api.report, args=(conf, "3.1.0")) for _ in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

total = spark.range(0, 100000).selectExpr("sum(id) AS total").collect()[0]["total"]
print(f"job result: sum(0..100000) = {total}", flush=True)
spark.stop()
