import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.HashMap;
import java.util.Map;

// Through method handles: NativeTelemetry's SparkConf overloads need no Spark here.
public final class Arm64Report {
    public static void main(String[] args) throws Throwable {
        System.out.println("OS_ARCH=" + System.getProperty("os.arch"));
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.tispark.telemetry.enable", "true");
        conf.put("spark.tispark.telemetry.url", args[0]);
        conf.put("spark.tispark.telemetry.state_dir", args[1]);
        conf.put("spark.app.id", "local-arm64");
        Class<?> api = Class.forName("com.pingcap.tispark.telemetry.NativeTelemetry");
        MethodHandles.Lookup lookup = MethodHandles.publicLookup();
        lookup.findStatic(api, "report",
                MethodType.methodType(void.class, Object.class, String.class))
                .invoke((Object) conf, (String) null);
        // Emulated, everything is slow: a generous flush, and no timing asserted.
        boolean flushed = (boolean) lookup.findStatic(api, "flush",
                MethodType.methodType(boolean.class, long.class)).invoke(120_000L);
        System.out.println("FLUSHED=" + flushed);
    }
}
