import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.HashMap;
import java.util.Map;

public final class Jdk25Main {
    public static void main(String[] args) throws Throwable {
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.tispark.telemetry.enable", "true");
        conf.put("spark.tispark.telemetry.url", args[0]);
        conf.put("spark.tispark.telemetry.state_dir", args[1]);
        Class<?> api = Class.forName("com.pingcap.tispark.telemetry.NativeTelemetry");
        MethodHandles.Lookup lookup = MethodHandles.publicLookup();
        lookup.findStatic(api, "report", MethodType.methodType(void.class, Map.class))
                .invoke(conf);
        boolean flushed = (boolean) lookup
                .findStatic(api, "flush", MethodType.methodType(boolean.class, long.class))
                .invoke(15_000L);
        System.out.println("FLUSHED=" + flushed);
        System.out.println("JAVA_SPEC=" + System.getProperty("java.specification.version"));
    }
}
