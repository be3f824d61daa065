package dev.kraftwerk.tests;

import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** Client factories and waiting helpers shared by the scenario tests. */
final class Clients {
    /** Upper bound for one admin call; a broker that ignores a request fails the test, not hangs it. */
    static final Duration CALL_TIMEOUT = Duration.ofSeconds(30);

    private Clients() {
    }

    static Admin admin(KraftwerkBroker broker) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) CALL_TIMEOUT.toMillis());
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        return Admin.create(p);
    }

    /**
     * A producer with the client's DEFAULT settings (acks=all, enable.idempotence=true, ...):
     * only the address and serializers are set, so it needs InitProducerId and idempotent
     * Produce exactly as an unconfigured application would.
     */
    static KafkaProducer<String, String> defaultProducer(KraftwerkBroker broker) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    /** A producer that opts out of idempotence, to tell a Produce problem from an InitProducerId one. */
    static KafkaProducer<String, String> nonIdempotentProducer(KraftwerkBroker broker) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        return new KafkaProducer<>(p);
    }

    /**
     * A consumer; {@code groupId == null} gives a group-less consumer for assign()/seek().
     * The classic group protocol is chosen explicitly: that is what the broker implements
     * (JoinGroup/SyncGroup/Heartbeat), whatever the client's default is in this version.
     */
    static KafkaConsumer<String, String> consumer(KraftwerkBroker broker, String groupId, String clientId) {
        return consumer(broker, groupId, clientId, Map.of());
    }

    /** As {@link #consumer(KraftwerkBroker, String, String)}, with {@code extra} settings on top. */
    static KafkaConsumer<String, String> consumer(KraftwerkBroker broker, String groupId, String clientId,
                                                  Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) CALL_TIMEOUT.toMillis());
        if (groupId != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
            // Short timeouts so a member that dies is noticed within the test's time budget.
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10_000);
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1_000);
        }
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    /**
     * Creates topics and waits until every partition has a leader that answers ListOffsets.
     * CreateTopics may return before the partitions are served (Apache Kafka itself answers
     * NOT_LEADER for a moment on a busy machine); a test about groups or fetching should not
     * depend on that window.
     */
    static void createTopics(Admin admin, NewTopic... topics) throws Exception {
        await(admin.createTopics(List.of(topics)).all());
        for (NewTopic t : topics) {
            awaitTopicReady(admin, t.name());
        }
    }

    /** Waits until every partition of {@code topic} has a leader whose log end offset can be listed. */
    static void awaitTopicReady(Admin admin, String topic) throws InterruptedException {
        eventually(CALL_TIMEOUT, "topic " + topic + " served by a leader on every partition", () -> {
            try {
                TopicDescription d = await(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
                Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
                for (TopicPartitionInfo p : d.partitions()) {
                    if (p.leader() == null || p.leader().isEmpty()) {
                        return false;
                    }
                    latest.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest());
                }
                await(admin.listOffsets(latest).all());
                return !latest.isEmpty();
            } catch (Exception notYet) {
                return false;
            }
        });
    }

    /** Waits for a client future with {@link #CALL_TIMEOUT}, unwrapping the ExecutionException. */
    static <T> T await(Future<T> future) throws Exception {
        try {
            return future.get(CALL_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof Exception ex) {
                throw ex;
            }
            throw e;
        } catch (TimeoutException e) {
            future.cancel(true);
            throw new AssertionError("no answer within " + CALL_TIMEOUT, e);
        }
    }

    /** Polls {@code condition} every 100 ms until it holds or {@code timeout} passes. */
    static void eventually(Duration timeout, String what, BooleanSupplier condition) throws InterruptedException {
        Instant deadline = Instant.now().plus(timeout);
        while (!condition.getAsBoolean()) {
            if (Instant.now().isAfter(deadline)) {
                throw new AssertionError("timed out after " + timeout + " waiting for: " + what);
            }
            Thread.sleep(100);
        }
    }
}
