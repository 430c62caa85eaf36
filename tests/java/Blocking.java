import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

public final class Blocking {
    private static final CountDownLatch RELEASE = new CountDownLatch(1);
    /** The name of the thread that first read a blocking conf. */
    public static volatile String readOn = "none";

    public static void release() {
        RELEASE.countDown();
    }

    static void awaitRelease() {
        while (true) {
            try {
                RELEASE.await();
                return;
            } catch (InterruptedException e) {
                // until released
            }
        }
    }

    static void blockReading() {
        if (readOn.equals("none")) {
            readOn = Thread.currentThread().getName();
        }
        awaitRelease();
    }

    /** An object with String get(String, String), as a conf wrapper has. */
    public static final class Conf {
        private final Map<String, String> values;

        public Conf(Map<String, String> values) {
            this.values = values;
        }

        public String get(String key, String def) {
            blockReading();
            String v = values.get(key);
            return v == null ? def : v;
        }
    }

    /** A Map whose get blocks. */
    public static final class SlowMap extends HashMap<String, String> {
        public SlowMap(Map<String, String> values) {
            super(values);
        }

        @Override
        public String get(Object key) {
            blockReading();
            return super.get(key);
        }
    }

    /** Holds o's monitor on another thread until released (as code iterating a synchronizedMap). */
    public static void holdMonitor(final Object o) throws InterruptedException {
        final CountDownLatch held = new CountDownLatch(1);
        Thread t = new Thread(new Runnable() {
            public void run() {
                synchronized (o) {
                    held.countDown();
                    awaitRelease();
                }
            }
        }, "holds-the-conf");
        t.setDaemon(true);
        t.start();
        held.await();
    }
}
