package com.pingcap.tispark.telemetry;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.UserPrincipal;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The upkeep of the temporary directory once the report is out ({@link
 * NativeLoader#sweepAfterReport}): the sweep of the private copies that JVMs killed before
 * deleting them left behind, and the tending of this user's library cache. It deletes only what
 * it can prove the loader made. A class of its own: the sender thread loads it only after the
 * report, so it costs nothing on the way to the wire.
 */
final class Upkeep {
    /**
     * On Linux, a copy of a process that is gone is swept once it is this old: a JVM of another
     * pid namespace sharing the directory (a container) may be extracting under a pid that does
     * not exist here, for the few milliseconds extraction takes.
     */
    static final long SWEEP_DEAD_PID_AFTER_MILLIS = 60_000L;
    /** Without /proc, whether a pid is alive is not known: a copy is swept after an hour. */
    static final long SWEEP_WITHOUT_PROC_AFTER_MILLIS = 3_600_000L;
    /** The most entries one sweep, or one tending of the cache, looks at. */
    static final int SWEEP_MAX_CANDIDATES = 1000;
    /** A cached library no JVM has loaded for this long is deleted (other builds' copies). */
    static final long CACHE_KEEP_MILLIS = 7L * 24 * 3_600_000L;
    /** A {@code .part} file this old is a copy whose JVM died while writing it. */
    static final long PART_KEEP_MILLIS = 3_600_000L;

    private Upkeep() {}

    /**
     * After the report: marks this build's copy as used now, and deletes from the cache what no
     * JVM needs, and only entries of the exact forms this class writes there, each a regular file
     * (not a link) of the cached copy's owner, closed to others: other builds' copies,
     * {@code libtispark_telemetry-<16 hex digits>.so}, unused for {@link #CACHE_KEEP_MILLIS}, and
     * half-written copies, {@code .libtispark_telemetry-<16 hex digits>.so.<pid>-<hex>.part},
     * older than {@link #PART_KEEP_MILLIS} (a JVM died writing them). Anything else there is left
     * alone. The directory is this user's alone (checked before loading). At most
     * {@link #SWEEP_MAX_CANDIDATES} entries are looked at. Best effort.
     */
    static void tendCache(Path cached) {
        try {
            long now = System.currentTimeMillis();
            Files.setLastModifiedTime(cached, FileTime.fromMillis(now));
            Object owner = Files.getAttribute(cached, "unix:uid", LinkOption.NOFOLLOW_LINKS);
            int seen = 0;
            try (DirectoryStream<Path> entries = Files.newDirectoryStream(cached.getParent())) {
                for (Path entry : entries) {
                    if (++seen > SWEEP_MAX_CANDIDATES) {
                        break;
                    }
                    String n = entry.getFileName().toString();
                    long keep = isPartName(n) ? PART_KEEP_MILLIS
                            : isCachedName(n) && !entry.equals(cached) ? CACHE_KEEP_MILLIS : -1;
                    try {
                        if (keep >= 0 && now - Files.getLastModifiedTime(entry,
                                LinkOption.NOFOLLOW_LINKS).toMillis() > keep
                                && NativeLoader.notPrivate(entry, owner, NativeLoader.S_IFREG) == null) {
                            Files.deleteIfExists(entry);
                        }
                    } catch (IOException | RuntimeException ignored) {
                        // another JVM tended it first
                    }
                }
            }
        } catch (Throwable ignored) {
            // tending is a courtesy
        }
    }

    /** A cached copy's name, {@code libtispark_telemetry-<16 hex digits>.so} (see loadCached). */
    static boolean isCachedName(String n) {
        String name = System.mapLibraryName(NativeLoader.LIBRARY);
        int dot = name.lastIndexOf('.');
        String stem = name.substring(0, dot) + "-";
        String ext = name.substring(dot);
        return n.length() == stem.length() + NativeLoader.ZEROS.length() + ext.length() && n.startsWith(stem)
                && n.endsWith(ext) && NativeLoader.isHex(n.substring(stem.length(), n.length() - ext.length()));
    }

    /** A half-written copy's name, {@code .<cached copy's name>.<pid>-<hex>.part} (see fill). */
    static boolean isPartName(String n) {
        if (!n.startsWith(".") || !n.endsWith(NativeLoader.PART_SUFFIX)) {
            return false;
        }
        String middle = n.substring(1, n.length() - NativeLoader.PART_SUFFIX.length());
        int dot = middle.lastIndexOf('.');
        int dash = middle.lastIndexOf('-');
        if (dot < 0 || dash < dot) {
            return false;
        }
        String nanos = middle.substring(dash + 1);
        return isCachedName(middle.substring(0, dot)) && NativeLoader.isPid(middle.substring(dot + 1, dash))
                && !nanos.isEmpty() && nanos.length() <= NativeLoader.ZEROS.length() && NativeLoader.isHex(nanos);
    }

    /**
     * Deletes the copies earlier JVMs of this user left in {@code tmpdir} (killed between
     * extracting and deleting their copy), and only what it can prove is one: a directory named
     * exactly {@code tispark-telemetry-<pid>-<16 hex digits>} (never a link), owned by {@code me}
     * (the owner of this JVM's own copy or cache) and closed to others, whose process is gone (on
     * Linux, no {@code /proc/<pid>}, and older than a minute; without /proc, older than an hour),
     * holding one entry only: the library's file name, a regular file (never a link) of
     * {@code me}, closed to others, whose size and SHA-256 are those of a library of this jar
     * ({@link NativeLoader#LIBRARY_DIGESTS}). Anything else is left alone, whatever its name: a user's
     * directory, a copy with anything beside the library, a copy cut short or of another build.
     * Checked and deleted through a {@link SecureDirectoryStream} (relative to the directories'
     * open handles, never following a link); without one, or without the jar's digests, nothing
     * is swept. At most {@link #SWEEP_MAX_CANDIDATES} names are looked at. Best effort.
     */
    static void sweepStaleCopies(Path tmpdir, UserPrincipal me) {
        try {
            List<String[]> known = NativeLoader.libraryDigests();
            if (known.isEmpty()) {
                return; // compiled from the sources alone: no copy can be proven ours
            }
            boolean proc = Files.isDirectory(Paths.get("/proc/self"));
            try (DirectoryStream<Path> entries =
                    Files.newDirectoryStream(tmpdir, NativeLoader.COPY_PREFIX + "*")) {
                if (!(entries instanceof SecureDirectoryStream)) {
                    return; // without openat, no check would hold until the delete
                }
                @SuppressWarnings("unchecked")
                SecureDirectoryStream<Path> dirs = (SecureDirectoryStream<Path>) entries;
                List<Path> candidates = new ArrayList<>();
                for (Path entry : entries) {
                    if (NativeLoader.pidOf(entry.getFileName().toString()) != null) {
                        candidates.add(entry);
                        if (candidates.size() == SWEEP_MAX_CANDIDATES) {
                            break;
                        }
                    }
                }
                for (Path entry : candidates) {
                    try {
                        sweepOne(dirs, entry, me, proc, known);
                    } catch (IOException | RuntimeException ignored) {
                        // another JVM swept it first, or it is not ours to delete
                    }
                }
            }
        } catch (Throwable ignored) {
            // sweeping is a courtesy; loading goes on
        }
    }

    private static void sweepOne(SecureDirectoryStream<Path> dirs, Path entry, UserPrincipal me,
            boolean proc, List<String[]> known) throws IOException {
        String pid = NativeLoader.pidOf(entry.getFileName().toString());
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
        Path lib = name.getFileSystem().getPath(System.mapLibraryName(NativeLoader.LIBRARY));
        try (SecureDirectoryStream<Path> copy =
                dirs.newDirectoryStream(name, LinkOption.NOFOLLOW_LINKS)) {
            PosixFileAttributes opened =
                    copy.getFileAttributeView(PosixFileAttributeView.class).readAttributes();
            boolean same = String.valueOf(opened.fileKey()).equals(String.valueOf(attrs.fileKey()));
            if (!opened.isDirectory() || !me.equals(opened.owner()) || !same
                    || !ownerOnly(opened.permissions())) {
                return;
            }
            // One entry, the library's name: at most two names are read from a directory.
            int count = 0;
            boolean libraryOnly = true;
            for (Path f : copy) {
                libraryOnly &= f.getFileName().equals(lib);
                if (++count > 1) {
                    break;
                }
            }
            if (count != 1 || !libraryOnly) {
                return;
            }
            PosixFileAttributes file = copy.getFileAttributeView(lib,
                    PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS).readAttributes();
            if (!file.isRegularFile() || !me.equals(file.owner()) || !ownerOnly(file.permissions())
                    || !isKnownLibrary(copy, lib, file.size(), known)) {
                return;
            }
            copy.deleteFile(lib);
        }
        dirs.deleteDirectory(name); // fails, deleting nothing, if anything came in meanwhile
    }

    /** No permission for the group nor for others. */
    private static boolean ownerOnly(Set<PosixFilePermission> permissions) {
        for (PosixFilePermission p : permissions) {
            if (!p.name().startsWith("OWNER_")) {
                return false;
            }
        }
        return true;
    }

    /**
     * Whether {@code lib} in {@code dir} is byte for byte a library of this jar: its size is one
     * the jar names, and its SHA-256 that library's (read up to that size and one byte more).
     */
    private static boolean isKnownLibrary(SecureDirectoryStream<Path> dir, Path lib, long size,
            List<String[]> known) throws IOException {
        for (String[] library : known) {
            if (Long.parseLong(library[2]) != size) {
                continue;
            }
            MessageDigest digest;
            try {
                digest = MessageDigest.getInstance("SHA-256");
            } catch (java.security.NoSuchAlgorithmException e) {
                return false;
            }
            Set<OpenOption> options = new HashSet<>();
            options.add(StandardOpenOption.READ);
            options.add(LinkOption.NOFOLLOW_LINKS);
            long read = 0;
            try (SeekableByteChannel in = dir.newByteChannel(lib, options)) {
                ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
                for (int r; read <= size && (r = in.read(buffer)) > 0; buffer.clear()) {
                    digest.update(buffer.array(), 0, r);
                    read += r;
                }
            }
            if (read == size && NativeLoader.hex(digest.digest()).equals(library[1])) {
                return true;
            }
        }
        return false;
    }
}
