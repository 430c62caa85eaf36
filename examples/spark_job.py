"""A small real Spark application: sums a range and prints the result.

Run it with spark-submit and the telemetry jar; see examples/run-spark-job.sh.
"""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("tispark-telemetry-example").getOrCreate()
total = spark.range(0, 100000).selectExpr("sum(id) AS total").collect()[0]["total"]
print(f"job result: sum(0..100000) = {total}", flush=True)
spark.stop()
