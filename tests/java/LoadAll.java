import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;

public class LoadAll {
    static String hex(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            int c = s.charAt(i);
            for (int shift = 12; shift >= 0; shift -= 4) b.append(Character.forDigit((c >> shift) & 15, 16));
        }
        return b.toString();
    }

    static boolean unpaired(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length()
                    && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return true;
            }
        }
        return false;
    }

    // org.apache.spark.util.Utils.trimExceptCRLF, as Spark 3.x and 4.x have it.
    static String trimExceptCRLF(String str) {
        int first = -1, last = -1;
        for (int i = 0; i < str.length(); i++) {
            char ch = str.charAt(i);
            if (ch > ' ' || ch == '\r' || ch == '\n') {
                if (first < 0) first = i;
                last = i;
            }
        }
        return first >= 0 ? str.substring(first, last + 1) : "";
    }

    public static void main(String[] args) throws Exception {
        byte[] bundle = Files.readAllBytes(Paths.get(args[0]));
        PrintStream out = new PrintStream(new BufferedOutputStream(System.out), false, "UTF-8");
        int at = 0;
        while (at < bundle.length) {
            int eol = at;
            while (bundle[eol] != '\n') eol++;
            String[] header = new String(bundle, at, eol - at, StandardCharsets.US_ASCII).split(" ");
            String name = header[0];
            int length = Integer.parseInt(header[1]);
            at = eol + 1;
            InputStream file = new ByteArrayInputStream(bundle, at, length);
            at += length;
            final boolean[] lone = {false};
            Properties p = new Properties() {
                @Override
                public synchronized Object put(Object k, Object v) {
                    if (unpaired((String) k) || unpaired((String) v)) lone[0] = true;
                    return super.put(k, v);
                }
            };
            try (InputStreamReader in = new InputStreamReader(file, StandardCharsets.UTF_8)) {
                p.load(in);
            } catch (Exception e) {
                out.println(name + " ERR " + e.getClass().getName());
                continue;
            }
            StringBuilder line = new StringBuilder(name + " OK " + (lone[0] ? 1 : 0));
            for (String k : p.stringPropertyNames()) {
                line.append(' ').append(hex(k)).append('=').append(hex(trimExceptCRLF(p.getProperty(k))));
            }
            out.println(line);
        }
        out.flush();
    }
}
