import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java client's KIP-848 preview (kafka-clients 3.9.x, group.protocol=consumer:
 * ConsumerGroupHeartbeat v0, OffsetCommit/OffsetFetch v9): two consumers split the
 * topic's partitions (disjoint, complete), read n records exactly once between them
 * and commit them synchronously.
 *
 * Usage: Kip848Preview <bootstrap> <topic> <group> <partitions> <n>
 * Prints "OK <n>" at the end; "FAIL <why>" and exit 1 otherwise.
 */
public class Kip848Preview {
    static void fail(String msg) {
        System.out.println("FAIL " + msg);
        System.out.flush();
        System.exit(1);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2];
        int partitions = Integer.parseInt(args[3]), n = Integer.parseInt(args[4]);
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < n; i++) {
                p.send(new ProducerRecord<>(topic, i % partitions, null, "v" + i)).get();
            }
        }
        List<KafkaConsumer<String, String>> cs = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            cp.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            KafkaConsumer<String, String> c = new KafkaConsumer<>(cp);
            c.subscribe(Collections.singletonList(topic));
            cs.add(c);
        }
        Set<String> seen = new HashSet<>();
        long deadline = System.currentTimeMillis() + 120_000;
        boolean split = false;
        while (System.currentTimeMillis() < deadline && !(split && seen.size() == n)) {
            for (KafkaConsumer<String, String> c : cs) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
                    if (!seen.add(r.partition() + "/" + r.offset())) {
                        fail("read twice: " + r.partition() + "/" + r.offset());
                    }
                }
                c.commitSync();
            }
            Set<TopicPartition> a = cs.get(0).assignment(), b = cs.get(1).assignment();
            Set<TopicPartition> both = new HashSet<>(a);
            both.retainAll(b);
            Set<TopicPartition> all = new HashSet<>(a);
            all.addAll(b);
            split = !a.isEmpty() && !b.isEmpty() && both.isEmpty() && all.size() == partitions;
        }
        if (!split) {
            fail("assignments not split: " + cs.get(0).assignment() + " " + cs.get(1).assignment());
        }
        if (seen.size() != n) {
            fail("read " + seen.size() + " of " + n);
        }
        for (KafkaConsumer<String, String> c : cs) {
            c.close();
        }
        System.out.println("OK " + n);
    }
}
