import com.pingcap.tispark.telemetry.NativeTelemetry;
import java.io.File;
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
 * MODE is {@code off} (the switch absent: the default) or {@code on}. Prints KEY=value lines:
 * the first call (in {@code on} mode it starts the sender thread, which loads the native library), the
 * CALLS calls after it one by one, resident memory before the first call and after the report
 * is done, and the threads that appeared while it was being sent and that are left after.
 */
public final class ReportCost {
    private static final String SENDER = "tispark-telemetry-sender";

    public static void main(String[] args) throws Exception {
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
        long t0 = System.nanoTime();
        NativeTelemetry.report(conf);
        long first = System.nanoTime() - t0;
        Map<String, String> seen = new HashMap<>(threadNames());

        for (int i = 0; i < calls; i++) {
            long t = System.nanoTime();
            NativeTelemetry.report(conf);
            steady[i] = System.nanoTime() - t;
        }
        // While sending: every thread that appears while the sender is alive (polled each ms).
        int peakNew = newThreads(before, seen).size();
        long end = System.nanoTime() + 10_000_000_000L;
        while (count(threadNames(), SENDER) > 0 && System.nanoTime() < end) {
            Map<String, String> now = threadNames();
            seen.putAll(now);
            peakNew = Math.max(peakNew, newThreads(before, now).size());
            Thread.sleep(1);
        }
        boolean flushed = NativeTelemetry.flush(10_000);
        Thread.sleep(300); // let a thread that just ended leave /proc
        System.gc();
        long rssAfter = rssKiB();
        Map<String, String> after = threadNames();

        StringBuilder out = new StringBuilder();
        out.append("FIRST_NS=").append(first).append('\n');
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
}
