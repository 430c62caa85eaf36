package com.pingcap.tispark.telemetry;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * The API TiSpark (or any Spark application) calls: {@code NativeTelemetry.report(sparkConf)}.
 *
 * <p>It returns at once and never throws. With {@code spark.tispark.telemetry.enable} absent or
 * {@code false} the native library is not even loaded, and for a conf read on the caller's
 * thread ({@link #mayBeEnabled}) not even a thread is started.
 * Otherwise one daemon thread, {@code tispark-telemetry-sender}, loads the native library, which
 * decides (strictly) and, when telemetry is on, builds and sends the report, once per JVM; a
 * shutdown hook waits for that thread at most {@link #flushMillis()} milliseconds.
 *
 * <p>The switch is read on the caller's thread only where that read cannot block (see
 * {@link #mayBeEnabled}); any other conf object is not touched on the caller's thread at all: the
 * sender thread is started and reads it, and, the switch off there, ends without loading the
 * library. The rest of the conf is read on that thread, shortly after the call: a
 * {@code SparkConf} is safe to share; a {@code java.util.Map} handed over must not be changed
 * afterwards (or pass a copy).
 */
public final class NativeTelemetry implements Runnable {
    /** The switch. */
    public static final String ENABLE_KEY = Names.ENABLE_KEY;
    /** How long JVM shutdown may wait for a report in flight, in milliseconds (default 2000). */
    public static final String FLUSH_MILLIS_PROPERTY = Names.FLUSH_MILLIS_PROPERTY;
    static final long DEFAULT_FLUSH_MILLIS = 2000;
    static final long MAX_FLUSH_MILLIS = 10000;
    /** Set by {@link NativeLoader} when it claims the JVM; see {@link #alreadyReported()}. */
    static final String REPORTED_PROPERTY = Names.REPORTED_PROPERTY;

    /** The class of Spark's conf, recognised by name: a JVM without Spark never loads it. */
    static final String SPARK_CONF_CLASS = "org.apache.spark.SparkConf";

    /**
     * A SparkConf's value, by a direct call: looking its getter up by reflection made the JVM
     * resolve every signature of SparkConf, loading Avro's classes, ~2 ms on the driver thread.
     * Here rather than in a class of its own (docs/performance.md, "Classes of ours on the
     * way"): the cast and call need no class loaded until they run, which is only for a SparkConf.
     */
    static String sparkConfValue(Object conf, String key) {
        return ((org.apache.spark.SparkConf) conf).get(key, null);
    }

    /** The sender thread's stack size, whatever the JVM's -Xss says. */
    static final long SENDER_STACK_BYTES = 4L << 20;

    /** The name of the one thread telemetry starts. */
    static final String SENDER_THREAD = "tispark-telemetry-sender";

    /**
     * Set when a sender of this class loader has finished: the application's first decision
     * stands (reported, or off with one WARN for an invalid switch or conf object), so later
     * calls return at once instead of warning again.
     */
    static volatile boolean decided;

    private static final Object SENDER_LOCK = new Object();
    private static Thread sender; // guarded by SENDER_LOCK
    private static boolean hookInstalled;

    /** What the sender thread (or the shutdown hook) is to do: see {@link #run()}. */
    private final Object conf;
    private final String tisparkVersion;
    /** System.nanoTime() of the call that started the sender, for the DEBUG timings. */
    private final long calledAt;
    /** Zero or more: the shutdown hook, waiting for the sender at most that long. */
    private final long flushBound;

    /** Only this class makes instances: the sender thread's and the shutdown hook's work. */
    private NativeTelemetry(Object conf, String tisparkVersion, long calledAt, long flushBound) {
        this.conf = conf;
        this.tisparkVersion = tisparkVersion;
        this.calledAt = calledAt;
        this.flushBound = flushBound;
    }

    /**
     * Not an API: the body of the thread {@code tispark-telemetry-sender} and of the shutdown
     * hook {@code tispark-telemetry-flush}, which are the only holders of an instance (no caller
     * can make one). This class is the thread's {@code Runnable} itself, not a class of its own
     * (docs/performance.md, "Classes of ours on the way") nor a lambda (a bootstrap). The work is in
     * {@link NativeLoader#send}, on the sender thread (which loads no class of ours but that one
     * and {@link TelemetryLog}).
     */
    @Override
    public void run() {
        if (flushBound >= 0) {
            if (!flush(flushBound)) {
                unconfirmed(flushBound);
            }
            return;
        }
        try {
            NativeLoader.send(conf, tisparkVersion, calledAt); // never throws once loaded
        } catch (Throwable t) {
            // NativeLoader itself cannot be loaded (a damaged jar): one WARN, never the JVM's
            // uncaught-exception trace.
            decided = true;
            try {
                TelemetryLog.log(TelemetryLog.WARN, "Telemetry is off for this application: " + t);
            } catch (Throwable ignored) {
                // no log either: nothing more to do
            }
        }
    }

    /**
     * JVM shutdown stopped waiting for the sender: the native side says, at WARN, that a report
     * in flight is not confirmed and records it so in the audit trail. Nothing to say when the
     * library was never loaded (no report line was written, nothing left).
     */
    private static void unconfirmed(long waitedMillis) {
        try {
            nativeUnconfirmed(waitedMillis);
        } catch (Throwable t) {
            // the library is not loaded in this class loader: no report was in flight here
        }
    }

    /** Reports once per JVM if the SparkConf turns telemetry on. */
    public static void report(org.apache.spark.SparkConf conf) {
        report((Object) conf, null);
    }

    /** As {@link #report(org.apache.spark.SparkConf)}, with the caller's (TiSpark's) version. */
    public static void report(org.apache.spark.SparkConf conf, String tisparkVersion) {
        report((Object) conf, tisparkVersion);
    }

    /** Reports once per JVM if the conf's values turn telemetry on. */
    public static void report(Map<String, String> conf) {
        report((Object) conf, null);
    }

    /** As {@link #report(Map)}, with the caller's (TiSpark's) version. */
    public static void report(Map<String, String> conf, String tisparkVersion) {
        report((Object) conf, tisparkVersion);
    }

    /**
     * Reports once per JVM if the conf (a SparkConf, a java.util.Map, or any object with
     * {@code String get(String, String)}) turns telemetry on. Kept for existing callers.
     */
    public static void report(Object conf) {
        report(conf, null);
    }

    /** As {@link #report(Object)}, with the caller's version (TiSpark's) for the report. */
    public static void report(Object conf, String tisparkVersion) {
        try {
            // The switch before the environment: off (the default) then costs no class but this
            // one, and on, the first call loads as few classes as it can (each is looked for in
            // every jar of Spark's class path first).
            if (decided || alreadyReported() || mayBeEnabled(conf) == OFF
                    || disabledByEnvironment()) {
                return;
            }
            startSender(conf, tisparkVersion);
        } catch (Throwable t) {
            TelemetryLog.log(TelemetryLog.WARN, "Telemetry is off for this application: " + t);
        }
    }

    /** Waits for a report in flight, at most {@code timeoutMillis}; true when none is left. */
    public static boolean flush(long timeoutMillis) {
        Thread t;
        synchronized (SENDER_LOCK) {
            t = sender;
        }
        try {
            if (t != null && timeoutMillis > 0) {
                t.join(timeoutMillis);
            }
            return t == null || !t.isAlive();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return t == null || !t.isAlive();
        } catch (Throwable e) {
            return false;
        }
    }

    /**
     * Everything else happens on one daemon thread: loading the native library, reading the conf,
     * deciding, building and sending. Once per class loader: while it is in flight, further calls
     * (the same application asking again) are dropped, and after it they stop at {@code decided}
     * (and, in every class loader, at {@link #alreadyReported()} once the JVM has reported).
     */
    private static void startSender(final Object conf, final String tisparkVersion) {
        synchronized (SENDER_LOCK) {
            if (decided || (sender != null && sender.isAlive()) || alreadyReported()) {
                return;
            }
            // An explicit stack: the driver's -Xss may be small (136k is valid), and the native
            // side (TLS, HTTP) and the logger both run on this thread.
            Thread t = new Thread(null, new NativeTelemetry(conf, tisparkVersion, System.nanoTime(), -1),
                    SENDER_THREAD, SENDER_STACK_BYTES);
            t.setDaemon(true);
            sender = t;
            t.start();
        }
        installFlushHook();
    }

    /** The bound of the shutdown wait: the system property, clamped to [0, 10000] ms. */
    static long flushMillis() {
        try {
            String v = System.getProperty(FLUSH_MILLIS_PROPERTY);
            long ms = v == null ? DEFAULT_FLUSH_MILLIS : Long.parseLong(v.trim());
            return Math.max(0, Math.min(MAX_FLUSH_MILLIS, ms));
        } catch (RuntimeException e) {
            return DEFAULT_FLUSH_MILLIS;
        }
    }

    /**
     * True once any copy of this library in this JVM (any class loader) has started the report:
     * the sender thread ({@code NativeLoader}) sets this system property atomically, to the
     * application's id ({@code unknown} without one), when it claims the JVM, once telemetry is
     * decided on and before the report is built. Later calls
     * then cost one property look-up, and a class loader that comes late never loads its copy.
     */
    static boolean alreadyReported() {
        return System.getProperty(REPORTED_PROPERTY) != null;
    }

    /**
     * An administrator's hard off switch, {@code TISPARK_TELEMETRY_DISABLED} or
     * {@code DO_NOT_TRACK} set to anything but empty, {@code 0} or {@code false}: then not even a
     * thread is started. The same rule as the native side's {@code conf::disabled_by_env}, which
     * the command-line tool's {@code status} and {@code preview} use.
     */
    static boolean disabledByEnvironment() {
        return disabledBy(Names.DISABLE_ENV_VAR) || disabledBy(Names.DO_NOT_TRACK_ENV_VAR);
    }

    private static boolean disabledBy(String var) {
        String v = System.getenv(var);
        return v != null && disables(v);
    }

    /** The value of an off switch disables unless it is one of Names.DISABLE_ENV_NO_VALUES. */
    static boolean disables(String value) {
        String v = value.trim();
        for (String no : Names.DISABLE_ENV_NO_VALUES) {
            if (asciiEqualsIgnoreCase(v, no)) {
                return false;
            }
        }
        return true;
    }

    /** {@link #mayBeEnabled}: the switch is certainly off; nothing to do. */
    static final int OFF = 0;
    /** {@link #mayBeEnabled}: the switch may be on; the sender thread goes on to the library. */
    static final int MAYBE_ON = 1;
    /** {@link #mayBeEnabled}: not read here; the sender thread reads the switch first. */
    static final int READ_ON_SENDER = 2;

    /**
     * The cheap pre-check, on the caller's thread: {@link #OFF} only when the switch is certainly
     * off (absent or "false"), so that the default costs nothing (no thread, no library).
     *
     * <p>The caller's thread must never wait on the conf object, so it is read here only when that
     * read cannot block: an {@code org.apache.spark.SparkConf} (a concurrent map look-up) and the
     * JDK's unsynchronized maps that do not call back into the caller's code
     * ({@link #READ_HERE_MAPS}), when the value found is a String. Anything else (another Map, a
     * synchronized or wrapping map, an object with {@code get(String, String)}, a value that is not
     * a String) is {@link #READ_ON_SENDER}: not touched here.
     */
    static int mayBeEnabled(Object conf) {
        if (conf == null) {
            return MAYBE_ON; // the native side names the mistake
        }
        String value;
        try {
            String type = conf.getClass().getName();
            if (type.equals(SPARK_CONF_CLASS)) {
                value = sparkConfValue(conf, ENABLE_KEY);
            } else if (READ_HERE_MAPS.contains(type)) {
                Object v = ((Map<?, ?>) conf).get(ENABLE_KEY);
                if (v != null && !(v instanceof String)) {
                    return READ_ON_SENDER; // its toString() is someone else's code
                }
                value = (String) v;
            } else {
                return READ_ON_SENDER;
            }
        } catch (Throwable t) {
            return MAYBE_ON; // the native side reports it
        }
        return isOff(value) ? OFF : MAYBE_ON;
    }

    /**
     * Map classes whose {@code get(String)} neither locks nor calls code other than String's:
     * the look-up compares the String key with {@code key.equals(k)} and hashes it itself (no
     * comparator, no monitor, no delegate). Exact class names: a subclass may override get.
     */
    static final Set<String> READ_HERE_MAPS = new HashSet<>(Arrays.asList(
            "java.util.HashMap",
            "java.util.LinkedHashMap",
            "java.util.concurrent.ConcurrentHashMap",
            "java.util.Collections$EmptyMap",
            "java.util.Collections$SingletonMap",
            "java.util.ImmutableCollections$Map1",
            "java.util.ImmutableCollections$MapN"));

    /**
     * The switch is certainly off: absent, or {@code false} in any ASCII case once trimmed as
     * {@link String#trim()} trims (characters up to U+0020). The native side's rule
     * ({@code conf::parse_bool}) is the same; {@code tests/parity.rs} checks both against one
     * table. Anything else goes to the native side, which says what is wrong with it.
     */
    static boolean isOff(String value) {
        return value == null || asciiEqualsIgnoreCase(value.trim(), "false");
    }

    /** Case-insensitive in ASCII only ({@code equalsIgnoreCase} also matches U+017F to 's'). */
    static boolean asciiEqualsIgnoreCase(String a, String b) {
        if (a.length() != b.length()) {
            return false;
        }
        for (int i = 0; i < a.length(); i++) {
            char x = a.charAt(i);
            char y = b.charAt(i);
            if (x != y && (x >= 128 || y >= 128 || Character.toLowerCase(x) != Character.toLowerCase(y))) {
                return false;
            }
        }
        return true;
    }

    private static synchronized void installFlushHook() {
        if (hookInstalled) {
            return;
        }
        final long bound = flushMillis();
        // The shutdown hook: waits for the sender, at most the flush bound.
        Thread hook = new Thread(new NativeTelemetry(null, null, 0, bound), "tispark-telemetry-flush");
        try {
            Runtime.getRuntime().addShutdownHook(hook);
            hookInstalled = true;
        } catch (IllegalStateException alreadyShuttingDown) {
            flush(bound);
        }
    }


    static native void nativeInit(Class<?> logClass, int maxLogLevel);

    /** JVM shutdown stopped waiting after that many ms: true when a report was in flight. */
    static native boolean nativeUnconfirmed(long waitedMillis);

    /** The native side's decision from the switch's value: true when on; it logs why it is off. */
    static native boolean nativeDecide(String enableValue);

    /** The conf keys the native side reads once telemetry is on (it names them, Java reads them). */
    static native String[] nativeKeys();

    /**
     * Builds, logs and delivers the report from the values of {@link #nativeKeys()}, in their
     * order, on the calling thread (the sender): true when it was delivered, successfully or not.
     */
    static native boolean nativeReport(
            String[] values, String sparkVersion, String tisparkVersion);
}
