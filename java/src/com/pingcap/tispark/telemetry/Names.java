package com.pingcap.tispark.telemetry;

/**
 * The names the Java side, the native library and the build scripts share, defined once, here.
 *
 * <p>{@code build.rs} reads this file and generates the native library's constants from it
 * ({@code src/names.rs}), and {@code scripts/platforms.sh} reads {@link #PLATFORMS} from it, so
 * that a name changed here changes everywhere and a name removed here is a compile error there.
 * Keep each definition on one line, in the forms below: {@code static final String X = "…";},
 * {@code static final int X = n;}, {@code static final String[] X = {"…", …};}, and one
 * {@code {"…", "…", "…"},} row per platform.
 */
final class Names {
    /** The switch. Absent or false: off, and nothing at all happens. */
    static final String ENABLE_KEY = "spark.tispark.telemetry.enable";
    /** Spark's application id, for the JVM-wide mark and the appid_ fallback track id. */
    static final String APP_ID_KEY = "spark.app.id";
    /** The JVM-wide mark "this JVM has reported" (a system property; its value: the app id). */
    static final String REPORTED_PROPERTY = "tispark.telemetry.reported";
    /**
     * An administrator's off switches, whatever the Spark conf says. Two constants, not an array:
     * javac copies constants into the classes that use them, so the driver's first call checks
     * them without loading this class (docs/performance.md, "Classes of ours on the way").
     */
    static final String DISABLE_ENV_VAR = "TISPARK_TELEMETRY_DISABLED";
    static final String DO_NOT_TRACK_ENV_VAR = "DO_NOT_TRACK";
    /** The driver's system property bounding JVM shutdown's wait for a report in flight (ms). */
    static final String FLUSH_MILLIS_PROPERTY = "tispark.telemetry.flush.millis";
    /** The values of a DISABLE_ENV_VARS variable that do not disable (any case, trimmed). */
    static final String[] DISABLE_ENV_NO_VALUES = {"", "0", "false"};

    /** The log levels of the native side's records (Rust's log crate numbering). */
    static final int LOG_ERROR = 1;
    static final int LOG_WARN = 2;
    static final int LOG_INFO = 3;
    static final int LOG_DEBUG = 4;
    static final int LOG_TRACE = 5;
    /** The words of the report line, which operators grep for: no other line may hold them. */
    static final String REPORT_WORDS = "Telemetry report";
    /** The same words as any other log line writes them (escaped). */
    static final String DEFUSED_WORDS = "Telemetry\\u{20}report";

    /** The native library's name, as System.mapLibraryName takes it. */
    static final String LIBRARY = "tispark_telemetry";
    /** Rust target triple, the jar's platform directory, the library's file name. */
    static final String[][] PLATFORMS = {
        {"x86_64-unknown-linux-gnu", "linux-x86_64", "libtispark_telemetry.so"},
        {"aarch64-unknown-linux-gnu", "linux-aarch64", "libtispark_telemetry.so"},
        {"x86_64-unknown-linux-musl", "linux-musl-x86_64", "libtispark_telemetry.so"},
        {"aarch64-unknown-linux-musl", "linux-musl-aarch64", "libtispark_telemetry.so"},
        {"x86_64-apple-darwin", "macos-x86_64", "libtispark_telemetry.dylib"},
        {"aarch64-apple-darwin", "macos-aarch64", "libtispark_telemetry.dylib"},
    };

    private Names() {}
}
