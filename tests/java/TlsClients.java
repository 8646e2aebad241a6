import java.io.FileInputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import java.util.HashSet;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java client over a secured listener: every client gets the security
 * settings of a properties file (security.protocol, ssl.keystore.*,
 * ssl.truststore.*, as a Kafka tool's --command-config). AdminClient creates
 * a 2-partition topic and describes the cluster, KafkaProducer (acks=all)
 * sends N records, a KafkaConsumer in a group reads them all and commits.
 *
 * Usage: TlsClients <bootstrap> <topic> <n> <client.properties>
 * Prints "OK cluster <port>,..." (the brokers' advertised ports), "OK produced <n>",
 * "OK consumed <n>"; exits 1 on a mismatch or timeout.
 */
public class TlsClients {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        int n = Integer.parseInt(args[2]);
        Properties security = new Properties();
        try (FileInputStream in = new FileInputStream(args[3])) {
            security.load(in);
        }

        Properties ap = new Properties();
        ap.putAll(security);
        ap.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(Collections.singleton(new NewTopic(topic, 2, (short) 1))).all().get(60, TimeUnit.SECONDS);
            DescribeClusterResult cluster = admin.describeCluster();
            StringBuilder ports = new StringBuilder();
            for (Node node : cluster.nodes().get(60, TimeUnit.SECONDS)) {
                if (ports.length() > 0) ports.append(',');
                ports.append(node.port());
            }
            System.out.println("OK cluster " + ports);
        }

        Properties pp = new Properties();
        pp.putAll(security);
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
            for (int i = 0; i < n; i++) {
                byte[] v = ("java-tls-" + i).getBytes(StandardCharsets.UTF_8);
                producer.send(new ProducerRecord<>(topic, v, v));
            }
            producer.flush();
        }
        System.out.println("OK produced " + n);

        Properties cp = new Properties();
        cp.putAll(security);
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, topic + "-group");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        Set<String> seen = new HashSet<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
            consumer.subscribe(Collections.singleton(topic));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (seen.size() < n && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    seen.add(new String(r.value(), StandardCharsets.UTF_8));
                }
            }
            consumer.commitSync(Duration.ofSeconds(30));
        }
        if (seen.size() != n) {
            System.out.println("FAIL consumed " + seen.size() + " of " + n);
            System.exit(1);
        }
        System.out.println("OK consumed " + n);
    }
}
