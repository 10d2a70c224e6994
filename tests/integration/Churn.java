// Run by java.test: compiled with javac and run with java, both under the
// shim. Collections, strings, and a few threads; the output is fixed.
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

public class Churn {
    public static void main(String[] args) throws Exception {
        Map<String, Integer> counts = new HashMap<>();
        for (int i = 0; i < 200000; i++)
            counts.merge("k" + (i * 7919 % 5000), 1, Integer::sum);
        TreeMap<String, Integer> sorted = new TreeMap<>(counts);
        System.out.println("keys " + sorted.size() + " first " + sorted.firstKey()
                + " last " + sorted.lastKey() + " k42 " + counts.get("k42"));

        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 100000; i++)
            sb.append(i % 10);
        System.out.println("string " + sb.length() + " " + sb.toString().hashCode());

        AtomicLong total = new AtomicLong();
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            final int id = t;
            Thread th = new Thread(() -> {
                long s = 0;
                List<int[]> keep = new ArrayList<>();
                for (int i = 0; i < 20000; i++) {
                    int[] a = new int[1 + i % 100];
                    a[a.length - 1] = i + id;
                    keep.add(a);
                    s += a[a.length - 1];
                }
                total.addAndGet(s);
            });
            threads.add(th);
            th.start();
        }
        for (Thread th : threads)
            th.join();
        System.out.println("threads total " + total.get());
    }
}
