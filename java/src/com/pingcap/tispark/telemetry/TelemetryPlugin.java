package com.pingcap.tispark.telemetry;

import java.util.Collections;
import java.util.Map;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * Telemetry without TiSpark: {@code --conf spark.plugins=com.pingcap.tispark.telemetry.TelemetryPlugin}.
 * The driver reports once the application id is known; executors do nothing.
 */
public class TelemetryPlugin implements SparkPlugin {
    @Override
    public DriverPlugin driverPlugin() {
        return new Driver();
    }

    @Override
    public ExecutorPlugin executorPlugin() {
        return null;
    }

    static final class Driver implements DriverPlugin {
        private volatile SparkContext context;

        @Override
        public Map<String, String> init(SparkContext sc, PluginContext pluginContext) {
            context = sc;
            return Collections.emptyMap();
        }

        /** Called once the application id is set in the conf. */
        @Override
        public void registerMetrics(String appId, PluginContext pluginContext) {
            try {
                SparkContext sc = context;
                if (sc != null) {
                    NativeTelemetry.report(sc.getConf());
                }
            } catch (Throwable t) {
                TelemetryLog.log(TelemetryLog.WARN, "Telemetry is off for this application: " + t);
            }
        }
    }
}
