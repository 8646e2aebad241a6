import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeReplicaLogDirsResult.ReplicaLogDirInfo;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.FeatureUpdate;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionReplica;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidUpdateVersionException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * The Java AdminClient (kafka-clients 3.9.x) calls that need Kafka 3.7+/4.x APIs:
 * describeTopics (DescribeTopicPartitions, paginated by a partition limit per
 * response), describeCluster with authorized operations, describeLogDirs,
 * describeMetadataQuorum, describeFeatures and updateFeatures, and dynamic broker configs
 * (the cluster-wide default "" and one broker) seen by a topic.
 *
 * With a third argument, the broker's other log directory, alterReplicaLogDirs moves
 * <prefix>-c's partition there and describeReplicaLogDirs must then show it there.
 *
 * Usage: AdminParity <bootstrap> <topic prefix> [<other log dir>]
 * Prints "OK <check>" per check; exits 1 with "FAIL ..." on the first mismatch.
 */
public class AdminParity {
    static void fail(String msg) {
        System.out.println("FAIL " + msg);
        System.out.flush();
        System.exit(1);
    }

    static void check(boolean ok, String msg) {
        if (!ok) fail(msg);
    }

    /** Sets (or with null deletes) log.retention.ms of a broker resource. */
    static void setRetention(Admin admin, ConfigResource resource, String value) throws Exception {
        AlterConfigOp op = value == null
            ? new AlterConfigOp(new ConfigEntry("log.retention.ms", ""), AlterConfigOp.OpType.DELETE)
            : new AlterConfigOp(new ConfigEntry("log.retention.ms", value), AlterConfigOp.OpType.SET);
        admin.incrementalAlterConfigs(Collections.singletonMap(resource, Collections.singletonList(op)))
            .all().get(30, TimeUnit.SECONDS);
    }

    static void checkTopicRetention(Admin admin, ConfigResource topic, String value,
                                    ConfigEntry.ConfigSource source) throws Exception {
        ConfigEntry e = admin.describeConfigs(Collections.singleton(topic)).all().get(30, TimeUnit.SECONDS)
            .get(topic).get("retention.ms");
        check(e.value().equals(value) && e.source() == source, "topic retention.ms " + e);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String prefix = args[1];
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(props)) {
            // three topics of 5, 3 and 1 partitions
            Map<String, Integer> sizes = new TreeMap<>();
            sizes.put(prefix + "-a", 5);
            sizes.put(prefix + "-b", 3);
            sizes.put(prefix + "-c", 1);
            List<NewTopic> topics = new java.util.ArrayList<>();
            sizes.forEach((name, n) -> topics.add(new NewTopic(name, n, (short) 1)));
            admin.createTopics(topics).all().get(30, TimeUnit.SECONDS);

            // describeTopics pages through DescribeTopicPartitions, 2 partitions a response
            DescribeTopicsOptions paged = new DescribeTopicsOptions()
                .partitionSizeLimitPerResponse(2).includeAuthorizedOperations(true);
            Map<String, TopicDescription> described =
                admin.describeTopics(TopicCollection.ofTopicNames(sizes.keySet()), paged)
                    .allTopicNames().get(30, TimeUnit.SECONDS);
            check(described.keySet().equals(sizes.keySet()), "described " + described.keySet());
            for (Map.Entry<String, Integer> e : sizes.entrySet()) {
                TopicDescription d = described.get(e.getKey());
                check(d.partitions().size() == e.getValue(),
                    e.getKey() + " has " + d.partitions().size() + " partitions");
                for (int i = 0; i < e.getValue(); i++) {
                    check(d.partitions().get(i).partition() == i, e.getKey() + " partition order");
                    check(d.partitions().get(i).leader() != null, e.getKey() + " partition without leader");
                }
                check(d.topicId() != null && !d.isInternal(), e.getKey() + " id/internal");
                check(d.authorizedOperations() != null
                    && d.authorizedOperations().contains(AclOperation.READ)
                    && d.authorizedOperations().contains(AclOperation.WRITE),
                    e.getKey() + " authorized operations " + d.authorizedOperations());
            }
            System.out.println("OK describeTopics");

            try {
                admin.describeTopics(Collections.singleton(prefix + "-missing"))
                    .allTopicNames().get(30, TimeUnit.SECONDS);
                fail("describeTopics of a missing topic succeeded");
            } catch (java.util.concurrent.ExecutionException e) {
                check(e.getCause() instanceof UnknownTopicOrPartitionException,
                    "missing topic: " + e.getCause());
            }
            System.out.println("OK describeTopics missing");

            Set<AclOperation> clusterOps = admin.describeCluster(
                    new DescribeClusterOptions().includeAuthorizedOperations(true))
                .authorizedOperations().get(30, TimeUnit.SECONDS);
            check(clusterOps != null && clusterOps.contains(AclOperation.IDEMPOTENT_WRITE)
                && clusterOps.contains(AclOperation.DESCRIBE_CONFIGS), "cluster operations " + clusterOps);
            System.out.println("OK describeCluster");

            int node = admin.describeCluster().controller().get(30, TimeUnit.SECONDS).id();
            Map<String, LogDirDescription> dirs = admin.describeLogDirs(Collections.singleton(node))
                .allDescriptions().get(30, TimeUnit.SECONDS).get(node);
            check(dirs != null && dirs.size() == (args.length > 2 ? 2 : 1), "log dirs " + dirs);
            ReplicaInfo a0 = null;
            for (LogDirDescription dir : dirs.values()) {
                check(dir.error() == null, "log dir error " + dir.error());
                check(dir.totalBytes().isPresent() && dir.usableBytes().isPresent()
                    && dir.usableBytes().getAsLong() <= dir.totalBytes().getAsLong(), "log dir bytes");
                ReplicaInfo found = dir.replicaInfos().get(new TopicPartition(prefix + "-a", 0));
                a0 = found != null ? found : a0;
            }
            check(a0 != null && a0.size() >= 0, "no replica info of " + prefix + "-a-0 in " + dirs.keySet());
            System.out.println("OK describeLogDirs");

            QuorumInfo quorum = admin.describeMetadataQuorum().quorumInfo().get(30, TimeUnit.SECONDS);
            check(quorum.leaderId() == node, "quorum leader " + quorum.leaderId());
            check(quorum.voters().size() == 1 && quorum.voters().get(0).replicaId() == node,
                "voters " + quorum.voters());
            check(quorum.voters().get(0).logEndOffset() > 0, "voter log end offset");
            System.out.println("OK describeMetadataQuorum");

            FeatureMetadata features = admin.describeFeatures().featureMetadata().get(30, TimeUnit.SECONDS);
            check(features.finalizedFeatures().get("metadata.version").maxVersionLevel() == 27,
                "finalized " + features.finalizedFeatures());
            check(features.finalizedFeatures().get("transaction.version").maxVersionLevel() == 2,
                "transaction.version not finalized at 2: " + features.finalizedFeatures());
            check(features.finalizedFeatures().get("group.version").maxVersionLevel() == 1,
                "group.version not finalized at 1: " + features.finalizedFeatures());
            check(features.supportedFeatures().get("metadata.version").minVersion() == 7
                && features.supportedFeatures().get("transaction.version").maxVersion() == 2
                && features.supportedFeatures().get("group.version").maxVersion() == 1,
                "supported " + features.supportedFeatures());
            check(features.finalizedFeaturesEpoch().isPresent(), "no finalized features epoch");
            admin.updateFeatures(Collections.singletonMap("metadata.version",
                    new FeatureUpdate((short) 27, FeatureUpdate.UpgradeType.UPGRADE)),
                new org.apache.kafka.clients.admin.UpdateFeaturesOptions()).all().get(30, TimeUnit.SECONDS);
            try {
                admin.updateFeatures(Collections.singletonMap("transaction.version",
                        new FeatureUpdate((short) 3, FeatureUpdate.UpgradeType.UPGRADE)),
                    new org.apache.kafka.clients.admin.UpdateFeaturesOptions()).all().get(30, TimeUnit.SECONDS);
                fail("transaction.version 3 accepted");
            } catch (java.util.concurrent.ExecutionException e) {
                check(e.getCause() instanceof InvalidUpdateVersionException, "transaction.version 3: " + e.getCause());
            }
            System.out.println("OK features");

            // dynamic broker configs: the cluster-wide default, then this broker's own value
            ConfigResource clusterDefault = new ConfigResource(ConfigResource.Type.BROKER, "");
            ConfigResource thisBroker = new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(node));
            ConfigResource topicA = new ConfigResource(ConfigResource.Type.TOPIC, prefix + "-a");
            setRetention(admin, clusterDefault, "86400000");
            Config defaults = admin.describeConfigs(Collections.singleton(clusterDefault))
                .all().get(30, TimeUnit.SECONDS).get(clusterDefault);
            check(defaults.entries().size() == 1, "cluster defaults " + defaults);
            ConfigEntry retention = defaults.get("log.retention.ms");
            check(retention.value().equals("86400000")
                && retention.source() == ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, "default " + retention);
            checkTopicRetention(admin, topicA, "86400000", ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG);
            setRetention(admin, thisBroker, "3600000");
            checkTopicRetention(admin, topicA, "3600000", ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG);
            setRetention(admin, thisBroker, null);
            setRetention(admin, clusterDefault, null);
            checkTopicRetention(admin, topicA, "604800000", ConfigEntry.ConfigSource.DEFAULT_CONFIG);
            check(admin.describeConfigs(Collections.singleton(clusterDefault)).all().get(30, TimeUnit.SECONDS)
                .get(clusterDefault).entries().isEmpty(), "cluster defaults left");
            System.out.println("OK dynamic broker configs");

            // client quotas: a user+client-id entity and the default client id
            ClientQuotaEntity both = new ClientQuotaEntity(Map.of(
                ClientQuotaEntity.USER, "alice", ClientQuotaEntity.CLIENT_ID, prefix + "-app"));
            ClientQuotaEntity defaultClient = new ClientQuotaEntity(
                Collections.singletonMap(ClientQuotaEntity.CLIENT_ID, null));
            admin.alterClientQuotas(List.of(
                new ClientQuotaAlteration(both, List.of(
                    new ClientQuotaAlteration.Op("producer_byte_rate", 1048576.0),
                    new ClientQuotaAlteration.Op("consumer_byte_rate", 2097152.0))),
                new ClientQuotaAlteration(defaultClient, List.of(
                    new ClientQuotaAlteration.Op("producer_byte_rate", 4096.0))))).all().get(30, TimeUnit.SECONDS);
            Map<ClientQuotaEntity, Map<String, Double>> quotas = admin.describeClientQuotas(ClientQuotaFilter.containsOnly(
                List.of(ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.USER, "alice"),
                    ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.CLIENT_ID, prefix + "-app"))))
                .entities().get(30, TimeUnit.SECONDS);
            check(quotas.equals(Map.of(both, Map.of("producer_byte_rate", 1048576.0, "consumer_byte_rate", 2097152.0))),
                "quotas of alice/app " + quotas);
            quotas = admin.describeClientQuotas(ClientQuotaFilter.contains(
                List.of(ClientQuotaFilterComponent.ofDefaultEntity(ClientQuotaEntity.CLIENT_ID))))
                .entities().get(30, TimeUnit.SECONDS);
            check(quotas.equals(Map.of(defaultClient, Map.of("producer_byte_rate", 4096.0))), "default client " + quotas);
            admin.alterClientQuotas(List.of(new ClientQuotaAlteration(defaultClient, List.of(
                new ClientQuotaAlteration.Op("producer_byte_rate", null))))).all().get(30, TimeUnit.SECONDS);
            check(admin.describeClientQuotas(ClientQuotaFilter.all()).entities().get(30, TimeUnit.SECONDS).size() == 1,
                "a removed quota is gone");
            System.out.println("OK client quotas");

            if (args.length > 2) {
                TopicPartitionReplica replica = new TopicPartitionReplica(prefix + "-c", 0, node);
                admin.alterReplicaLogDirs(Collections.singletonMap(replica, args[2]))
                    .all().get(30, TimeUnit.SECONDS);
                String canonical = new java.io.File(args[2]).getCanonicalPath();
                long deadline = System.currentTimeMillis() + 60_000;
                while (true) {
                    ReplicaLogDirInfo info = admin.describeReplicaLogDirs(Collections.singleton(replica))
                        .all().get(30, TimeUnit.SECONDS).get(replica);
                    if (canonical.equals(info.getCurrentReplicaLogDir())) break;
                    check(System.currentTimeMillis() < deadline, "replica still in " + info.getCurrentReplicaLogDir());
                    Thread.sleep(100);
                }
                System.out.println("OK alterReplicaLogDirs");
            }
        }
    }
}
