package com.pingcap.tispark.telemetry;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.zip.ZipException;

/**
 * The sender thread's work ({@link #send}): loads the native library carried in the jar, once per
 * class loader, then hands it the conf's values. One class for both, and for the loader's
 * look-up of its cached library no resource of the jar (why each class and resource of ours
 * counts: docs/performance.md, "Classes of ours on the way").
 *
 * <p>The library for the running platform is at {@code /native/<platform>/<lib name>} in the
 * jar ({@link #platform()}); it is loaded from this user's cache in the temporary directory,
 * copied there once per build ({@link #loadCached}), or, when that cache cannot be used, from a
 * copy made for this JVM alone (below). System properties: {@code tispark.telemetry.native.path}
 * loads that file instead, {@code tispark.telemetry.native.tmpdir} chooses the temporary
 * directory (for a {@code /tmp} mounted noexec), and {@code tispark.telemetry.native.platform} names the platform directory to
 * look in instead of the detected one (for tests, and for a platform detected wrongly). Any
 * failure is one WARN and telemetry off; it is remembered, never retried.
 *
 * <p>That copy is made so that no other local user can change what is loaded: a fresh directory
 * {@code tispark-telemetry-<pid>-<16 random hex digits>}, created atomically with mode 0700 in the
 * temporary directory, holds the library, created there with {@code CREATE_NEW} and mode 0600
 * (whatever the umask) and written through the handle that created it; after {@code System.load}
 * both are deleted. A JVM killed in between leaves its directory behind: once its report is out,
 * each load sweeps this user's directories of processes that are gone, those only that it can
 * prove are such copies (see {@link Upkeep#sweepStaleCopies}); anything else is left alone, whatever its
 * name. On Java 24 and later, the driver needs {@code --enable-native-access=ALL-UNNAMED} (see
 * {@link #isNativeAccessRefused}).
 */
final class NativeLoader {
    static final String PATH_PROPERTY = "tispark.telemetry.native.path";
    static final String TMPDIR_PROPERTY = "tispark.telemetry.native.tmpdir";
    static final String PLATFORM_PROPERTY = "tispark.telemetry.native.platform";
    static final String LIBRARY = Names.LIBRARY;
    /** Each copy's directory is {@code COPY_PREFIX + pid + "-" + 16 random hex digits}. */
    static final String COPY_PREFIX = "tispark-telemetry-";
    /** This user's cache of the library is {@code CACHE_PREFIX + uid} in the temporary directory. */
    static final String CACHE_PREFIX = "tispark-telemetry-cache-";
    /**
     * The SHA-256 (hex) and size of each library in this jar, one line
     * {@code <platform>/<library name> <sha256> <size>} each: java/package.sh writes them into this constant as it
     * compiles the class, after building the libraries. Compiled from the sources alone it is
     * empty, and the library is then copied out of the jar for each JVM, as without a cache.
     */
    static final String LIBRARY_DIGESTS = "";
    /** A copy being written into the cache: {@code .<name>.<pid>-<n>.part}. */
    static final String PART_SUFFIX = ".part";
    private static final int S_IFMT = 0170000;
    private static final int S_IFDIR = 0040000;
    static final int S_IFREG = 0100000;

    private static Boolean loaded;
    /** Where loading took its time, for the DEBUG timings (nanoseconds; guarded by the class). */
    private static long copyNanos;
    private static long loadNanos;
    private static long initNanos;
    /** The temporary directory of this load's copy, and its owner: swept after the report. */
    private static Path sweepIn;
    private static UserPrincipal sweepOwner;
    /** The library this class loader loaded from the cache, if it did: touched after the report. */
    private static Path cachedCopy;
    /** Whether this load wrote the cache's copy (false: it was there already). */
    private static boolean filledCache;

    private NativeLoader() {}

    /**
     * The body of the thread {@code tispark-telemetry-sender} ({@link NativeTelemetry#run()}):
     * reads the switch of a conf the caller's thread did not read, loads the library, and has
     * the native side decide, then build, log and deliver the report. Never throws: a failure is
     * one WARN and telemetry off for the application.
     */
    static void send(Object conf, String tisparkVersion, long calledAt) {
        long started = System.nanoTime();
        boolean off = false;
        boolean loading = false;
        try {
            // A conf the caller's thread did not read: its switch is read here first. Off, as off
            // on the caller's thread: nothing loaded, nothing decided.
            if (NativeTelemetry.mayBeEnabled(conf) == NativeTelemetry.READ_ON_SENDER
                    && !switchMayBeOn(conf)) {
                off = true;
                return;
            }
            loading = true;
            if (ensureLoaded()) {
                long loaded = System.nanoTime();
                decideAndReport(conf, tisparkVersion);
                // Where the time to the wire goes (docs/performance.md), at DEBUG.
                TelemetryLog.log(TelemetryLog.DEBUG, "Telemetry sender timings: started "
                        + (started - calledAt) / 1000 + " µs after the call; native library"
                        + " ready in " + (loaded - started) / 1000 + " µs (" + timings()
                        + "); decided and reported in " + (System.nanoTime() - loaded) / 1000
                        + " µs.");
            }
        } catch (Throwable t) {
            if (t instanceof java.lang.reflect.InvocationTargetException && t.getCause() != null) {
                t = t.getCause(); // thrown by the conf object's own get
            }
            String why = t instanceof IllegalArgumentException ? t.getMessage() : t.toString();
            TelemetryLog.log(TelemetryLog.WARN, "Telemetry is off for this application: " + why);
        } finally {
            if (!off) {
                NativeTelemetry.decided = true;
            }
            if (loading) {
                sweepAfterReport();
            }
        }
    }

    /**
     * Once the library is loaded: the native side decides from the switch's value (and says why
     * it is off); when it is on, this JVM is claimed, the keys the native side names are read from
     * the conf, and it builds, logs and delivers the report from those values.
     */
    private static void decideAndReport(Object conf, String tisparkVersion) throws Exception {
        if (!NativeTelemetry.nativeDecide(read(conf, NativeTelemetry.ENABLE_KEY))) {
            return;
        }
        String[] keys = NativeTelemetry.nativeKeys();
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
        if (System.getProperties().putIfAbsent(Names.REPORTED_PROPERTY, mark) != null) {
            return; // another class loader's copy reported meanwhile
        }
        NativeTelemetry.nativeReport(values, sparkVersion(), tisparkVersion);
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
        if (conf.getClass().getName().equals(NativeTelemetry.SPARK_CONF_CLASS)) {
            return NativeTelemetry.sparkConfValue(conf, key);
        }
        Method get = Getters.GETTER.get(conf.getClass());
        if (get == null) {
            throw new IllegalArgumentException("NativeTelemetry.report was given a "
                    + conf.getClass().getName() + ", which is neither a SparkConf, a java.util.Map,"
                    + " nor has String get(String, String)");
        }
        return (String) get.invoke(conf, key, null);
    }

    /**
     * The switch of a conf the caller's thread did not read: false only when it is certainly off.
     * A read that throws is left to the native side, which names the mistake.
     */
    private static boolean switchMayBeOn(Object conf) {
        try {
            return !NativeTelemetry.isOff(read(conf, NativeTelemetry.ENABLE_KEY));
        } catch (Throwable t) {
            return true;
        }
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

    /**
     * Spark's version, asked by the native side only once telemetry is on: by a direct call when
     * Spark is visible from this class's loader (a look-up by reflection resolves every method
     * of the class, up to 1.5 ms on the way to the wire), else from the thread's context loader.
     */
    private static String sparkVersion() {
        try {
            return org.apache.spark.package$.MODULE$.SPARK_VERSION();
        } catch (Throwable notVisible) {
            // not Spark, or not visible from this class's loader
        }
        try {
            Class<?> pkg = Class.forName("org.apache.spark.package$", true,
                    Thread.currentThread().getContextClassLoader());
            Object module = pkg.getField("MODULE$").get(null);
            return (String) pkg.getMethod("SPARK_VERSION").invoke(module);
        } catch (Throwable ignored) {
            return null; // not Spark
        }
    }

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
                TelemetryLog.log(TelemetryLog.WARN, isNativeAccessRefused(t)
                        ? "Telemetry is off for this application: this JVM refuses native access"
                                + " to the jar's classes (" + t + "). Start the driver's JVM with "
                                + ENABLE_NATIVE_ACCESS + " (spark.driver.extraJavaOptions, or"
                                + " spark-submit --driver-java-options)."
                        : "Telemetry is off for this application: its native library cannot be loaded ("
                                + t + ")." + hint(t));
            }
        }
        return loaded;
    }

    /** Where loading took its time: the copy out of the jar, System.load, the native init. */
    static synchronized String timings() {
        String how = cachedCopy == null ? "copied out of the jar"
                : filledCache ? "copied into this user's cache" : "found in this user's cache";
        return how + " in " + copyNanos / 1000 + " µs, System.load "
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
        String name = System.mapLibraryName(LIBRARY);
        String platform = platform();
        String resource = "/native/" + platform + "/" + name;
        Path tmpdir = Paths.get(System.getProperty(TMPDIR_PROPERTY, System.getProperty("java.io.tmpdir")));
        boolean posix = tmpdir.getFileSystem().supportedFileAttributeViews().contains("posix");
        if (posix) {
            Object uid = uid();
            refuseIfOthersCanRename(tmpdir, uid);
            String[] digest = digestOf(platform + "/" + name);
            if (digest != null) {
                String why = uid == null ? "this user's id cannot be read from /proc/self"
                        : loadCached(tmpdir, platform, resource, name, digest[0],
                                Long.parseLong(digest[1]), uid);
                if (why == null) {
                    return;
                }
                TelemetryLog.log(TelemetryLog.INFO, "Telemetry's native library cache is not used ("
                        + why + "); the library is copied out of the jar for this JVM alone.");
            }
        }
        try (InputStream in = openLibrary(platform, resource)) {
            extractAndLoad(in, tmpdir, posix);
        }
    }

    /** The jar's library for {@code platform}; throws, saying so, when the jar has none. */
    private static InputStream openLibrary(String platform, String resource) {
        InputStream in = NativeLoader.class.getResourceAsStream(resource);
        if (in == null) {
            throw new UnsupportedOperationException("this jar has no native library for "
                    + platform + " (looked for " + resource + ")");
        }
        return in;
    }

    /**
     * Copies {@code in} to {@code out}, feeding {@code digest} as it goes, and returns the bytes
     * copied; stops once more than {@code limit} have come (a damaged jar is not copied whole).
     */
    private static long copy(InputStream in, WritableByteChannel out, MessageDigest digest,
            long limit) throws IOException {
        byte[] chunk = new byte[64 * 1024];
        ByteBuffer buffer = ByteBuffer.wrap(chunk);
        long copied = 0;
        for (int r; copied <= limit && (r = in.read(chunk)) > 0; ) {
            if (digest != null) {
                digest.update(chunk, 0, r);
            }
            copied += r;
            buffer.clear();
            buffer.limit(r);
            while (buffer.hasRemaining()) {
                out.write(buffer);
            }
        }
        return copied;
    }

    /**
     * The SHA-256 (hex) and size of the jar's {@code <platform>/<library name>}, from
     * {@link #LIBRARY_DIGESTS}; null when it names none.
     */
    static String[] digestOf(String library) {
        for (String[] fields : libraryDigests()) {
            if (fields[0].equals(library)) {
                return new String[] {fields[1], fields[2]};
            }
        }
        return null;
    }

    /** The well-formed lines of {@link #LIBRARY_DIGESTS}: {@code {library, sha256, size}} each. */
    static List<String[]> libraryDigests() {
        List<String[]> libraries = new ArrayList<>();
        for (String line : LIBRARY_DIGESTS.split("\n")) {
            String[] fields = line.split(" ");
            if (fields.length == 3 && fields[1].length() == 64 && isDigits(fields[2])) {
                libraries.add(fields);
            }
        }
        return libraries;
    }

    /**
     * Loads the library from this user's cache, {@code <tmpdir>/tispark-telemetry-cache-<uid>},
     * copying it there first when it is not there yet: null when loaded, otherwise why the cache
     * cannot be used (then the caller copies the library for this JVM alone, as without a cache).
     *
     * <p>The cache is used only if it is a directory (not a link) of this user that no one else
     * may enter (mode 0700, created so), in a temporary directory where others cannot rename it
     * (checked before). The library in it is named by its SHA-256, so each build has its own;
     * it is used only if it is a regular file (not a link) of this user, private (0600), of the
     * size the jar names. Anything else there is replaced: written under a fresh name (0600 from
     * the first byte, its SHA-256 checked against the jar's as it is written, synced), then
     * renamed over it. Only this user (or root) can write in the directory, so what passes these
     * checks is what this user's earlier JVM put there.
     */
    private static String loadCached(Path tmpdir, String platform, String resource, String name,
            String sha256, long size, Object uid) throws IOException {
        Path dir = tmpdir.resolve(CACHE_PREFIX + uid);
        try {
            String notPrivate;
            try {
                notPrivate = notPrivate(dir, uid, S_IFDIR);
            } catch (NoSuchFileException first) {
                try {
                    Files.createDirectory(dir, ownerOnly("rwx------"));
                } catch (FileAlreadyExistsException another) {
                    // another JVM made it meanwhile: checked next, whoever made it
                }
                notPrivate = notPrivate(dir, uid, S_IFDIR);
            }
            if (notPrivate != null) {
                return notPrivate;
            }
            int dot = name.lastIndexOf('.');
            Path lib = dir.resolve(name.substring(0, dot) + "-" + sha256.substring(0, 16)
                    + name.substring(dot));
            long copy = System.nanoTime();
            if (!isCachedCopy(lib, uid, size)) {
                fill(dir, lib, platform, resource, sha256, size);
                filledCache = true;
            }
            long load = System.nanoTime();
            copyNanos = load - copy;
            System.load(lib.toAbsolutePath().toString());
            loadNanos = System.nanoTime() - load;
            synchronized (NativeLoader.class) {
                cachedCopy = lib;
                // Stale per-process copies (older versions, killed JVMs) are still swept, by
                // the cache directory's owner (asked after the report, off the way to the wire).
                sweepIn = tmpdir;
                sweepOwner = null;
            }
            return null;
        } catch (ZipException damagedJar) {
            throw damagedJar; // no copy of that library is loaded at all
        } catch (IOException | UnsatisfiedLinkError | RuntimeException e) {
            if (isNativeAccessRefused(e)) {
                throw (RuntimeException) e; // no copy anywhere would be loaded either
            }
            return e.toString();
        }
    }

    /** Why {@code path} is not a private entry of this user of type {@code type}; null when it is. */
    static String notPrivate(Path path, Object uid, int type) throws IOException {
        return notPrivate(path, uid, type, attributes(path));
    }

    private static Map<String, Object> attributes(Path path) throws IOException {
        return Files.readAttributes(path, "unix:uid,mode,size", LinkOption.NOFOLLOW_LINKS);
    }

    private static String notPrivate(Path path, Object uid, int type, Map<String, Object> a) {
        int mode = (Integer) a.get("mode");
        if ((mode & S_IFMT) != type) {
            return path + " is not a " + (type == S_IFDIR ? "directory" : "regular file");
        }
        if (!uid.equals(a.get("uid"))) {
            return path + " belongs to uid " + a.get("uid") + ", not to this user (uid " + uid + ")";
        }
        if ((mode & 077) != 0) {
            return path + " is open to other users (mode " + Integer.toOctalString(mode & 07777) + ")";
        }
        return null;
    }

    /** The cached copy is there, a private regular file of this user, of the jar's size. */
    private static boolean isCachedCopy(Path lib, Object uid, long size) throws IOException {
        try {
            Map<String, Object> a = attributes(lib);
            return notPrivate(lib, uid, S_IFREG, a) == null && a.get("size").equals(size);
        } catch (NoSuchFileException missing) {
            return false;
        }
    }

    /**
     * Writes the jar's library into the cache as {@code lib}: under a fresh name first (0600 from
     * the first byte, never through an existing file), checked against the jar's SHA-256 and
     * size, synced, then renamed over {@code lib}.
     */
    private static void fill(Path dir, Path lib, String platform, String resource, String sha256,
            long size) throws IOException {
        Path part = dir.resolve("." + lib.getFileName() + "." + pid() + "-"
                + Long.toHexString(System.nanoTime()) + PART_SUFFIX);
        try {
            MessageDigest digest;
            try {
                digest = MessageDigest.getInstance("SHA-256");
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new IOException("this JVM has no SHA-256", e);
            }
            long written;
            try (InputStream in = openLibrary(platform, resource);
                    FileChannel out = FileChannel.open(part, EnumSet.of(StandardOpenOption.CREATE_NEW,
                            StandardOpenOption.WRITE), ownerOnly("rw-------"))) {
                written = copy(in, out, digest, size);
                out.force(true);
            }
            String found = hex(digest.digest());
            if (written != size || !found.equals(sha256)) {
                throw new ZipException("the jar's " + resource + " is damaged: " + written
                        + " bytes with SHA-256 " + found + ", where the jar names " + size
                        + " bytes with SHA-256 " + sha256);
            }
            Files.move(part, lib, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            deleteQuietly(part);
        }
    }

    static String hex(byte[] bytes) {
        StringBuilder s = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            s.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
        }
        return s.toString();
    }

    /** Copies the library into a new private directory of {@code tmpdir}, loads, deletes it. */
    private static void extractAndLoad(InputStream in, Path tmpdir, boolean posix)
            throws IOException {
        Path dir = createCopyDirectory(tmpdir, posix);
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
                copy(in, out, null, Long.MAX_VALUE);
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

    /**
     * A new directory {@code tispark-telemetry-<pid>-<16 hex digits>} in {@code tmpdir}, of a
     * random name made here (not {@code Files.createTempDirectory}'s, whose random part has no
     * fixed form): only a name of exactly this form is ever swept. Created atomically, 0700 on a
     * POSIX file system; a name already taken (by anyone, even as a link) is never used.
     */
    private static Path createCopyDirectory(Path tmpdir, boolean posix) throws IOException {
        SecureRandom random = new SecureRandom();
        String prefix = COPY_PREFIX + pid() + "-";
        for (int attempt = 1; ; attempt++) {
            String hex = Long.toHexString(random.nextLong());
            Path dir = tmpdir.resolve(prefix + ZEROS.substring(hex.length()) + hex);
            try {
                return posix ? Files.createDirectory(dir, ownerOnly("rwx------"))
                        : Files.createDirectory(dir);
            } catch (FileAlreadyExistsException taken) {
                if (attempt == 10) {
                    throw taken;
                }
            }
        }
    }

    static final String ZEROS = "0000000000000000";

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

    /** This process's user id (from /proc/self); null where it cannot be read. */
    private static Object uid() {
        try {
            return Files.getAttribute(Paths.get("/proc/self"), "unix:uid");
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /**
     * The library's directory (the cache, or a per-process copy's) is safe from other users only
     * if they cannot rename it and put another in its place between the checks and the load:
     * refuses a temporary directory of another user than this one or root (its owner may rename
     * anything in it), and one that others may write to unless it is sticky (as /tmp is). The
     * directories above it are trusted as whoever set the temporary directory up (a YARN
     * container's belongs to the NodeManager's user, which launches the driver anyway).
     */
    private static void refuseIfOthersCanRename(Path tmpdir, Object uid) throws IOException {
        Map<String, Object> a;
        try {
            a = Files.readAttributes(tmpdir, "unix:mode,uid");
        } catch (UnsupportedOperationException | IllegalArgumentException e) {
            return; // no such view on this JVM: nothing to check with
        }
        Object owner = a.get("uid");
        if (uid != null && owner != null && !owner.equals(uid) && !owner.equals(0)) {
            throw new IOException("the temporary directory " + tmpdir + " belongs to another user"
                    + " (uid " + owner + "), who could replace the library before it is loaded; set -D"
                    + TMPDIR_PROPERTY + "=<a directory of this user's or root's>");
        }
        Object mode = a.get("mode");
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

    private static boolean isDigits(String s) {
        return !s.isEmpty() && s.length() <= 18 && allDigits(s);
    }

    static boolean isPid(String s) {
        return !s.isEmpty() && s.length() <= 10 && allDigits(s);
    }

    private static boolean allDigits(String s) {
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                return false;
            }
        }
        return true;
    }

    /**
     * The pid in a copy's directory name, {@code tispark-telemetry-<pid>-<16 lowercase hex
     * digits>} exactly (see {@link #createCopyDirectory}); null for any other name.
     */
    static String pidOf(String name) {
        if (!name.startsWith(COPY_PREFIX)) {
            return null;
        }
        String rest = name.substring(COPY_PREFIX.length());
        int dash = rest.indexOf('-');
        String pid = dash > 0 ? rest.substring(0, dash) : "";
        String random = dash > 0 ? rest.substring(dash + 1) : "";
        return isPid(pid) && random.length() == ZEROS.length() && isHex(random) ? pid : null;
    }

    /** Lowercase hex digits only (true for the empty string). */
    static boolean isHex(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if ((c < '0' || c > '9') && (c < 'a' || c > 'f')) {
                return false;
            }
        }
        return true;
    }

    /**
     * Sweeps the temporary directory of this class loader's copy (see {@link Upkeep#sweepStaleCopies}),
     * once, after the sender's work: off the way to the wire. Nothing when no copy was made.
     */
    static void sweepAfterReport() {
        Path tmpdir;
        UserPrincipal owner;
        Path cached;
        synchronized (NativeLoader.class) {
            tmpdir = sweepIn;
            owner = sweepOwner;
            sweepIn = null;
            cached = cachedCopy;
        }
        if (tmpdir != null && owner == null && cached != null) {
            try {
                owner = Files.getOwner(cached.getParent(), LinkOption.NOFOLLOW_LINKS);
            } catch (IOException | RuntimeException e) {
                tmpdir = null; // no owner to tell this user's copies by: nothing is swept
            }
        }
        // In a class of its own, loaded only now: off the way to the wire.
        if (tmpdir != null) {
            Upkeep.sweepStaleCopies(tmpdir, owner);
        }
        if (cached != null) {
            Upkeep.tendCache(cached);
        }
    }

    /**
     * Java 24 and later (JEP 472): {@code System.load} from the class path, without
     * {@code --enable-native-access=ALL-UNNAMED}, prints the JVM's four-line "restricted method"
     * warning, or under {@code --illegal-native-access=deny} throws an
     * {@code IllegalCallerException} (a class of Java 9 and later: compiled for Java 8, this class
     * names it by its name), whatever library and wherever it is.
     */
    static boolean isNativeAccessRefused(Throwable t) {
        return t.getClass().getName().equals("java.lang.IllegalCallerException");
    }

    static final String ENABLE_NATIVE_ACCESS = "--enable-native-access=ALL-UNNAMED";

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
