package com.pingcap.tispark.telemetry;

/**
 * Where the native side's log records go: the slf4j logger
 * {@code com.pingcap.tispark.telemetry.Telemetry}, which Spark routes to its own log. Without
 * slf4j on the class path, warnings and errors go to stderr. Never throws.
 *
 * <p>Every record is one line no input can forge: the native side escapes its records, and
 * {@link #log} escapes the Java side's the same way (control characters as {@code \n},
 * {@code \\u{1b}}, bidirectional controls as {@code \\u{202e}}, and the words
 * {@code Telemetry report}, which only the report line may hold) and cuts them as it does.
 */
final class TelemetryLog {
    static final String LOGGER_NAME = "com.pingcap.tispark.telemetry.Telemetry";
    // The levels of Rust's log crate.
    static final int ERROR = Names.LOG_ERROR;
    static final int WARN = Names.LOG_WARN;
    static final int INFO = Names.LOG_INFO;
    static final int DEBUG = Names.LOG_DEBUG;
    static final int TRACE = Names.LOG_TRACE;

    /**
     * The logger; null without slf4j on the class path. Its classes are resolved only where it is
     * used, so a JVM without them gets here and no further (kept in this class rather than a
     * holder of its own: docs/performance.md, "Classes of ours on the way").
     */
    private static final org.slf4j.Logger LOGGER = slf4jLogger();

    private TelemetryLog() {}

    private static org.slf4j.Logger slf4jLogger() {
        try {
            org.slf4j.Logger logger = org.slf4j.LoggerFactory.getLogger(LOGGER_NAME);
            logger.getName();
            return logger;
        } catch (Throwable t) {
            return null;
        }
    }

    /** The most detailed level enabled, 0 for none. */
    static int maxLevel() {
        if (LOGGER == null) {
            return WARN;
        }
        try {
            if (LOGGER.isTraceEnabled()) return TRACE;
            if (LOGGER.isDebugEnabled()) return DEBUG;
            if (LOGGER.isInfoEnabled()) return INFO;
            if (LOGGER.isWarnEnabled()) return WARN;
            if (LOGGER.isErrorEnabled()) return ERROR;
            return 0;
        } catch (Throwable t) {
            return WARN;
        }
    }

    /** A record of the Java side's own, escaped and cut as the native side's records are. */
    static void log(int level, String message) {
        String text = String.valueOf(message);
        if (text.codePointCount(0, text.length()) > RECORD_CHARS) {
            // Counted and cut in characters, as the native side does: never inside a pair.
            int end = text.offsetByCodePoints(0, RECORD_CHARS);
            text = text.substring(0, end) + "\u2026 (cut: "
                    + text.codePointCount(0, text.length()) + " characters)";
        }
        nativeLog(level, logSafe(text).replace(Names.REPORT_WORDS, Names.DEFUSED_WORDS));
    }

    /** A record is cut at this many chars, as the native side's {@code log_line::RECORD_CHARS}. */
    static final int RECORD_CHARS = 8 * 1024;

    /**
     * The native side's {@code log_line::needs_escape}: C0, DEL, C1, the bidirectional controls
     * and the line and paragraph separators.
     */
    static boolean needsEscape(char c) {
        return Character.isISOControl(c)
                || c == '\u061C' || c == '\u200E' || c == '\u200F'
                || (c >= '\u202A' && c <= '\u202E')
                || (c >= '\u2066' && c <= '\u2069')
                || c == '\u2028' || c == '\u2029';
    }

    /** Escaped as the native side's {@code log_line::escaped} escapes. */
    static String logSafe(String text) {
        StringBuilder out = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (!needsEscape(c)) {
                if (out != null) {
                    out.append(c);
                }
                continue;
            }
            if (out == null) {
                out = new StringBuilder(text.length() + 16).append(text, 0, i);
            }
            if (c == '\n') {
                out.append("\\n");
            } else if (c == '\r') {
                out.append("\\r");
            } else if (c == '\t') {
                out.append("\\t");
            } else {
                out.append("\\u{").append(Integer.toHexString(c)).append('}');
            }
        }
        return out == null ? text : out.toString();
    }

    /**
     * Called by the native side with an escaped record. True when the log took it: the call
     * completed, and the logging system was not shut down under it (log4j2 stops its loggers at
     * JVM shutdown: a record then goes nowhere). The report is sent only when its line was taken.
     */
    static boolean nativeLog(int level, String message) {
        try {
            if (LOGGER != null) {
                switch (level) {
                    case ERROR: LOGGER.error(message); break;
                    case WARN: LOGGER.warn(message); break;
                    case INFO: LOGGER.info(message); break;
                    case DEBUG: LOGGER.debug(message); break;
                    default: LOGGER.trace(message); break;
                }
                return isEnabled(level) || !shuttingDown();
            }
            if (level <= WARN) {
                System.err.println((level == ERROR ? "ERROR " : "WARN ") + "Telemetry: " + message);
                return !System.err.checkError();
            }
            return true; // no logging system: nothing to hand an INFO record to
        } catch (Throwable t) {
            return false; // logging must never hurt the host (a StackOverflowError, say)
        }
    }

    /** True while the JVM runs its shutdown hooks (a hook can then no longer be added). */
    private static boolean shuttingDown() {
        try {
            Thread probe = new Thread();
            Runtime.getRuntime().addShutdownHook(probe);
            Runtime.getRuntime().removeShutdownHook(probe);
            return false;
        } catch (IllegalStateException e) {
            return true;
        }
    }

    private static boolean isEnabled(int level) {
        switch (level) {
            case ERROR: return LOGGER.isErrorEnabled();
            case WARN: return LOGGER.isWarnEnabled();
            case INFO: return LOGGER.isInfoEnabled();
            case DEBUG: return LOGGER.isDebugEnabled();
            default: return LOGGER.isTraceEnabled();
        }
    }
}
