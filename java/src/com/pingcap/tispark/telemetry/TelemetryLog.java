package com.pingcap.tispark.telemetry;

/**
 * Where the native side's log records go: the slf4j logger
 * {@code com.pingcap.tispark.telemetry.Telemetry}, which Spark routes to its own log. Without
 * slf4j on the class path, warnings and errors go to stderr. Never throws.
 */
final class TelemetryLog {
    static final String LOGGER_NAME = "com.pingcap.tispark.telemetry.Telemetry";
    // The levels of Rust's log crate.
    static final int ERROR = 1;
    static final int WARN = 2;
    static final int INFO = 3;
    static final int DEBUG = 4;
    static final int TRACE = 5;

    private static final boolean HAS_SLF4J = hasSlf4j();

    private TelemetryLog() {}

    private static boolean hasSlf4j() {
        try {
            Slf4j.LOGGER.getName();
            return true;
        } catch (Throwable t) {
            return false;
        }
    }

    /** The most detailed level enabled, 0 for none. */
    static int maxLevel() {
        if (!HAS_SLF4J) {
            return WARN;
        }
        try {
            return Slf4j.maxLevel();
        } catch (Throwable t) {
            return WARN;
        }
    }

    /** Called by the native side. */
    static void log(int level, String message) {
        try {
            if (HAS_SLF4J) {
                Slf4j.log(level, message);
            } else if (level <= WARN) {
                System.err.println((level == ERROR ? "ERROR " : "WARN ") + "Telemetry: " + message);
            }
        } catch (Throwable ignored) {
            // logging must never hurt the host
        }
    }

    /** Kept apart so that a missing slf4j fails only here. */
    private static final class Slf4j {
        static final org.slf4j.Logger LOGGER = org.slf4j.LoggerFactory.getLogger(LOGGER_NAME);

        static int maxLevel() {
            if (LOGGER.isTraceEnabled()) return TRACE;
            if (LOGGER.isDebugEnabled()) return DEBUG;
            if (LOGGER.isInfoEnabled()) return INFO;
            if (LOGGER.isWarnEnabled()) return WARN;
            if (LOGGER.isErrorEnabled()) return ERROR;
            return 0;
        }

        static void log(int level, String message) {
            switch (level) {
                case ERROR: LOGGER.error(message); break;
                case WARN: LOGGER.warn(message); break;
                case INFO: LOGGER.info(message); break;
                case DEBUG: LOGGER.debug(message); break;
                default: LOGGER.trace(message); break;
            }
        }
    }
}
