package dev.kraftwerk.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.SslConfigs;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java client over an SSL listener whose stores were made the way operators make them, with the
 * JDK's keytool: the broker serves a JKS keystore and requires client certificates
 * (ssl.client.auth=required) that chain to a JKS truststore; the client has its own keystore and a
 * truststore holding the broker's certificate. A client without a certificate cannot get in.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class SslTest {
    private static final String PASSWORD = "changeit";

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

    /** A self-signed key pair in a JKS keystore, and its certificate exported to {@code cert}. */
    private static void keyPair(Path store, String alias, String dname, Path cert) throws Exception {
        keytool("-genkeypair", "-alias", alias, "-keyalg", "RSA", "-keysize", "2048", "-validity", "2",
                "-dname", dname, "-ext", "SAN=ip:127.0.0.1", "-storetype", "JKS",
                "-keystore", store.toString(), "-storepass", PASSWORD, "-keypass", PASSWORD);
        keytool("-exportcert", "-alias", alias, "-keystore", store.toString(), "-storepass", PASSWORD,
                "-file", cert.toString());
    }

    private static void trust(Path truststore, String alias, Path cert) throws Exception {
        keytool("-importcert", "-noprompt", "-alias", alias, "-file", cert.toString(), "-storetype", "JKS",
                "-keystore", truststore.toString(), "-storepass", PASSWORD);
    }

    private static Properties ssl(String bootstrap, Path truststore, Path keystore) {
        Properties p = new Properties();
        p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SSL");
        p.put(SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, truststore.toString());
        p.put(SslConfigs.SSL_TRUSTSTORE_PASSWORD_CONFIG, PASSWORD);
        if (keystore != null) {
            p.put(SslConfigs.SSL_KEYSTORE_LOCATION_CONFIG, keystore.toString());
            p.put(SslConfigs.SSL_KEYSTORE_PASSWORD_CONFIG, PASSWORD);
            p.put(SslConfigs.SSL_KEY_PASSWORD_CONFIG, PASSWORD);
        }
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return p;
    }

    @Test
    void javaClientsOverMutualTlsWithKeytoolStores(@TempDir Path stores) throws Exception {
        Path brokerKs = stores.resolve("broker.keystore.jks");
        Path brokerCert = stores.resolve("broker.crt");
        Path clientKs = stores.resolve("client.keystore.jks");
        Path clientCert = stores.resolve("client.crt");
        Path brokerTs = stores.resolve("broker.truststore.jks");
        Path clientTs = stores.resolve("client.truststore.jks");
        keyPair(brokerKs, "broker", "CN=broker, OU=test", brokerCert);
        keyPair(clientKs, "client", "CN=client-1, OU=test", clientCert);
        trust(brokerTs, "client", clientCert);
        trust(clientTs, "broker", brokerCert);

        int sslPort = KraftwerkBroker.freePorts(1)[0];
        Path dir = Files.createTempDirectory("kraftwerk-java-ssl-");
        try (KraftwerkBroker broker = KraftwerkBroker.start(dir, List.of(
                "listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:" + sslPort
                        + ",CONTROLLER://127.0.0.1:{controller_port}",
                "advertised.listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:" + sslPort,
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                "ssl.keystore.type=JKS",
                "ssl.keystore.location=" + brokerKs,
                "ssl.keystore.password=" + PASSWORD,
                "ssl.key.password=" + PASSWORD,
                "ssl.truststore.type=JKS",
                "ssl.truststore.location=" + brokerTs,
                "ssl.truststore.password=" + PASSWORD,
                "ssl.client.auth=required"))) {
            String bootstrap = "127.0.0.1:" + sslPort;
            String topic = "java-over-ssl";
            try (Admin admin = Admin.create(ssl(bootstrap, clientTs, clientKs))) {
                admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(60, TimeUnit.SECONDS);
                var nodes = admin.describeCluster().nodes().get(30, TimeUnit.SECONDS);
                assertEquals(sslPort, nodes.iterator().next().port(), "Metadata over SSL names the SSL endpoint");
            }
            Properties pp = ssl(bootstrap, clientTs, clientKs);
            pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            pp.put(ProducerConfig.ACKS_CONFIG, "all");
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
                for (int i = 0; i < 100; i++) {
                    producer.send(new ProducerRecord<>(topic, "k" + i, "v" + i)).get(60, TimeUnit.SECONDS);
                }
            }
            Properties cp = ssl(bootstrap, clientTs, clientKs);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            List<String> got = new ArrayList<>();
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
                TopicPartition tp = new TopicPartition(topic, 0);
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (got.size() < 100 && System.nanoTime() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                        got.add(r.value());
                    }
                }
            }
            assertEquals(100, got.size(), "records read back over SSL");
            assertEquals("v0", got.get(0));
            assertEquals("v99", got.get(99));

            // Without a client certificate the handshake fails: the admin call cannot complete.
            Properties anonymous = ssl(bootstrap, clientTs, null);
            anonymous.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "8000");
            anonymous.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
            try (Admin admin = Admin.create(anonymous)) {
                assertThrows(ExecutionException.class,
                        () -> admin.describeCluster().nodes().get(30, TimeUnit.SECONDS));
            }
            assertTrue(broker.logTail(400).contains("TLS handshake with the client failed"),
                    "the broker names the failed handshake:\n" + broker.logTail(40));
        }
    }
}
