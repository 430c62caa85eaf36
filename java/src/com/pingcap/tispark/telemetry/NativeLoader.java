package com.pingcap.tispark.telemetry;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Loads the native library carried in the jar, once per class loader.
 *
 * <p>The library for the running platform is at {@code /native/<platform>/<lib name>} in the
 * jar ({@link #platform()}); it is copied out and loaded from the copy (several class loaders may
 * each load their own). System properties: {@code tispark.telemetry.native.path} loads that file
 * instead, {@code tispark.telemetry.native.tmpdir} chooses where the copy goes (for a {@code /tmp}
 * mounted noexec), and {@code tispark.telemetry.native.platform} names the platform directory to
 * look in instead of the detected one (for tests, and for a platform detected wrongly). Any
 * failure is one WARN and telemetry off; it is remembered, never retried.
 *
 * <p>The copy is made so that no other local user can change what is loaded: a fresh directory
 * {@code tispark-telemetry-<pid>-<random>}, created atomically with mode 0700 in the temporary
 * directory, holds the library, created there with {@code CREATE_NEW} and mode 0600 (whatever the
 * umask) and written through the handle that created it; after {@code System.load} both are
 * deleted. A JVM killed in between leaves its directory behind: once its report is out, each
 * load sweeps this user's directories of processes that are gone (see {@link #sweepStaleCopies}).
 */
final class NativeLoader {
    static final String PATH_PROPERTY = "tispark.telemetry.native.path";
    static final String TMPDIR_PROPERTY = "tispark.telemetry.native.tmpdir";
    static final String PLATFORM_PROPERTY = "tispark.telemetry.native.platform";
    static final String LIBRARY = Names.LIBRARY;
    /** Each copy's directory is {@code COPY_PREFIX + pid + "-" + random}. */
    static final String COPY_PREFIX = "tispark-telemetry-";
    /**
     * On Linux, a copy of a process that is gone is swept once it is this old: a JVM of another
     * pid namespace sharing the directory (a container) may be extracting under a pid that does
     * not exist here, for the few milliseconds extraction takes.
     */
    static final long SWEEP_DEAD_PID_AFTER_MILLIS = 60_000L;
    /** Without /proc, whether a pid is alive is not known: a copy is swept after an hour. */
    static final long SWEEP_WITHOUT_PROC_AFTER_MILLIS = 3_600_000L;

    private static Boolean loaded;
    /** Where loading took its time, for the DEBUG timings (nanoseconds; guarded by the class). */
    private static long copyNanos;
    private static long loadNanos;
    private static long initNanos;
    /** The temporary directory of this load's copy, and its owner: swept after the report. */
    private static Path sweepIn;
    private static UserPrincipal sweepOwner;

    private NativeLoader() {}

    static synchronized boolean ensureLoaded() {
        if (loaded == null) {
            try {
                load();
                long init = System.nanoTime();
                NativeTelemetry.nativeInit(TelemetryLog.class, TelemetryLog.maxLevel());
                initNanos = System.nanoTime() - init;
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

    /** Where loading took its time: the copy out of the jar, System.load, the native init. */
    static synchronized String timings() {
        return "copied out of the jar in " + copyNanos / 1000 + " µs, System.load "
                + loadNanos / 1000 + " µs, native init " + initNanos / 1000 + " µs";
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

    /**
     * Whether this JVM runs on musl: decided from the C library this process uses, never from
     * what is installed (Debian's {@code musl} package puts {@code /lib/ld-musl-*} on glibc
     * hosts). The program interpreter of {@code /proc/self/exe} (the ELF PT_INTERP, in its first
     * few KiB) says it; a program without one (static) is judged by what is mapped into it.
     * Without positive evidence, glibc.
     */
    static boolean isMusl() {
        try {
            Boolean byInterpreter = muslByInterpreter("/proc/self/exe");
            return byInterpreter != null ? byInterpreter : muslMapped();
        } catch (Throwable t) {
            return false;
        }
    }

    private static boolean isMuslName(String path) {
        return path.contains("ld-musl-") || path.contains("libc.musl-");
    }

    /**
     * True or false from the ELF program interpreter of {@code program} (read from its first
     * 8 KiB only); null when there is none to read there.
     */
    static Boolean muslByInterpreter(String program) throws IOException {
        byte[] head = new byte[8192];
        int n = 0;
        try (InputStream in = new FileInputStream(program)) {
            for (int r; n < head.length && (r = in.read(head, n, head.length - n)) > 0; ) {
                n += r;
            }
        }
        if (n < 52 || head[0] != 0x7f || head[1] != 'E' || head[2] != 'L' || head[3] != 'F') {
            return null;
        }
        boolean is64 = head[4] == 2;
        ByteBuffer b = ByteBuffer.wrap(head, 0, n)
                .order(head[5] == 2 ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN);
        long phoff = is64 ? b.getLong(0x20) : b.getInt(0x1C) & 0xffffffffL;
        int phentsize = b.getShort(is64 ? 0x36 : 0x2A) & 0xffff;
        int phnum = b.getShort(is64 ? 0x38 : 0x2C) & 0xffff;
        if (phentsize < (is64 ? 56 : 32)) {
            return null;
        }
        for (int i = 0; i < phnum; i++) {
            long at = phoff + (long) i * phentsize;
            if (at < 0 || at + phentsize > n) {
                return null; // beyond what was read
            }
            if (b.getInt((int) at) != 3) { // PT_INTERP
                continue;
            }
            long offset = is64 ? b.getLong((int) at + 8) : b.getInt((int) at + 4) & 0xffffffffL;
            long size = is64 ? b.getLong((int) at + 32) : b.getInt((int) at + 16) & 0xffffffffL;
            if (offset < 0 || size <= 0 || offset + size > n) {
                return null;
            }
            String interpreter =
                    new String(head, (int) offset, (int) size, StandardCharsets.ISO_8859_1);
            return isMuslName(interpreter);
        }
        return null;
    }

    /** Whether musl's loader is mapped into this process (/proc/self/maps, first 1 MiB). */
    private static boolean muslMapped() throws IOException {
        byte[] maps = new byte[1 << 20];
        int n = 0;
        try (InputStream in = new FileInputStream("/proc/self/maps")) {
            for (int r; n < maps.length && (r = in.read(maps, n, maps.length - n)) > 0; ) {
                n += r;
            }
        }
        return isMuslName(new String(maps, 0, n, StandardCharsets.ISO_8859_1));
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
            extractAndLoad(in, Paths.get(dir));
        }
    }

    /** Copies the library into a new private directory of {@code tmpdir}, loads, deletes it. */
    private static void extractAndLoad(InputStream in, Path tmpdir) throws IOException {
        boolean posix = tmpdir.getFileSystem().supportedFileAttributeViews().contains("posix");
        if (posix) {
            refuseIfOthersCanRename(tmpdir);
        }
        String prefix = COPY_PREFIX + pid() + "-";
        Path dir = posix
                ? Files.createTempDirectory(tmpdir, prefix, ownerOnly("rwx------"))
                : Files.createTempDirectory(tmpdir, prefix);
        Path lib = dir.resolve(System.mapLibraryName(LIBRARY));
        long copy = System.nanoTime();
        try {
            // Other JVMs' leftovers are swept once the report is out (sweepAfterReport): a
            // temporary directory of thousands of entries would hold up the report.
            try {
                UserPrincipal owner = Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS);
                synchronized (NativeLoader.class) {
                    sweepIn = tmpdir;
                    sweepOwner = owner;
                }
            } catch (IOException | RuntimeException e) {
                // no owner to tell this user's copies by: nothing is swept
            }
            Set<StandardOpenOption> create =
                    EnumSet.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            try (SeekableByteChannel out = posix
                    ? Files.newByteChannel(lib, create, ownerOnly("rw-------"))
                    : Files.newByteChannel(lib, create)) {
                byte[] chunk = new byte[64 * 1024];
                ByteBuffer buffer = ByteBuffer.wrap(chunk);
                for (int r; (r = in.read(chunk)) > 0; ) {
                    buffer.clear();
                    buffer.limit(r);
                    while (buffer.hasRemaining()) {
                        out.write(buffer);
                    }
                }
            }
            long load = System.nanoTime();
            copyNanos = load - copy;
            System.load(lib.toAbsolutePath().toString());
            loadNanos = System.nanoTime() - load;
        } finally {
            // Once mapped, the file is no longer needed (on macOS and Linux alike).
            deleteQuietly(lib);
            deleteQuietly(dir);
        }
    }

    private static FileAttribute<?> ownerOnly(String permissions) {
        return PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(permissions));
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException | RuntimeException ignored) {
            // swept by the next JVM
        }
    }

    /**
     * The copy's directory is safe from other users only if they cannot rename it: refuses a
     * temporary directory that others may write to unless it is sticky (as /tmp is).
     */
    private static void refuseIfOthersCanRename(Path tmpdir) throws IOException {
        Object mode;
        try {
            mode = Files.getAttribute(tmpdir, "unix:mode");
        } catch (UnsupportedOperationException | IllegalArgumentException e) {
            return; // no such view on this JVM: nothing to check with
        }
        if (mode instanceof Integer) {
            int m = (Integer) mode;
            boolean othersMayWrite = (m & 0022) != 0;
            boolean sticky = (m & 01000) != 0;
            if (othersMayWrite && !sticky) {
                throw new IOException("the temporary directory " + tmpdir
                        + " is writable by other users and not sticky, so one of them could"
                        + " replace the library before it is loaded; set -D" + TMPDIR_PROPERTY
                        + "=<a directory other users cannot write to>");
            }
        }
    }

    /**
     * This process's id: on Linux the target of {@code /proc/self} (the management bean is slow
     * to start); elsewhere the management bean's name, {@code <pid>@<host>}.
     */
    static String pid() {
        try {
            String self = new File("/proc/self").getCanonicalFile().getName();
            if (isPid(self)) {
                return self;
            }
        } catch (IOException | RuntimeException ignored) {
            // not Linux
        }
        String name = java.lang.management.ManagementFactory.getRuntimeMXBean().getName();
        int at = name.indexOf('@');
        String pid = at > 0 ? name.substring(0, at) : "";
        return isPid(pid) ? pid : "0";
    }

    private static boolean isPid(String s) {
        if (s.isEmpty() || s.length() > 10) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                return false;
            }
        }
        return true;
    }

    /** The pid in a copy's directory name, or null when the name is not one of ours. */
    static String pidOf(String name) {
        if (!name.startsWith(COPY_PREFIX)) {
            return null;
        }
        String rest = name.substring(COPY_PREFIX.length());
        int dash = rest.indexOf('-');
        String pid = dash > 0 ? rest.substring(0, dash) : "";
        return isPid(pid) ? pid : null;
    }

    /**
     * Sweeps the temporary directory of this class loader's copy (see {@link #sweepStaleCopies}),
     * once, after the sender's work: off the way to the wire. Nothing when no copy was made.
     */
    static void sweepAfterReport() {
        Path tmpdir;
        UserPrincipal owner;
        synchronized (NativeLoader.class) {
            tmpdir = sweepIn;
            owner = sweepOwner;
            sweepIn = null;
        }
        if (tmpdir != null) {
            sweepStaleCopies(tmpdir, owner);
        }
    }

    /**
     * Deletes the copies earlier JVMs of this user left in {@code tmpdir} (killed, or ended within
     * milliseconds of the call): directories named {@code tispark-telemetry-<pid>-*}, owned by
     * {@code me} (the owner of this JVM's own copy), whose process is gone (on Linux, no
     * {@code /proc/<pid>}, and older than a minute) or, without /proc, older than an hour. Never
     * through a symbolic link: an entry that is not itself a directory is left alone, and the
     * directory is opened without following links before its files are deleted. Best effort.
     */
    static void sweepStaleCopies(Path tmpdir, UserPrincipal me) {
        try {
            boolean proc = Files.isDirectory(Paths.get("/proc/self"));
            try (DirectoryStream<Path> entries =
                    Files.newDirectoryStream(tmpdir, COPY_PREFIX + "*")) {
                List<Path> candidates = new ArrayList<>();
                for (Path entry : entries) {
                    candidates.add(entry);
                }
                for (Path entry : candidates) {
                    try {
                        sweepOne(entries, entry, me, proc);
                    } catch (IOException | RuntimeException ignored) {
                        // another JVM swept it first, or it is not ours to delete
                    }
                }
            }
        } catch (Throwable ignored) {
            // sweeping is a courtesy; loading goes on
        }
    }

    private static void sweepOne(DirectoryStream<Path> parent, Path entry, UserPrincipal me,
            boolean proc) throws IOException {
        String pid = pidOf(entry.getFileName().toString());
        if (pid == null) {
            return;
        }
        BasicFileAttributes attrs =
                Files.readAttributes(entry, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (!attrs.isDirectory() || !me.equals(Files.getOwner(entry, LinkOption.NOFOLLOW_LINKS))) {
            return; // a link, a file, or another user's
        }
        long age = System.currentTimeMillis() - attrs.lastModifiedTime().toMillis();
        boolean stale = proc
                ? age > SWEEP_DEAD_PID_AFTER_MILLIS && !Files.exists(Paths.get("/proc", pid))
                : age > SWEEP_WITHOUT_PROC_AFTER_MILLIS;
        if (!stale) {
            return;
        }
        Path name = entry.getFileName();
        if (parent instanceof SecureDirectoryStream) {
            // Relative to the directories' open handles, without following links: the name cannot
            // be swapped for a link between the checks above and the deletes.
            @SuppressWarnings("unchecked")
            SecureDirectoryStream<Path> dirs = (SecureDirectoryStream<Path>) parent;
            try (SecureDirectoryStream<Path> copy =
                    dirs.newDirectoryStream(name, LinkOption.NOFOLLOW_LINKS)) {
                PosixFileAttributes opened =
                        copy.getFileAttributeView(PosixFileAttributeView.class).readAttributes();
                boolean same = String.valueOf(opened.fileKey())
                        .equals(String.valueOf(attrs.fileKey()));
                if (!opened.isDirectory() || !me.equals(opened.owner()) || !same) {
                    return;
                }
                List<Path> files = new ArrayList<>();
                for (Path f : copy) {
                    files.add(f.getFileName());
                }
                for (Path f : files) {
                    copy.deleteFile(f);
                }
            }
            dirs.deleteDirectory(name);
        } else {
            // Without openat: only the library's own name, then the (then empty) directory.
            Files.deleteIfExists(entry.resolve(System.mapLibraryName(LIBRARY)));
            Files.delete(entry);
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
