import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Round trip with the official Java client (kafka-clients 3.9.x):
 * AdminClient creates a 3-partition topic, KafkaProducer (the client's defaults:
 * idempotence on, acks=all)
 * sends N records with keys and headers, KafkaConsumer (manual assignment, no group)
 * reads them back and compares every field.
 *
 * Usage: RoundTrip <bootstrap> <n> <codec> [<codec> ...]
 * (-Drf=N: the topics' replication factor, 1 by default)
 * Prints "OK <codec> <n>" per codec and "OK <total>" at the end; exits 1 on mismatch.
 */
public class RoundTrip {
    static final int PARTITIONS = 3;

    static final class Expected {
        final byte[] key;
        final byte[] value;
        final List<Header> headers;
        final long timestamp;
        Expected(byte[] key, byte[] value, List<Header> headers, long timestamp) {
            this.key = key; this.value = value; this.headers = headers; this.timestamp = timestamp;
        }
    }

    static void fail(String msg) {
        System.out.println("FAIL " + msg);
        System.out.flush();
        System.exit(1);
    }

    static String show(byte[] b) {
        return b == null ? "null" : "\"" + new String(b, StandardCharsets.UTF_8) + "\"(" + b.length + ")";
    }

    static List<Header> headerList(Iterable<Header> hs) {
        List<Header> out = new ArrayList<>();
        for (Header h : hs) out.add(h);
        return out;
    }

    static boolean sameHeaders(List<Header> a, List<Header> b) {
        if (a.size() != b.size()) return false;
        for (int i = 0; i < a.size(); i++) {
            if (!a.get(i).key().equals(b.get(i).key())) return false;
            if (!Arrays.equals(a.get(i).value(), b.get(i).value())) return false;
        }
        return true;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: RoundTrip <bootstrap> <n> <codec>...");
            System.exit(2);
        }
        String bootstrap = args[0];
        int n = Integer.parseInt(args[1]);
        int total = 0;

        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 30000);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 60000);

        try (Admin admin = Admin.create(ap)) {
            for (int c = 2; c < args.length; c++) {
                String codec = args[c];
                String topic = "java-rt-" + codec + "-" + UUID.randomUUID().toString().substring(0, 8);
                short rf = Integer.getInteger("rf", 1).shortValue();
                admin.createTopics(Collections.singletonList(new NewTopic(topic, PARTITIONS, rf)))
                        .all().get(60, TimeUnit.SECONDS);
                // wait until the topic is described with all partitions
                long deadline = System.currentTimeMillis() + 30000;
                while (true) {
                    try {
                        TopicDescription d = admin.describeTopics(Collections.singletonList(topic))
                                .allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
                        if (d.partitions().size() == PARTITIONS) break;
                    } catch (Exception e) {
                        if (System.currentTimeMillis() > deadline) throw e;
                    }
                    if (System.currentTimeMillis() > deadline) fail(codec + ": topic never fully visible");
                    Thread.sleep(100);
                }
                runOne(bootstrap, topic, codec, n);
                System.out.println("OK " + codec + " " + n);
                System.out.flush();
                total += n;
            }
        }
        System.out.println("OK " + total);
        System.out.flush();
        System.exit(0);
    }

    static void runOne(String bootstrap, String topic, String codec, int n) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        // The client's defaults: idempotence on, acks=all, 5 requests in flight.
        pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        pp.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

        Map<TopicPartition, Map<Long, Expected>> expected = new HashMap<>();
        long baseTs = System.currentTimeMillis() - 3_600_000L;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
            List<Future<RecordMetadata>> futures = new ArrayList<>(n);
            List<Expected> sent = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                byte[] key = (i % 7 == 0) ? null : ("key-" + (i % 101)).getBytes(StandardCharsets.UTF_8);
                byte[] value = (i % 11 == 0) ? null
                        : ("value-" + i + "-" + codec + "-" + "x".repeat(i % 40)).getBytes(StandardCharsets.UTF_8);
                RecordHeaders hs = new RecordHeaders();
                hs.add("idx", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                hs.add("codec", codec.getBytes(StandardCharsets.UTF_8));
                if (i % 3 == 0) {
                    hs.add("dup", "a".getBytes(StandardCharsets.UTF_8));
                    hs.add("dup", new byte[] {0, (byte) 0xff, (byte) i});
                    hs.add("null", null);
                }
                long ts = baseTs + i;
                Integer partition = (key == null) ? Integer.valueOf(i % PARTITIONS) : null;
                ProducerRecord<byte[], byte[]> rec =
                        new ProducerRecord<>(topic, partition, ts, key, value, hs);
                futures.add(producer.send(rec));
                sent.add(new Expected(key, value, headerList(hs), ts));
            }
            producer.flush();
            for (int i = 0; i < n; i++) {
                RecordMetadata md = futures.get(i).get(60, TimeUnit.SECONDS);
                TopicPartition tp = new TopicPartition(topic, md.partition());
                Map<Long, Expected> m = expected.computeIfAbsent(tp, k -> new HashMap<>());
                if (!md.hasOffset()) fail(codec + ": record " + i + " acknowledged without offset");
                if (m.put(md.offset(), sent.get(i)) != null)
                    fail(codec + ": offset " + md.offset() + " of " + tp + " acknowledged twice");
            }
        }
        for (Map.Entry<TopicPartition, Map<Long, Expected>> e : expected.entrySet()) {
            for (long o = 0; o < e.getValue().size(); o++) {
                if (!e.getValue().containsKey(o))
                    fail(codec + ": offsets of " + e.getKey() + " not dense, missing " + o);
            }
        }

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 2000);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) tps.add(new TopicPartition(topic, p));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> next = new HashMap<>();
            for (TopicPartition tp : tps) next.put(tp, 0L);
            int got = 0;
            long deadline = System.currentTimeMillis() + 60000;
            while (got < n) {
                if (System.currentTimeMillis() > deadline)
                    fail(codec + ": timeout, read " + got + " of " + n + " records");
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    long want = next.get(tp);
                    if (r.offset() != want)
                        fail(codec + ": " + tp + " read offset " + r.offset() + ", expected " + want);
                    next.put(tp, want + 1);
                    Map<Long, Expected> m = expected.get(tp);
                    Expected x = m == null ? null : m.get(r.offset());
                    if (x == null) fail(codec + ": unexpected record " + tp + "@" + r.offset());
                    String where = codec + ": " + tp + "@" + r.offset();
                    if (!Arrays.equals(r.key(), x.key))
                        fail(where + " key " + show(r.key()) + " != " + show(x.key));
                    if (!Arrays.equals(r.value(), x.value))
                        fail(where + " value " + show(r.value()) + " != " + show(x.value));
                    if (!sameHeaders(headerList(r.headers()), x.headers))
                        fail(where + " headers " + headerList(r.headers()) + " != " + x.headers);
                    if (r.timestamp() != x.timestamp)
                        fail(where + " timestamp " + r.timestamp() + " != " + x.timestamp);
                    if (!r.timestampType().name.equals("CreateTime"))
                        fail(where + " timestamp type " + r.timestampType());
                    got++;
                }
            }
            // nothing beyond what was produced
            Map<TopicPartition, Long> ends = consumer.endOffsets(tps, Duration.ofSeconds(30));
            for (TopicPartition tp : tps) {
                long exp = expected.containsKey(tp) ? expected.get(tp).size() : 0;
                if (ends.get(tp) != exp) fail(codec + ": end offset of " + tp + " is " + ends.get(tp) + ", expected " + exp);
                if (next.get(tp) != exp) fail(codec + ": read " + next.get(tp) + " from " + tp + ", expected " + exp);
            }
        }
    }
}
