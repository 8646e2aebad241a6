import java.io.FileInputStream;
import java.time.Duration;
import java.util.Collections;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * What one principal may do, as the Java client sees it (ACL tests): each
 * step prints "RESULT <step> OK" or "RESULT <step> <exception class>", the
 * class of the error's cause (TopicAuthorizationException,
 * GroupAuthorizationException, ...).
 *
 * Usage: AclProbe <bootstrap> <client.properties> <topic> <group> <transactional.id> <new topic>
 * Steps: produce (to topic), commit (offset 0 for the group), create-topic,
 * describe-acls, transaction (init + send + commit with the transactional id).
 */
public class AclProbe {
    interface Step {
        void run() throws Exception;
    }

    static void step(String name, Step s) {
        try {
            s.run();
            System.out.println("RESULT " + name + " OK");
        } catch (Throwable t) {
            Throwable cause = t;
            while ((cause instanceof ExecutionException || cause.getClass().getSimpleName().equals("KafkaException"))
                    && cause.getCause() != null) {
                cause = cause.getCause();
            }
            System.out.println("RESULT " + name + " " + cause.getClass().getSimpleName());
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Properties security = new Properties();
        try (FileInputStream in = new FileInputStream(args[1])) {
            security.load(in);
        }
        String topic = args[2];
        String group = args[3];
        String txid = args[4];
        String newTopic = args[5];

        step("produce", () -> {
            Properties pp = new Properties();
            pp.putAll(security);
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
            pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
            pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "20000");
            pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
            try (KafkaProducer<byte[], byte[]> p =
                    new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
                p.send(new ProducerRecord<>(topic, "k".getBytes(), "v".getBytes())).get(30, TimeUnit.SECONDS);
            }
        });

        step("commit", () -> {
            Properties cp = new Properties();
            cp.putAll(security);
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            try (KafkaConsumer<byte[], byte[]> c =
                    new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                c.commitSync(Collections.singletonMap(new TopicPartition(topic, 0), new OffsetAndMetadata(0)),
                        Duration.ofSeconds(30));
            }
        });

        step("create-topic", () -> {
            Properties ap = new Properties();
            ap.putAll(security);
            ap.put("bootstrap.servers", bootstrap);
            try (Admin admin = Admin.create(ap)) {
                admin.createTopics(Collections.singleton(new NewTopic(newTopic, 1, (short) 1)))
                        .all().get(30, TimeUnit.SECONDS);
            }
        });

        step("describe-acls", () -> {
            Properties ap = new Properties();
            ap.putAll(security);
            ap.put("bootstrap.servers", bootstrap);
            try (Admin admin = Admin.create(ap)) {
                admin.describeAcls(AclBindingFilter.ANY).values().get(30, TimeUnit.SECONDS);
            }
        });

        step("transaction", () -> {
            Properties tp = new Properties();
            tp.putAll(security);
            tp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            tp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
            tp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
            try (KafkaProducer<byte[], byte[]> p =
                    new KafkaProducer<>(tp, new ByteArraySerializer(), new ByteArraySerializer())) {
                p.initTransactions();
                p.beginTransaction();
                p.send(new ProducerRecord<>(topic, "k".getBytes(), "t".getBytes()));
                p.commitTransaction();
            }
        });
    }
}
