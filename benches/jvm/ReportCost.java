import com.pingcap.tispark.telemetry.NativeTelemetry;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.UUID;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;

/**
 * What a Spark driver thread pays for {@code NativeTelemetry.report(sc.getConf())}, measured in
 * a fresh JVM that runs a real local SparkContext (so the JVM is as warm as a driver's when the
 * plugin or TiSpark calls). One JVM per sample of the first call. Run by benches/overhead.rs:
 *
 * <pre>spark-submit --master local[1] --jars tispark-telemetry.jar --class ReportCost report-cost.jar MODE CALLS [URL STATE_DIR]</pre>
 *
 * MODE is {@code off} (the switch absent: the default), {@code on}, or {@code jvm}: instead of
 * ours, a sender written with the JVM alone, for comparison (a new thread builds the same kind of
 * report with Jackson, from Spark's jars, and posts it with {@code java.net.http}). Prints
 * KEY=value lines: the first call (in {@code on} mode it starts the sender thread, which loads
 * the native library), the wall clock at the call in epoch nanoseconds ({@code T0_EPOCH_NS}, for
 * the collector's time of arrival: the time to the wire), the CALLS calls after it one by one,
 * resident memory before the first call and after the report is done, and the threads that
 * appeared while it was being sent and that are left after.
 */
public final class ReportCost {
    private static final String SENDER = "tispark-telemetry-sender";

    public static void main(String[] args) throws Exception {
        boolean jvmOnly = args[0].equals("jvm");
        boolean on = args[0].equals("on");
        int calls = Integer.parseInt(args[1]);
        // spark-submit sets the master and the rest, as for any application.
        SparkConf sparkConf = new SparkConf().setAppName("report-cost");
        if (on) {
            sparkConf.set("spark.tispark.telemetry.enable", "true")
                    .set("spark.tispark.telemetry.url", args[2])
                    .set("spark.tispark.telemetry.state_dir", args[3]);
        }
        SparkContext sc = new SparkContext(sparkConf);
        // What the plugin hands over: the driver's conf.
        SparkConf conf = sc.getConf();
        long[] steady = new long[calls];
        rssKiB();
        threadNames();
        System.gc();
        Thread.sleep(500); // let SparkContext's start-up threads settle

        long rssBefore = rssKiB();
        Map<String, String> before = threadNames();
        Instant wall = Instant.now();
        long t0 = System.nanoTime();
        if (jvmOnly) {
            JvmOnlySender.report(conf, args[2]);
        } else {
            NativeTelemetry.report(conf);
        }
        long first = System.nanoTime() - t0;
        Map<String, String> seen = new HashMap<>(threadNames());

        for (int i = 0; i < calls && !jvmOnly; i++) {
            long t = System.nanoTime();
            NativeTelemetry.report(conf);
            steady[i] = System.nanoTime() - t;
        }
        // While sending: every thread that appears while the sender is alive. Polled each ms,
        // cheaply: the process's thread count (one small file); the threads are listed only when
        // it changes. Listing every thread's name each ms took a good part of a core on this
        // 2-core machine, away from the sender being timed.
        int peakNew = newThreads(before, seen).size();
        long end = System.nanoTime() + 10_000_000_000L;
        String sender = jvmOnly ? JvmOnlySender.THREAD : SENDER;
        Map<String, String> now = threadNames();
        long threads = threadCount();
        // Also listed every 50 polls: one thread ending as another starts keeps the count.
        for (int polls = 1; count(now, sender) > 0 && System.nanoTime() < end; polls++) {
            seen.putAll(now);
            peakNew = Math.max(peakNew, newThreads(before, now).size());
            Thread.sleep(1);
            long n = threadCount();
            if (n != threads || polls % 50 == 0) {
                threads = n;
                now = threadNames();
            }
        }
        boolean flushed = jvmOnly ? JvmOnlySender.flush(10_000) : NativeTelemetry.flush(10_000);
        Thread.sleep(300); // let a thread that just ended leave /proc
        System.gc();
        long rssAfter = rssKiB();
        Map<String, String> after = threadNames();

        StringBuilder out = new StringBuilder();
        out.append("FIRST_NS=").append(first).append('\n');
        out.append("T0_EPOCH_NS=")
                .append(wall.getEpochSecond() * 1_000_000_000L + wall.getNano()).append('\n');
        out.append("STEADY_NS=");
        for (int i = 0; i < calls; i++) {
            out.append(i == 0 ? "" : ",").append(steady[i]);
        }
        out.append('\n');
        out.append("RSS_BEFORE_KIB=").append(rssBefore).append('\n');
        out.append("RSS_AFTER_KIB=").append(rssAfter).append('\n');
        out.append("LIB_RSS_KIB=").append(libraryRssKiB()).append('\n');
        out.append("NEW_THREADS_PEAK=").append(peakNew).append('\n');
        out.append("NEW_THREADS_SEEN=").append(String.join("|", newThreads(before, seen)))
                .append('\n');
        out.append("SENDERS_SEEN=").append(count(seen, SENDER)).append('\n');
        out.append("NEW_THREADS_AFTER=").append(newThreads(before, after).size()).append('\n');
        out.append("NEW_THREADS_AFTER_NAMES=").append(String.join("|", newThreads(before, after)))
                .append('\n');
        out.append("FLUSHED=").append(flushed).append('\n');
        System.out.print(out);
        System.out.flush();
        sc.stop();
    }

    /** Resident set size of this process, from /proc/self/status. */
    private static long rssKiB() throws Exception {
        List<String> lines =
                Files.readAllLines(new File("/proc/self/status").toPath(), StandardCharsets.UTF_8);
        for (String l : lines) {
            if (l.startsWith("VmRSS:")) {
                return Long.parseLong(l.replaceAll("[^0-9]", ""));
            }
        }
        return -1;
    }

    /** Resident memory of the telemetry library's own mappings (code and data), from smaps. */
    private static long libraryRssKiB() throws Exception {
        List<String> lines =
                Files.readAllLines(new File("/proc/self/smaps").toPath(), StandardCharsets.UTF_8);
        long total = 0;
        boolean inLibrary = false;
        for (String l : lines) {
            if (l.matches("^[0-9a-f]+-[0-9a-f]+ .*")) {
                inLibrary = l.contains("libtispark_telemetry");
            } else if (inLibrary && l.startsWith("Rss:")) {
                total += Long.parseLong(l.replaceAll("[^0-9]", ""));
            }
        }
        return total;
    }

    /** The number of threads of this process ({@code Threads:} of /proc/self/status). */
    private static long threadCount() throws Exception {
        for (String l : Files.readAllLines(new File("/proc/self/status").toPath(),
                StandardCharsets.UTF_8)) {
            if (l.startsWith("Threads:")) {
                return Long.parseLong(l.substring(8).trim());
            }
        }
        return -1;
    }

    /** Task id to thread name, for every thread of this process. */
    private static Map<String, String> threadNames() {
        Map<String, String> names = new HashMap<>();
        File[] tasks = new File("/proc/self/task").listFiles();
        if (tasks == null) {
            return names;
        }
        for (File t : tasks) {
            try {
                names.put(t.getName(), new String(
                        Files.readAllBytes(new File(t, "comm").toPath()), StandardCharsets.UTF_8)
                        .trim());
            } catch (Exception gone) {
                // the thread ended while we looked
            }
        }
        return names;
    }

    private static List<String> newThreads(Map<String, String> before, Map<String, String> now) {
        List<String> added = new java.util.ArrayList<>();
        for (Map.Entry<String, String> e : now.entrySet()) {
            if (!before.containsKey(e.getKey())) {
                added.add(e.getValue());
            }
        }
        java.util.Collections.sort(added);
        return added;
    }

    /** Threads whose name is {@code name}, cut to the 15 bytes Linux keeps. */
    private static int count(Map<String, String> threads, String name) {
        String shortName = name.length() > 15 ? name.substring(0, 15) : name;
        int n = 0;
        for (String v : threads.values()) {
            if (v.equals(shortName)) {
                n++;
            }
        }
        return n;
    }

    /**
     * The comparison: a report sent with the JVM alone, as a Java implementation would do it. The
     * driver's call starts one daemon thread; that thread builds a report of the same shape
     * (random id, time, OS, CPU, memory, versions, the TiSpark settings) with Jackson and posts
     * it with a new {@code java.net.http.HttpClient}, with the same deadlines as ours.
     */
    static final class JvmOnlySender implements Runnable {
        static final String THREAD = "jvm-only-sender";
        private static Thread thread;
        private final SparkConf conf;
        private final String url;

        private JvmOnlySender(SparkConf conf, String url) {
            this.conf = conf;
            this.url = url;
        }

        static void report(SparkConf conf, String url) {
            Thread t = new Thread(new JvmOnlySender(conf, url), THREAD);
            t.setDaemon(true);
            thread = t;
            t.start();
        }

        static boolean flush(long millis) throws InterruptedException {
            thread.join(millis);
            return !thread.isAlive();
        }

        @Override
        public void run() {
            try {
                Map<String, Object> hardware = new LinkedHashMap<>();
                hardware.put("os", System.getProperty("os.name"));
                hardware.put("version", System.getProperty("os.version"));
                Map<String, Object> cpu = new LinkedHashMap<>();
                cpu.put("logicalCores", Runtime.getRuntime().availableProcessors());
                hardware.put("cpu", cpu);
                hardware.put("memory", String.valueOf(((com.sun.management.OperatingSystemMXBean)
                        ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize()));
                Map<String, Object> instance = new LinkedHashMap<>();
                instance.put("spark_version", org.apache.spark.package$.MODULE$.SPARK_VERSION());
                Map<String, Object> configuration = new LinkedHashMap<>();
                for (scala.Tuple2<String, String> kv : conf.getAllWithPrefix("spark.tispark.")) {
                    configuration.put("spark.tispark." + kv._1(), kv._2());
                }
                Map<String, Object> report = new LinkedHashMap<>();
                report.put("track_id", "trkid_" + UUID.randomUUID());
                report.put("time", System.currentTimeMillis() / 1000);
                report.put("hardware", hardware);
                report.put("instance", instance);
                report.put("configuration", configuration);
                String body = new ObjectMapper().writeValueAsString(report);
                HttpClient client =
                        HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
                HttpRequest request = HttpRequest.newBuilder(URI.create(url))
                        .timeout(Duration.ofSeconds(5))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .build();
                client.send(request, HttpResponse.BodyHandlers.discarding());
            } catch (Exception e) {
                System.err.println("the JVM-only sender failed: " + e);
            }
        }
    }
}
