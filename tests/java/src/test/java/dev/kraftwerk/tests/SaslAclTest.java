package dev.kraftwerk.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The Java client on a SASL_PLAINTEXT listener with the StandardAuthorizer on: an admin (PLAIN, super user) creates
 * topics, ACLs through the Admin API and a SCRAM-SHA-512 user; alice (PLAIN) may write and read topics prefixed
 * {@code a-} and read group {@code a-group}, and is refused per resource type elsewhere; bob logs in with the SCRAM
 * credential the Admin API created and, having no ACL, is refused a producer id; deleting an ACL takes effect at
 * once.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class SaslAclTest {
    private static final String PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule";
    private static final String SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule";

    private static Properties client(String bootstrap, String mechanism, String module, String user, String password) {
        Properties p = new Properties();
        p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SASL_PLAINTEXT");
        p.put(SaslConfigs.SASL_MECHANISM, mechanism);
        p.put(SaslConfigs.SASL_JAAS_CONFIG,
                module + " required username=\"" + user + "\" password=\"" + password + "\";");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return p;
    }

    private static KafkaProducer<String, String> producer(Properties base) {
        Properties p = new Properties();
        p.putAll(base);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        return new KafkaProducer<>(p);
    }

    /** The cause of a failed send, or null when it succeeded. */
    private static Throwable send(KafkaProducer<String, String> producer, String topic) throws Exception {
        try {
            producer.send(new ProducerRecord<>(topic, "k", "v")).get(30, TimeUnit.SECONDS);
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    private static AclBinding allow(ResourceType type, String name, PatternType pattern, String principal,
            AclOperation op) {
        return new AclBinding(new ResourcePattern(type, name, pattern),
                new AccessControlEntry(principal, "*", op, AclPermissionType.ALLOW));
    }

    @Test
    void saslUsersUnderAcls() throws Exception {
        int saslPort = KraftwerkBroker.freePorts(1)[0];
        Path dir = Files.createTempDirectory("kraftwerk-java-sasl-");
        try (KraftwerkBroker broker = KraftwerkBroker.start(dir, List.of(
                "listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:" + saslPort
                        + ",CONTROLLER://127.0.0.1:{controller_port}",
                "advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:" + saslPort,
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config=" + PLAIN_MODULE
                        + " required user_admin=\"admin-secret\" user_alice=\"alice-secret\";",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users=User:ANONYMOUS;User:admin"))) {
            String bootstrap = "127.0.0.1:" + saslPort;
            Properties admin = client(bootstrap, "PLAIN", PLAIN_MODULE, "admin", "admin-secret");
            Properties alice = client(bootstrap, "PLAIN", PLAIN_MODULE, "alice", "alice-secret");
            Properties bob = client(bootstrap, "SCRAM-SHA-512", SCRAM_MODULE, "bob", "bob-secret");

            List<AclBinding> acls = List.of(
                    allow(ResourceType.TOPIC, "a-", PatternType.PREFIXED, "User:alice", AclOperation.WRITE),
                    allow(ResourceType.TOPIC, "a-", PatternType.PREFIXED, "User:alice", AclOperation.READ),
                    allow(ResourceType.GROUP, "a-group", PatternType.LITERAL, "User:alice", AclOperation.READ));
            try (Admin a = Admin.create(admin)) {
                a.createTopics(List.of(new NewTopic("a-topic", 1, (short) 1), new NewTopic("b-topic", 1, (short) 1)))
                        .all().get(60, TimeUnit.SECONDS);
                a.createAcls(acls).all().get(60, TimeUnit.SECONDS);
                a.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion("bob",
                        new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), "bob-secret")))
                        .all().get(60, TimeUnit.SECONDS);
                Collection<AclBinding> listed = a.describeAcls(AclBindingFilter.ANY).values().get(30, TimeUnit.SECONDS);
                assertEquals(3, listed.size(), "the three ACLs, listed: " + listed);
            }

            // alice: topics a-* allowed, b-topic refused.
            try (KafkaProducer<String, String> p = producer(alice)) {
                assertEquals(null, send(p, "a-topic"));
                assertInstanceOf(TopicAuthorizationException.class, send(p, "b-topic"));
            }
            // Group a-group allowed; another group refused.
            Properties cp = new Properties();
            cp.putAll(alice);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, "a-group");
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                c.subscribe(List.of("a-topic"));
                List<String> got = new ArrayList<>();
                long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (got.isEmpty() && System.nanoTime() < deadline) {
                    c.poll(Duration.ofMillis(500)).forEach(r -> got.add(r.value()));
                }
                assertEquals(List.of("v"), got);
                c.commitSync();
            }
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, "b-group");
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                c.subscribe(List.of("a-topic"));
                assertThrows(GroupAuthorizationException.class, () -> {
                    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                    while (System.nanoTime() < deadline) {
                        c.poll(Duration.ofMillis(500));
                    }
                });
            }
            // alice may not create topics (no CREATE) nor ACLs (no ALTER on the cluster).
            try (Admin a = Admin.create(alice)) {
                ExecutionException e = assertThrows(ExecutionException.class,
                        () -> a.createTopics(List.of(new NewTopic("a-new", 1, (short) 1))).all().get(30, TimeUnit.SECONDS));
                assertInstanceOf(TopicAuthorizationException.class, e.getCause());
                ExecutionException acl = assertThrows(ExecutionException.class,
                        () -> a.createAcls(List.of(allow(ResourceType.TOPIC, "b-", PatternType.PREFIXED,
                                "User:alice", AclOperation.WRITE))).all().get(30, TimeUnit.SECONDS));
                assertTrue(acl.getCause().getClass().getSimpleName().contains("ClusterAuthorization"),
                        "expected a cluster authorization failure, got " + acl.getCause());
            }
            // bob logs in with the SCRAM credential created above and has no ACL: refused, by the topic's metadata
            // or, whichever the client asks first, by InitProducerId (Kafka wants IDEMPOTENT_WRITE on the cluster or
            // WRITE on some topic for a producer id).
            try (KafkaProducer<String, String> p = producer(bob)) {
                Throwable refused = send(p, "a-topic");
                assertTrue(refused instanceof TopicAuthorizationException
                        || refused instanceof ClusterAuthorizationException, "bob was not refused: " + refused);
            }
            // Deleting alice's WRITE takes effect at once.
            try (Admin a = Admin.create(admin)) {
                a.deleteAcls(List.of(new AclBindingFilter(
                        new ResourcePatternFilter(ResourceType.TOPIC, "a-", PatternType.PREFIXED),
                        new AccessControlEntryFilter("User:alice", "*", AclOperation.WRITE, AclPermissionType.ALLOW))))
                        .all().get(30, TimeUnit.SECONDS);
            }
            try (KafkaProducer<String, String> p = producer(alice)) {
                Throwable refused = null;
                long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                while (refused == null && System.nanoTime() < deadline) {
                    refused = send(p, "a-topic");
                }
                // Without WRITE anywhere she may not get a producer id either (same rule as bob's).
                assertTrue(refused instanceof TopicAuthorizationException
                        || refused instanceof ClusterAuthorizationException, "alice was not refused: " + refused);
            }
        }
    }
}
