package com.pingcap.tispark.telemetry;

import java.io.File;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Loads the native library carried in the jar, once per class loader.
 *
 * <p>The library for the running platform is at {@code /native/<platform>/<lib name>} in the
 * jar ({@link #platform()}); it is copied to a unique temporary file (several class loaders may
 * each load their own copy) and loaded from there. System properties:
 * {@code tispark.telemetry.native.path} loads that file instead,
 * {@code tispark.telemetry.native.tmpdir} chooses where the copy goes (for a {@code /tmp}
 * mounted noexec), and {@code tispark.telemetry.native.platform} names the platform directory
 * to look in instead of the detected one (for tests, and for a platform detected wrongly). Any
 * failure is one WARN and telemetry off; it is remembered, never retried.
 */
final class NativeLoader {
    static final String PATH_PROPERTY = "tispark.telemetry.native.path";
    static final String TMPDIR_PROPERTY = "tispark.telemetry.native.tmpdir";
    static final String PLATFORM_PROPERTY = "tispark.telemetry.native.platform";
    static final String LIBRARY = "tispark_telemetry";

    private static Boolean loaded;

    private NativeLoader() {}

    static synchronized boolean ensureLoaded() {
        if (loaded == null) {
            try {
                load();
                NativeTelemetry.nativeInit(TelemetryLog.class, TelemetryLog.maxLevel());
                loaded = true;
            } catch (Throwable t) {
                loaded = false;
                TelemetryLog.log(TelemetryLog.WARN,
                        "Telemetry is off for this application: its native library cannot be loaded ("
                                + t + ")." + hint(t));
            }
        }
        return loaded;
    }

    /**
     * {@code <os>-<arch>}: linux-x86_64, linux-aarch64, linux-musl-x86_64, linux-musl-aarch64,
     * macos-x86_64, macos-aarch64; or {@code tispark.telemetry.native.platform} when set.
     */
    static String platform() {
        String forced = System.getProperty(PLATFORM_PROPERTY);
        if (forced != null && !forced.trim().isEmpty()) {
            return forced.trim();
        }
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (arch.equals("amd64") || arch.equals("x86_64")) {
            arch = "x86_64";
        } else if (arch.equals("arm64") || arch.equals("aarch64")) {
            arch = "aarch64";
        }
        if (os.startsWith("mac") || os.startsWith("darwin")) {
            return "macos-" + arch;
        }
        if (os.startsWith("linux")) {
            return (isMusl() ? "linux-musl-" : "linux-") + arch;
        }
        return os.replace(' ', '_') + "-" + arch;
    }

    private static boolean isMusl() {
        File[] libs = new File("/lib").listFiles((dir, name) -> name.startsWith("ld-musl-"));
        return libs != null && libs.length > 0;
    }

    private static void load() throws Exception {
        String explicit = System.getProperty(PATH_PROPERTY);
        if (explicit != null && !explicit.trim().isEmpty()) {
            System.load(new File(explicit.trim()).getAbsolutePath());
            return;
        }
        String resource = "/native/" + platform() + "/" + System.mapLibraryName(LIBRARY);
        try (InputStream in = NativeLoader.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new UnsupportedOperationException("this jar has no native library for "
                        + platform() + " (looked for " + resource + ")");
            }
            String dir = System.getProperty(TMPDIR_PROPERTY, System.getProperty("java.io.tmpdir"));
            Path copy = Files.createTempFile(Paths.get(dir), "libtispark_telemetry-", ".so");
            try {
                Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
                System.load(copy.toAbsolutePath().toString());
            } finally {
                // Once mapped, the file is no longer needed (on macOS and Linux alike).
                Files.deleteIfExists(copy);
            }
        }
    }

    private static String hint(Throwable t) {
        String m = String.valueOf(t.getMessage());
        if (m.contains("failed to map segment") || m.contains("Operation not permitted")
                || m.contains("noexec")) {
            return " The temporary directory may be mounted noexec: set -D" + TMPDIR_PROPERTY
                    + "=<a directory that allows executables>.";
        }
        if (t instanceof UnsupportedOperationException) {
            return " Build the library for this platform and add it to the jar, or set -D"
                    + PATH_PROPERTY + "=<path to the library>.";
        }
        return "";
    }
}
