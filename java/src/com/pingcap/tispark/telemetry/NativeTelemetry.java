package com.pingcap.tispark.telemetry;

import java.lang.reflect.Method;
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
    public static final String FLUSH_MILLIS_PROPERTY = "tispark.telemetry.flush.millis";
    static final long DEFAULT_FLUSH_MILLIS = 2000;
    static final long MAX_FLUSH_MILLIS = 10000;
    /** Set by the native side when a report starts; see {@link #alreadyReported()}. */
    static final String REPORTED_PROPERTY = Names.REPORTED_PROPERTY;

    /** The class of Spark's conf, recognised by name: a JVM without Spark never loads it. */
    static final String SPARK_CONF_CLASS = "org.apache.spark.SparkConf";

    /**
     * A SparkConf's value, by a direct call: looking its getter up by reflection made the JVM
     * resolve every signature of SparkConf, loading Avro's classes, ~2 ms on the driver thread.
     * Here rather than in a class of its own: each class of ours the first call loads costs it a
     * look-up through every jar of Spark's class path (~0.6 ms here), and the cast and call need
     * no class loaded until they run, which is only for a SparkConf.
     */
    static String sparkConfValue(Object conf, String key) {
        return ((org.apache.spark.SparkConf) conf).get(key, null);
    }

    /**
     * {@code String get(String, String)} of any other conf class, looked up once per class. In a
     * holder, so that the common cases (a SparkConf, a Map) never load it.
     */
    private static final class Getters {
        static final ClassValue<Method> GETTER = new ClassValue<Method>() {
            @Override
            protected Method computeValue(Class<?> type) {
                try {
                    return type.getMethod("get", String.class, String.class);
                } catch (NoSuchMethodException | SecurityException e) {
                    return null;
                }
            }
        };
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
    private static volatile boolean decided;

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
     * can make one). This class is the thread's {@code Runnable} itself, not a class of its own or
     * a lambda: each class the driver's first call loads costs it a look-up through every jar of
     * Spark's class path (about 1 ms on a loaded driver), and a lambda a bootstrap. The work is in
     * {@link Sender}, loaded on the sender thread.
     */
    @Override
    public void run() {
        if (flushBound >= 0) {
            flush(flushBound);
            return;
        }
        Sender.run(conf, tisparkVersion, calledAt);
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

    /**
     * The sender thread's work: loaded on that thread, never on the driver's (see
     * {@link #run()}).
     */
    private static final class Sender {
        private Sender() {}

        static void run(Object conf, String tisparkVersion, long calledAt) {
            long started = System.nanoTime();
            boolean off = false;
            boolean loading = false;
            try {
                // A conf the caller's thread did not read: its switch is read here first. Off,
                // as off on the caller's thread: nothing loaded, nothing decided.
                if (mayBeEnabled(conf) == READ_ON_SENDER && !switchMayBeOn(conf)) {
                    off = true;
                    return;
                }
                loading = true;
                if (NativeLoader.ensureLoaded()) {
                    long loaded = System.nanoTime();
                    decideAndReport(conf, tisparkVersion);
                    // Where the time to the wire goes (docs/performance.md), at DEBUG.
                    TelemetryLog.log(TelemetryLog.DEBUG, "Telemetry sender timings: started "
                            + (started - calledAt) / 1000 + " µs after the call; native library"
                            + " ready in " + (loaded - started) / 1000 + " µs ("
                            + NativeLoader.timings() + "); decided and reported in "
                            + (System.nanoTime() - loaded) / 1000 + " µs.");
                }
            } catch (Throwable t) {
                if (t instanceof java.lang.reflect.InvocationTargetException && t.getCause() != null) {
                    t = t.getCause(); // thrown by the conf object's own get
                }
                String why = t instanceof IllegalArgumentException ? t.getMessage() : t.toString();
                TelemetryLog.log(TelemetryLog.WARN, "Telemetry is off for this application: " + why);
            } finally {
                if (!off) {
                    decided = true;
                }
                if (loading) {
                    NativeLoader.sweepAfterReport();
                }
            }
        }

        /**
         * The sender's work once the library is loaded: the native side decides from the switch's
         * value (and says why it is off); when it is on, this JVM is claimed, the keys the native side
         * names are read from the conf, and it builds, logs and delivers the report from those values.
         */
        static void decideAndReport(Object conf, String tisparkVersion) throws Exception {
            if (!nativeDecide(read(conf, ENABLE_KEY))) {
                return;
            }
            String[] keys = nativeKeys();
            String[] values = new String[keys.length];
            String appId = null;
            for (int i = 0; i < keys.length; i++) {
                values[i] = read(conf, keys[i]);
                if (keys[i].equals(Names.APP_ID_KEY)) {
                    appId = values[i];
                }
            }
            // The first decision stands for the JVM: claimed before the destination is checked, so
            // later callers (other sessions, other class loaders) do not even load the library again.
            String mark = appId == null || appId.trim().isEmpty() ? "unknown" : appId.trim();
            if (System.getProperties().putIfAbsent(REPORTED_PROPERTY, mark) != null) {
                return; // another class loader's copy reported meanwhile
            }
            nativeReport(values, sparkVersion(), tisparkVersion);
        }

        /**
         * One key of the conf: a SparkConf's or a Map's value, or what a conf object's
         * {@code String get(String, String)} answers; null when unset. Throws, naming the mistake,
         * for null or an object of none of these shapes.
         */
        static String read(Object conf, String key) throws Exception {
            if (conf == null) {
                throw new IllegalArgumentException(
                        "NativeTelemetry.report was given null instead of a SparkConf or a java.util.Map");
            }
            if (conf instanceof Map) {
                Object v = ((Map<?, ?>) conf).get(key);
                return v == null ? null : v.toString();
            }
            if (conf.getClass().getName().equals(SPARK_CONF_CLASS)) {
                return sparkConfValue(conf, key);
            }
            Method get = Getters.GETTER.get(conf.getClass());
            if (get == null) {
                throw new IllegalArgumentException("NativeTelemetry.report was given a "
                        + conf.getClass().getName() + ", which is neither a SparkConf, a java.util.Map,"
                        + " nor has String get(String, String)");
            }
            return (String) get.invoke(conf, key, null);
        }

        static boolean switchMayBeOn(Object conf) {
            try {
                return !isOff(read(conf, ENABLE_KEY));
            } catch (Throwable t) {
                return true; // the sender names the mistake
            }
        }

        /** Spark's version, asked by the native side only once telemetry is on. */
        static String sparkVersion() {
            ClassLoader[] loaders = {
                NativeTelemetry.class.getClassLoader(), Thread.currentThread().getContextClassLoader()
            };
            for (ClassLoader loader : loaders) {
                try {
                    Class<?> pkg = Class.forName("org.apache.spark.package$", true, loader);
                    Object module = pkg.getField("MODULE$").get(null);
                    return (String) pkg.getMethod("SPARK_VERSION").invoke(module);
                } catch (Throwable ignored) {
                    // not Spark, or not visible from this loader
                }
            }
            return null;
        }
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
     * the native side sets this system property atomically when it claims the JVM. Later calls
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
     * The switch of any conf object, read on the sender thread: false only when it is certainly
     * off. A Map is asked {@code get}, anything else {@code get(String, String)}; an object with
     * neither, or a read that throws, is left to the native side, which names the mistake.
     */
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
