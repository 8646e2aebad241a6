import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
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
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Transactions with the official Java client (kafka-clients 3.9.x): a KafkaProducer
 * with a transactional.id commits one transaction of COMMITTED records and aborts
 * one of ABORTED records (flushed to the log before the abort), spread over 3
 * partitions. A read_committed KafkaConsumer (assign + seekToBeginning) must read
 * exactly the committed records, in order per partition; a read_uncommitted one
 * reads both.
 *
 * Usage: TxnRoundTrip <bootstrap> [<committed> <aborted>]
 * Prints "OK <n committed read>" ; exits 1 ("FAIL ...") on any mismatch.
 */
public class TxnRoundTrip {
    static final int PARTITIONS = 3;

    static void fail(String msg) {
        System.out.println("FAIL " + msg);
        System.out.flush();
        System.exit(1);
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: TxnRoundTrip <bootstrap> [<committed> <aborted>]");
            System.exit(2);
        }
        String bootstrap = args[0];
        int committed = args.length > 1 ? Integer.parseInt(args[1]) : 1000;
        int aborted = args.length > 2 ? Integer.parseInt(args[2]) : 500;
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        String topic = "java-txn-" + suffix;

        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 30000);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 60000);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(Collections.singletonList(new NewTopic(topic, PARTITIONS, (short) 1)))
                    .all().get(60, TimeUnit.SECONDS);
            long deadline = System.currentTimeMillis() + 30000;
            while (true) {
                try {
                    TopicDescription d = admin.describeTopics(Collections.singletonList(topic))
                            .allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
                    if (d.partitions().size() == PARTITIONS) break;
                } catch (Exception e) {
                    if (System.currentTimeMillis() > deadline) throw e;
                }
                if (System.currentTimeMillis() > deadline) fail("topic never fully visible");
                Thread.sleep(100);
            }
        }

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "java-txn-" + suffix);
        pp.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

        // expected values per partition, in production order
        Map<Integer, List<String>> committedByPart = new HashMap<>();
        Map<Integer, List<String>> allByPart = new HashMap<>();
        for (int p = 0; p < PARTITIONS; p++) {
            committedByPart.put(p, new ArrayList<>());
            allByPart.put(p, new ArrayList<>());
        }
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
            producer.initTransactions();

            producer.beginTransaction();
            for (int i = 0; i < committed; i++) {
                int p = i % PARTITIONS;
                String v = "committed-" + i;
                producer.send(new ProducerRecord<>(topic, p, b("k" + i), b(v)));
                committedByPart.get(p).add(v);
                allByPart.get(p).add(v);
            }
            producer.commitTransaction();

            producer.beginTransaction();
            for (int i = 0; i < aborted; i++) {
                int p = i % PARTITIONS;
                String v = "aborted-" + i;
                producer.send(new ProducerRecord<>(topic, p, b("k" + i), b(v)));
                allByPart.get(p).add(v);
            }
            producer.flush();  // the aborted records are in the log
            producer.abortTransaction();
        }

        int n = readAll(bootstrap, topic, "read_committed", committedByPart, committed);
        readAll(bootstrap, topic, "read_uncommitted", allByPart, committed + aborted);
        System.out.println("OK " + n);
        System.out.flush();
        System.exit(0);
    }

    static int readAll(String bootstrap, String topic, String isolation,
                       Map<Integer, List<String>> expected, int total) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        Map<Integer, List<String>> got = new HashMap<>();
        for (int p = 0; p < PARTITIONS; p++) got.put(p, new ArrayList<>());
        int count = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) tps.add(new TopicPartition(topic, p));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + 60000;
            while (count < total) {
                if (System.currentTimeMillis() > deadline)
                    fail(isolation + ": timeout, read " + count + " of " + total + " records");
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    got.get(r.partition()).add(new String(r.value(), StandardCharsets.UTF_8));
                    count++;
                }
            }
            // nothing beyond: poll on for a while, and the positions are at the end
            long until = System.currentTimeMillis() + 1500;
            while (System.currentTimeMillis() < until) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    got.get(r.partition()).add(new String(r.value(), StandardCharsets.UTF_8));
                    count++;
                }
            }
            Map<TopicPartition, Long> ends = consumer.endOffsets(tps, Duration.ofSeconds(30));
            for (TopicPartition tp : tps) {
                long pos = consumer.position(tp, Duration.ofSeconds(30));
                if (pos != ends.get(tp))
                    fail(isolation + ": position " + pos + " of " + tp + " != end offset " + ends.get(tp));
            }
        }
        if (count != total) fail(isolation + ": read " + count + " records, expected " + total);
        for (int p = 0; p < PARTITIONS; p++) {
            if (!got.get(p).equals(expected.get(p))) {
                List<String> g = got.get(p), e = expected.get(p);
                int i = 0;
                while (i < g.size() && i < e.size() && g.get(i).equals(e.get(i))) i++;
                fail(isolation + ": partition " + p + " differs at position " + i + ": got "
                        + (i < g.size() ? g.get(i) : "<end>") + ", expected "
                        + (i < e.size() ? e.get(i) : "<end>") + " (" + g.size() + " vs " + e.size() + ")");
            }
        }
        return count;
    }
}
