package dev.kraftwerk.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.SslConfigs;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Admin-client calls AKHQ makes on its pages (cluster, topics, topic configs and data offsets, broker configs
 * and log dirs, consumer groups and their offsets, ACLs, SCRAM users), replayed over a SASL_SSL listener with the
 * StandardAuthorizer on, as users that hold only DESCRIBE ACLs. AKHQ itself is not on Maven Central (and GitHub is
 * out of reach here), so this is what it would ask.
 *
 * <p>Every expected outcome is Apache Kafka 4.x's, from its authorizer rules: DESCRIBE on a topic or group lets
 * a user see it, list its offsets and its committed offsets; it does not imply DESCRIBE_CONFIGS (topic and broker
 * configs are refused per resource, TOPIC_ / CLUSTER_AUTHORIZATION_FAILED); DescribeLogDirs, DescribeAcls and
 * DescribeUserScramCredentials need DESCRIBE on the cluster; ListGroups lists every group with DESCRIBE on the
 * cluster, else only the groups the user may describe; a topic or group the user may not describe is refused when
 * named and left out of listings. The test passes unchanged against Apache Kafka 4.4
 * ({@code KRAFTWERK_BIN=tests/tools/kafka-as-kraftwerk.sh mvn test -Dtest=AkhqAdminCallsTest}).
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class AkhqAdminCallsTest {
    private static final String PASSWORD = "changeit";
    private static final String PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule";
    private static final String SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule";
    private static final String TOPIC = "akhq-topic";
    private static final String HIDDEN_TOPIC = "hidden-topic";
    private static final String GROUP = "akhq-group";
    private static final String HIDDEN_GROUP = "hidden-group";

    private static void keytool(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            throw new IllegalStateException("keytool " + String.join(" ", args) + ":\n" + out);
        }
    }

    private static Properties client(String bootstrap, Path truststore, String mechanism, String module,
            String user, String password) {
        Properties p = new Properties();
        p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SASL_SSL");
        p.put(SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, truststore.toString());
        p.put(SslConfigs.SSL_TRUSTSTORE_PASSWORD_CONFIG, PASSWORD);
        p.put(SaslConfigs.SASL_MECHANISM, mechanism);
        p.put(SaslConfigs.SASL_JAAS_CONFIG,
                module + " required username=\"" + user + "\" password=\"" + password + "\";");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return p;
    }

    private static AclBinding describe(ResourceType type, String name, String principal) {
        return new AclBinding(new ResourcePattern(type, name, PatternType.LITERAL),
                new AccessControlEntry(principal, "*", AclOperation.DESCRIBE, AclPermissionType.ALLOW));
    }

    /** The cause a future failed with, or null when it succeeded. */
    private static Throwable failure(KafkaFuture<?> future) throws Exception {
        try {
            future.get(30, TimeUnit.SECONDS);
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    private static <T> T get(KafkaFuture<T> future) throws Exception {
        return future.get(30, TimeUnit.SECONDS);
    }

    @Test
    void akhqPagesAsDescribeOnlyUsers(@TempDir Path stores) throws Exception {
        Path brokerKs = stores.resolve("broker.keystore.jks");
        Path brokerCert = stores.resolve("broker.crt");
        Path clientTs = stores.resolve("client.truststore.jks");
        keytool("-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity", "2",
                "-dname", "CN=broker, OU=test", "-ext", "SAN=ip:127.0.0.1", "-storetype", "JKS",
                "-keystore", brokerKs.toString(), "-storepass", PASSWORD, "-keypass", PASSWORD);
        keytool("-exportcert", "-alias", "broker", "-keystore", brokerKs.toString(), "-storepass", PASSWORD,
                "-file", brokerCert.toString());
        keytool("-importcert", "-noprompt", "-alias", "broker", "-file", brokerCert.toString(),
                "-storetype", "JKS", "-keystore", clientTs.toString(), "-storepass", PASSWORD);

        int saslSslPort = KraftwerkBroker.freePorts(1)[0];
        Path dir = Files.createTempDirectory("kraftwerk-java-akhq-");
        try (KraftwerkBroker broker = KraftwerkBroker.start(dir, List.of(
                "listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:" + saslSslPort
                        + ",CONTROLLER://127.0.0.1:{controller_port}",
                "advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:" + saslSslPort,
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                "ssl.keystore.type=JKS",
                "ssl.keystore.location=" + brokerKs,
                "ssl.keystore.password=" + PASSWORD,
                "ssl.key.password=" + PASSWORD,
                "ssl.truststore.type=JKS",
                "ssl.truststore.location=" + clientTs,
                "ssl.truststore.password=" + PASSWORD,
                "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
                "listener.name.sasl_ssl.plain.sasl.jaas.config=" + PLAIN_MODULE
                        + " required user_admin=\"admin-secret\";",
                // Kafka wants a JAAS entry for every enabled mechanism, even one without options.
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=" + SCRAM_MODULE + " required;",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users=User:ANONYMOUS;User:admin",
                "group.initial.rebalance.delay.ms=0"))) {
            String bootstrap = "127.0.0.1:" + saslSslPort;
            Properties admin = client(bootstrap, clientTs, "PLAIN", PLAIN_MODULE, "admin", "admin-secret");

            // The admin sets the stage: two topics with data, two groups with committed offsets, two SCRAM users
            // and their DESCRIBE ACLs (viewer also on the cluster, narrow not).
            try (Admin a = Admin.create(admin)) {
                get(a.createTopics(List.of(new NewTopic(TOPIC, 2, (short) 1),
                        new NewTopic(HIDDEN_TOPIC, 1, (short) 1))).all());
                get(a.alterUserScramCredentials(List.of(
                        new UserScramCredentialUpsertion("viewer",
                                new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), "viewer-secret"),
                        new UserScramCredentialUpsertion("narrow",
                                new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), "narrow-secret")))
                        .all());
                List<AclBinding> acls = new ArrayList<>();
                for (String user : List.of("User:viewer", "User:narrow")) {
                    acls.add(describe(ResourceType.TOPIC, TOPIC, user));
                    acls.add(describe(ResourceType.GROUP, GROUP, user));
                }
                acls.add(describe(ResourceType.CLUSTER, "kafka-cluster", "User:viewer"));
                get(a.createAcls(acls).all());
            }
            Properties pp = new Properties();
            pp.putAll(admin);
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                for (int i = 0; i < 20; i++) {
                    producer.send(new ProducerRecord<>(TOPIC, i % 2, "k" + i, "v" + i)).get(60, TimeUnit.SECONDS);
                }
                producer.send(new ProducerRecord<>(HIDDEN_TOPIC, "k", "v")).get(60, TimeUnit.SECONDS);
            }
            for (String group : List.of(GROUP, HIDDEN_GROUP)) {
                Properties cp = new Properties();
                cp.putAll(admin);
                cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
                cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
                cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
                try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                    String topic = group.equals(GROUP) ? TOPIC : HIDDEN_TOPIC;
                    TopicPartition tp = new TopicPartition(topic, 0);
                    c.assign(List.of(tp));
                    c.commitSync(Map.of(tp, new OffsetAndMetadata(1)), Duration.ofSeconds(30));
                }
            }

            // viewer: DESCRIBE on akhq-topic, akhq-group and the cluster.
            try (Admin v = Admin.create(client(bootstrap, clientTs, "SCRAM-SHA-512", SCRAM_MODULE,
                    "viewer", "viewer-secret"))) {
                // Cluster page.
                DescribeClusterResult cluster = v.describeCluster();
                assertNotNull(get(cluster.clusterId()));
                assertEquals(1, get(cluster.nodes()).size());
                assertNotNull(get(cluster.controller()));

                // Topic list: only what viewer may describe.
                Set<String> names = get(v.listTopics(new ListTopicsOptions().listInternal(true)).names());
                assertTrue(names.contains(TOPIC), "listed: " + names);
                assertFalse(names.contains(HIDDEN_TOPIC), "listed: " + names);
                Map<String, TopicDescription> topics = get(v.describeTopics(List.of(TOPIC)).allTopicNames());
                assertEquals(2, topics.get(TOPIC).partitions().size());
                assertInstanceOf(TopicAuthorizationException.class,
                        failure(v.describeTopics(List.of(HIDDEN_TOPIC)).allTopicNames()));

                // Topic configs and broker configs: DESCRIBE does not imply DESCRIBE_CONFIGS.
                ConfigResource topicConfigs = new ConfigResource(ConfigResource.Type.TOPIC, TOPIC);
                ConfigResource brokerConfigs = new ConfigResource(ConfigResource.Type.BROKER, "1");
                Map<ConfigResource, KafkaFuture<Config>> configs =
                        v.describeConfigs(List.of(topicConfigs, brokerConfigs)).values();
                assertInstanceOf(TopicAuthorizationException.class, failure(configs.get(topicConfigs)));
                assertInstanceOf(ClusterAuthorizationException.class, failure(configs.get(brokerConfigs)));

                // Topic data page: earliest and latest offsets of each partition.
                Map<TopicPartition, OffsetSpec> earliest = new HashMap<>();
                Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
                for (int p = 0; p < 2; p++) {
                    earliest.put(new TopicPartition(TOPIC, p), OffsetSpec.earliest());
                    latest.put(new TopicPartition(TOPIC, p), OffsetSpec.latest());
                }
                Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> lows = get(v.listOffsets(earliest).all());
                Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> highs = get(v.listOffsets(latest).all());
                long total = 0;
                for (TopicPartition tp : latest.keySet()) {
                    assertEquals(0, lows.get(tp).offset(), tp.toString());
                    total += highs.get(tp).offset();
                }
                assertEquals(20, total, "records in " + TOPIC);
                assertInstanceOf(TopicAuthorizationException.class, failure(v.listOffsets(
                        Map.of(new TopicPartition(HIDDEN_TOPIC, 0), OffsetSpec.latest())).all()));

                // Consumer groups page: with DESCRIBE on the cluster every group is listed (Kafka's ListGroups),
                // but only the describable one can be opened.
                @SuppressWarnings("deprecation")
                Collection<ConsumerGroupListing> groups = get(v.listConsumerGroups().all());
                Set<String> groupIds = groups.stream().map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
                assertTrue(groupIds.containsAll(List.of(GROUP, HIDDEN_GROUP)), "listed: " + groupIds);
                Map<String, ConsumerGroupDescription> described =
                        get(v.describeConsumerGroups(List.of(GROUP)).all());
                assertEquals(GROUP, described.get(GROUP).groupId());
                assertInstanceOf(GroupAuthorizationException.class,
                        failure(v.describeConsumerGroups(List.of(HIDDEN_GROUP)).all()));
                Map<TopicPartition, OffsetAndMetadata> committed =
                        get(v.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata());
                assertEquals(1, committed.get(new TopicPartition(TOPIC, 0)).offset());
                assertInstanceOf(GroupAuthorizationException.class,
                        failure(v.listConsumerGroupOffsets(HIDDEN_GROUP).partitionsToOffsetAndMetadata()));

                // Broker page: log dirs (DESCRIBE on the cluster), naming the partitions' replicas.
                Map<Integer, Map<String, LogDirDescription>> logDirs =
                        get(v.describeLogDirs(List.of(1)).allDescriptions());
                assertEquals(1, logDirs.get(1).size(), "one log dir: " + logDirs);
                LogDirDescription logDir = logDirs.get(1).values().iterator().next();
                assertTrue(logDir.replicaInfos().containsKey(new TopicPartition(TOPIC, 0)),
                        "replicas: " + logDir.replicaInfos().keySet());

                // ACL page and SCRAM users (DESCRIBE on the cluster).
                Collection<AclBinding> listed = get(v.describeAcls(AclBindingFilter.ANY).values());
                assertEquals(5, listed.size(), "ACLs: " + listed);
                Map<String, UserScramCredentialsDescription> users = get(v.describeUserScramCredentials().all());
                assertEquals(Set.of("viewer", "narrow"), users.keySet());
                assertEquals(8192, users.get("viewer").credentialInfos().get(0).iterations());
            }

            // narrow: the same DESCRIBE on akhq-topic and akhq-group, none on the cluster.
            try (Admin n = Admin.create(client(bootstrap, clientTs, "SCRAM-SHA-512", SCRAM_MODULE,
                    "narrow", "narrow-secret"))) {
                assertEquals(1, get(n.describeCluster().nodes()).size());
                assertEquals(Set.of(TOPIC), get(n.listTopics().names()));
                @SuppressWarnings("deprecation")
                Collection<ConsumerGroupListing> groups = get(n.listConsumerGroups().all());
                assertEquals(Set.of(GROUP),
                        groups.stream().map(ConsumerGroupListing::groupId).collect(Collectors.toSet()));
                assertEquals(1, get(n.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata())
                        .get(new TopicPartition(TOPIC, 0)).offset());
                assertInstanceOf(ClusterAuthorizationException.class,
                        failure(n.describeLogDirs(List.of(1)).allDescriptions()));
                assertInstanceOf(ClusterAuthorizationException.class,
                        failure(n.describeAcls(AclBindingFilter.ANY).values()));
                assertInstanceOf(ClusterAuthorizationException.class,
                        failure(n.describeUserScramCredentials().all()));
            }
        }
    }
}
