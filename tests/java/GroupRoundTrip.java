import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A consumer group of the official Java client (kafka-clients 3.9.x, the classic
 * protocol and the client's default assignor, range):
 * two KafkaConsumers subscribe to an existing topic and split its partitions;
 * a KafkaProducer (the client's defaults: idempotence on, acks=all) then writes n
 * records, and the two members together read each exactly once, in offset order,
 * committing synchronously; the group's committed offsets are the log ends, and
 * DescribeGroups shows a stable group of two. Then one member leaves (close): the
 * other gets every partition and reads n more records, none of the first n again.
 *
 * Usage: GroupRoundTrip <bootstrap> <topic> <partitions> <n>
 * Prints "OK <2n>" at the end; "FAIL <why>" and exit 1 on any mismatch.
 */
public class GroupRoundTrip {
    static final long DEADLINE_MS = 120_000;

    static void fail(String msg) {
        System.out.println("FAIL " + msg);
        System.out.flush();
        System.exit(1);
    }

    /** One member: its consumer, current assignment and what it read. */
    static final class Member {
        final String name;
        final KafkaConsumer<String, String> consumer;
        final Set<Integer> assigned = new TreeSet<>();
        final List<ConsumerRecord<String, String>> read = new ArrayList<>();

        Member(String name, Properties props, String topic) {
            this.name = name;
            this.consumer = new KafkaConsumer<>(props);
            consumer.subscribe(Collections.singletonList(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    for (TopicPartition tp : parts) assigned.remove(tp.partition());
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    for (TopicPartition tp : parts) assigned.add(tp.partition());
                }
            });
        }

        /** One poll; checks each record belongs to this member's assignment; commits. */
        int poll() {
            int n = 0;
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                if (!assigned.contains(r.partition()))
                    fail(name + " read " + r.topic() + "-" + r.partition() + "@" + r.offset()
                            + " outside its assignment " + assigned);
                read.add(r);
                n++;
            }
            if (n > 0) consumer.commitSync(Duration.ofSeconds(60));
            return n;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: GroupRoundTrip <bootstrap> <topic> <partitions> <n>");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        int n = Integer.parseInt(args[3]);
        String group = "java-group-" + UUID.randomUUID().toString().substring(0, 8);
        Set<Integer> all = new TreeSet<>();
        for (int p = 0; p < partitions; p++) all.add(p);

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        Member a = new Member("a", withClientId(cp, "a"), topic);
        Member b = new Member("b", withClientId(cp, "b"), topic);

        // 1. both members join and split the partitions
        long deadline = System.currentTimeMillis() + DEADLINE_MS;
        while (true) {
            a.poll();
            b.poll();
            Set<Integer> union = new TreeSet<>(a.assigned);
            union.addAll(b.assigned);
            boolean disjoint = Collections.disjoint(a.assigned, b.assigned);
            if (!a.assigned.isEmpty() && !b.assigned.isEmpty() && disjoint && union.equals(all)) break;
            if (System.currentTimeMillis() > deadline)
                fail("the two members never split the partitions: a=" + a.assigned + " b=" + b.assigned);
        }
        System.out.println("assigned a=" + a.assigned + " b=" + b.assigned);
        if (!a.read.isEmpty() || !b.read.isEmpty()) fail("records read from an empty topic");

        // 2. n records, read once each by the member that owns the partition
        List<String> first = produce(bootstrap, topic, partitions, "first", n);
        readUntil(new Member[] {a, b}, n, "first");
        checkExactlyOnce(new Member[] {a, b}, first, partitions, 0);

        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 60000);
        try (Admin admin = Admin.create(ap)) {
            Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(60, TimeUnit.SECONDS);
            for (int p = 0; p < partitions; p++) {
                OffsetAndMetadata om = committed.get(new TopicPartition(topic, p));
                long want = countIn(first, p, partitions);
                if (om == null || om.offset() != want)
                    fail("committed offset of partition " + p + " is " + om + ", expected " + want);
            }
            ConsumerGroupDescription d = admin.describeConsumerGroups(Collections.singletonList(group))
                    .describedGroups().get(group).get(60, TimeUnit.SECONDS);
            if (!d.state().toString().equals("Stable") || d.members().size() != 2
                    || !d.partitionAssignor().equals("range"))
                fail("DescribeGroups: state " + d.state() + ", " + d.members().size() + " members, assignor "
                        + d.partitionAssignor());
        }

        // 3. a leaves; b takes every partition and reads only what is new
        a.consumer.close(Duration.ofSeconds(60));
        deadline = System.currentTimeMillis() + DEADLINE_MS;
        while (!b.assigned.equals(all)) {
            b.poll();
            if (System.currentTimeMillis() > deadline)
                fail("b never got every partition after a left: " + b.assigned);
        }
        int before = b.read.size();
        List<String> second = produce(bootstrap, topic, partitions, "second", n);
        readUntil(new Member[] {b}, before + n, "second");
        List<String> got = new ArrayList<>();
        for (ConsumerRecord<String, String> r : b.read.subList(before, b.read.size())) got.add(r.value());
        Collections.sort(got);
        List<String> want = new ArrayList<>(second);
        Collections.sort(want);
        if (!got.equals(want))
            fail("after a left, b read " + got.size() + " records, expected the " + n + " new ones"
                    + " (first difference near " + firstDifference(got, want) + ")");
        b.consumer.close(Duration.ofSeconds(60));
        System.out.println("OK " + (2 * n));
        System.out.flush();
        System.exit(0);
    }

    static Properties withClientId(Properties base, String id) {
        Properties p = new Properties();
        p.putAll(base);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "group-roundtrip-" + id);
        return p;
    }

    static long countIn(List<String> values, int partition, int partitions) {
        long c = 0;
        for (int i = 0; i < values.size(); i++) if (i % partitions == partition) c++;
        return c;
    }

    static String firstDifference(List<String> a, List<String> b) {
        for (int i = 0; i < Math.min(a.size(), b.size()); i++)
            if (!a.get(i).equals(b.get(i))) return a.get(i) + " / " + b.get(i);
        return a.size() > b.size() ? a.get(b.size()) : (b.size() > a.size() ? b.get(a.size()) : "-");
    }

    static List<String> produce(String bootstrap, String topic, int partitions, String tag, int n)
            throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        List<String> values = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<Future<RecordMetadata>> futures = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                String v = tag + "-" + i;
                values.add(v);
                futures.add(producer.send(new ProducerRecord<>(topic, i % partitions, "k" + i, v)));
            }
            producer.flush();
            for (Future<RecordMetadata> f : futures) f.get(60, TimeUnit.SECONDS);
        }
        return values;
    }

    static void readUntil(Member[] members, int total, String what) {
        long deadline = System.currentTimeMillis() + DEADLINE_MS;
        while (true) {
            int read = 0;
            for (Member m : members) {
                m.poll();
                read += m.read.size();
            }
            if (read >= total) break;
            if (System.currentTimeMillis() > deadline)
                fail("read " + read + " of " + total + " records (" + what + ")");
        }
        // a few more polls: a record delivered twice would show now
        for (int i = 0; i < 10; i++)
            for (Member m : members) m.poll();
    }

    /** Every value read exactly once, by the owner of its partition, offsets dense from `from`. */
    static void checkExactlyOnce(Member[] members, List<String> sent, int partitions, long from) {
        Map<String, Integer> seen = new HashMap<>();
        Map<Integer, List<Long>> offsets = new HashMap<>();
        for (Member m : members) {
            for (ConsumerRecord<String, String> r : m.read) {
                seen.merge(r.value(), 1, Integer::sum);
                offsets.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.offset());
            }
        }
        for (Map.Entry<String, Integer> e : seen.entrySet())
            if (e.getValue() != 1) fail(e.getKey() + " read " + e.getValue() + " times");
        Set<String> want = new HashSet<>(sent);
        if (!seen.keySet().equals(want))
            fail("read " + seen.size() + " distinct values, sent " + want.size());
        for (Map.Entry<Integer, List<Long>> e : offsets.entrySet()) {
            List<Long> offs = e.getValue();
            for (int i = 0; i < offs.size(); i++)
                if (offs.get(i) != from + i)
                    fail("partition " + e.getKey() + ": offset " + offs.get(i) + " at position " + i);
        }
    }
}
