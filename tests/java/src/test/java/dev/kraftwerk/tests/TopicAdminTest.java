package dev.kraftwerk.tests;

import static dev.kraftwerk.tests.Clients.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Topic lifecycle through the Admin client: create (with configs), describe, describe and
 * incrementally alter configs, add partitions, delete. One method so the steps run in order on
 * the same topics, as an operator would do them.
 */
@ExtendWith(KraftwerkExtension.class)
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class TopicAdminTest {
    private static final String ORDERS = "orders";
    private static final String AUDIT = "audit";
    private static final ConfigResource ORDERS_CONFIGS = new ConfigResource(ConfigResource.Type.TOPIC, ORDERS);

    @Test
    void topicLifecycle(KraftwerkBroker broker) throws Exception {
        try (Admin admin = Clients.admin(broker)) {
            // --- create, with a topic config, and check what CreateTopics reports back.
            CreateTopicsResult created = admin.createTopics(List.of(
                    new NewTopic(ORDERS, 3, (short) 1).configs(Map.of("retention.ms", "3600000")),
                    new NewTopic(AUDIT, 1, (short) 1)));
            await(created.all());
            assertEquals(3, await(created.numPartitions(ORDERS)));
            assertEquals(1, await(created.replicationFactor(ORDERS)));
            Uuid ordersId = await(created.topicId(ORDERS));
            assertNotEquals(Uuid.ZERO_UUID, ordersId);
            assertNotEquals(ordersId, await(created.topicId(AUDIT)), "topic ids must be distinct");
            Clients.awaitTopicReady(admin, ORDERS);
            Clients.awaitTopicReady(admin, AUDIT);

            Set<String> names = await(admin.listTopics().names());
            assertTrue(names.containsAll(Set.of(ORDERS, AUDIT)), "listTopics: " + names);

            var dup = admin.createTopics(List.of(new NewTopic(ORDERS, 1, (short) 1))).all();
            assertThrows(TopicExistsException.class, () -> await(dup));

            // --- describe: partitions, leaders, replicas, ISR, and the same topic id.
            TopicDescription orders = await(admin.describeTopics(List.of(ORDERS)).allTopicNames()).get(ORDERS);
            assertEquals(ORDERS, orders.name());
            assertEquals(ordersId, orders.topicId());
            assertFalse(orders.isInternal());
            assertEquals(3, orders.partitions().size());
            for (int i = 0; i < 3; i++) {
                TopicPartitionInfo p = orders.partitions().get(i);
                assertEquals(i, p.partition());
                assertNotNull(p.leader(), "partition " + i + " has no leader");
                assertEquals(1, p.leader().id());
                assertEquals(1, p.replicas().size());
                assertEquals(1, p.isr().size());
            }

            // --- describe configs: the value set at creation is a dynamic topic config.
            ConfigEntry retention = await(admin.describeConfigs(List.of(ORDERS_CONFIGS)).all())
                    .get(ORDERS_CONFIGS).get("retention.ms");
            assertNotNull(retention, "retention.ms missing from DescribeConfigs");
            assertEquals("3600000", retention.value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source());
            Config auditConfig = await(admin.describeConfigs(List.of(
                    new ConfigResource(ConfigResource.Type.TOPIC, AUDIT))).all())
                    .get(new ConfigResource(ConfigResource.Type.TOPIC, AUDIT));
            ConfigEntry cleanup = auditConfig.get("cleanup.policy");
            assertNotNull(cleanup, "cleanup.policy missing from DescribeConfigs");
            assertEquals("delete", cleanup.value());
            assertNotEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, cleanup.source(),
                    "an unset config must not be reported as a topic override");

            // --- incrementalAlterConfigs: SET two keys, then DELETE one back to its default.
            await(admin.incrementalAlterConfigs(Map.of(ORDERS_CONFIGS, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("max.message.bytes", "524288"), AlterConfigOp.OpType.SET))))
                    .all());
            Config altered = await(admin.describeConfigs(List.of(ORDERS_CONFIGS)).all()).get(ORDERS_CONFIGS);
            assertEquals("7200000", altered.get("retention.ms").value());
            assertEquals("524288", altered.get("max.message.bytes").value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, altered.get("max.message.bytes").source());

            await(admin.incrementalAlterConfigs(Map.of(ORDERS_CONFIGS, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE))))
                    .all());
            Config reverted = await(admin.describeConfigs(List.of(ORDERS_CONFIGS)).all()).get(ORDERS_CONFIGS);
            assertNotEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, reverted.get("retention.ms").source());
            assertEquals("604800000", reverted.get("retention.ms").value(), "Kafka's default retention is 7 days");
            assertEquals("524288", reverted.get("max.message.bytes").value(), "untouched key must stay");

            var badValue = admin.incrementalAlterConfigs(Map.of(ORDERS_CONFIGS, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "not-a-number"), AlterConfigOp.OpType.SET))))
                    .all();
            assertThrows(InvalidConfigurationException.class, () -> await(badValue));

            // --- add partitions; shrinking is refused.
            await(admin.createPartitions(Map.of(ORDERS, NewPartitions.increaseTo(5))).all());
            assertEquals(5, await(admin.describeTopics(List.of(ORDERS)).allTopicNames())
                    .get(ORDERS).partitions().size());
            var shrink = admin.createPartitions(Map.of(ORDERS, NewPartitions.increaseTo(2))).all();
            assertThrows(InvalidPartitionsException.class, () -> await(shrink));

            // --- delete both; they disappear from listings and descriptions.
            await(admin.deleteTopics(List.of(ORDERS, AUDIT)).all());
            Clients.eventually(Duration.ofSeconds(30), "deleted topics gone from listTopics", () -> {
                try {
                    Set<String> left = await(admin.listTopics().names());
                    return !left.contains(ORDERS) && !left.contains(AUDIT);
                } catch (Exception e) {
                    return false;
                }
            });
            var gone = admin.describeTopics(List.of(ORDERS)).allTopicNames();
            assertThrows(UnknownTopicOrPartitionException.class, () -> await(gone));
        }
    }
}
