# Sourced by scripts/run-example.sh and scripts/page-screenshot.sh: the
# example's Spark application (examples/spark_job.py) with the telemetry
# plugin and telemetry on, as an operator would run it.
#   example_job URL STATE_DIR LOG_FILE
# Needs SPARK_HOME (scripts/provision-spark.sh --env) and target/tispark-telemetry.jar.
example_job() {
  SPARK_LOCAL_IP=127.0.0.1 "$SPARK_HOME/bin/spark-submit" --master 'local[2]' \
    --jars target/tispark-telemetry.jar \
    --conf spark.plugins=com.pingcap.tispark.telemetry.TelemetryPlugin \
    --conf spark.tispark.telemetry.enable=true \
    --conf "spark.tispark.telemetry.url=$1" \
    --conf "spark.tispark.telemetry.state_dir=$2" \
    --conf spark.ui.enabled=false \
    --driver-java-options "-Dlog4j.configurationFile=examples/log4j2.properties -Dtispark.example.log=$3" \
    examples/spark_job.py
}
