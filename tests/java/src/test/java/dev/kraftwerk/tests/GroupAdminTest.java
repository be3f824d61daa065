package dev.kraftwerk.tests;

import static dev.kraftwerk.tests.Clients.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetOutOfRangeException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * What an operator does to a consumer group with the Admin client: list and describe it while a
 * member is active, read its committed offsets, reset them while it is empty and check a new
 * member resumes there, truncate the log with deleteRecords, delete the group, delete the topic.
 */
@ExtendWith(KraftwerkExtension.class)
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class GroupAdminTest {
    private static final String TOPIC = "ledger";
    private static final String GROUP = "ledger-readers";
    private static final int PER_PARTITION = 50;
    private static final TopicPartition P0 = new TopicPartition(TOPIC, 0);
    private static final TopicPartition P1 = new TopicPartition(TOPIC, 1);

    @Test
    void groupAdministration(KraftwerkBroker broker) throws Exception {
        try (Admin admin = Clients.admin(broker)) {
            Clients.createTopics(admin, new NewTopic(TOPIC, 2, (short) 1));
            try (KafkaProducer<String, String> producer = Clients.defaultProducer(broker)) {
                for (int i = 0; i < PER_PARTITION; i++) {
                    producer.send(new ProducerRecord<>(TOPIC, 0, null, "p0-" + i));
                    producer.send(new ProducerRecord<>(TOPIC, 1, null, "p1-" + i));
                }
                producer.flush();
            }
            Map<TopicPartition, Long> ends = endOffsets(admin);
            assertEquals(Map.of(P0, (long) PER_PARTITION, P1, (long) PER_PARTITION), ends);

            // --- an active member consumes everything and commits.
            try (KafkaConsumer<String, String> member = Clients.consumer(broker, GROUP, "ledger-member-1")) {
                member.subscribe(List.of(TOPIC));
                List<ConsumerRecord<String, String>> got = pollUntil(member, 2 * PER_PARTITION);
                assertEquals(2 * PER_PARTITION, got.size());
                member.commitSync();

                // listGroups (consumer groups) shows it as Stable.
                Collection<GroupListing> groups = await(admin.listGroups(ListGroupsOptions.forConsumerGroups()).all());
                GroupListing listing = groups.stream().filter(g -> g.groupId().equals(GROUP)).findFirst()
                        .orElseThrow(() -> new AssertionError(GROUP + " not listed: " + groups));
                assertEquals("consumer", listing.protocol(), "protocol type");
                listing.groupState().ifPresent(s -> assertEquals(GroupState.STABLE, s));

                // describeConsumerGroups: one member owning both partitions, coordinator = node 1.
                ConsumerGroupDescription d = await(admin.describeConsumerGroups(List.of(GROUP)).all()).get(GROUP);
                assertEquals(GroupState.STABLE, d.groupState());
                assertFalse(d.isSimpleConsumerGroup());
                assertEquals(1, d.coordinator().id());
                assertFalse(d.partitionAssignor().isEmpty(), "assignor name missing");
                assertEquals(1, d.members().size());
                MemberDescription m = d.members().iterator().next();
                assertEquals("ledger-member-1", m.clientId());
                assertEquals(Set.of(P0, P1), m.assignment().topicPartitions());

                // listConsumerGroupOffsets: committed up to the end of both partitions.
                assertEquals(Map.of(P0, (long) PER_PARTITION, P1, (long) PER_PARTITION), committed(admin));

                // An active group can be neither reset nor deleted.
                var deleteActive = admin.deleteConsumerGroups(List.of(GROUP)).all();
                assertThrows(GroupNotEmptyException.class, () -> await(deleteActive));
            }

            // --- the member left: the group is Empty but keeps its offsets.
            Clients.eventually(Duration.ofSeconds(30), GROUP + " empty after the member closed", () -> {
                try {
                    return await(admin.describeConsumerGroups(List.of(GROUP)).all()).get(GROUP).groupState()
                            == GroupState.EMPTY;
                } catch (Exception e) {
                    return false;
                }
            });
            assertEquals(Map.of(P0, (long) PER_PARTITION, P1, (long) PER_PARTITION), committed(admin));

            // --- reset offsets: partition 0 to the beginning, partition 1 to offset 40.
            await(admin.alterConsumerGroupOffsets(GROUP, Map.of(
                    P0, new OffsetAndMetadata(0), P1, new OffsetAndMetadata(40))).all());
            assertEquals(Map.of(P0, 0L, P1, 40L), committed(admin));
            try (KafkaConsumer<String, String> member = Clients.consumer(broker, GROUP, "ledger-member-2")) {
                member.subscribe(List.of(TOPIC));
                List<ConsumerRecord<String, String>> got = pollUntil(member, PER_PARTITION + 10);
                assertEquals(PER_PARTITION + 10, got.size(), "records after reset");
                assertEquals(0, firstOffset(got, 0), "partition 0 resumes at the reset offset");
                assertEquals(40, firstOffset(got, 1), "partition 1 resumes at the reset offset");
                assertEquals("p1-40", got.stream().filter(r -> r.partition() == 1).findFirst()
                        .map(ConsumerRecord::value).orElse(null));
                member.commitSync();
            }

            // --- deleteRecords: partition 0 loses offsets below 20.
            var deleted = admin.deleteRecords(Map.of(P0, RecordsToDelete.beforeOffset(20))).lowWatermarks();
            assertEquals(20, await(deleted.get(P0)).lowWatermark());
            var earliest = await(admin.listOffsets(Map.of(P0, OffsetSpec.earliest())).all());
            assertEquals(20, earliest.get(P0).offset(), "log start offset after deleteRecords");
            try (KafkaConsumer<String, String> reader = Clients.consumer(broker, null, "ledger-reader")) {
                reader.assign(List.of(P0));
                reader.seekToBeginning(List.of(P0));
                List<ConsumerRecord<String, String>> rest = pollUntil(reader, PER_PARTITION - 20);
                assertEquals(20, rest.get(0).offset());
                assertEquals("p0-20", rest.get(0).value());
            }
            // Asking for a deleted offset explicitly is out of range (no reset policy to hide it).
            try (KafkaConsumer<String, String> strict = Clients.consumer(broker, null, "ledger-strict",
                    Map.of(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none"))) {
                strict.assign(List.of(P0));
                strict.seek(P0, 5);
                assertThrows(OffsetOutOfRangeException.class, () -> {
                    Instant deadline = Instant.now().plusSeconds(30);
                    while (Instant.now().isBefore(deadline)) {
                        strict.poll(Duration.ofMillis(200));
                    }
                });
            }

            // --- delete the group: gone from listings, offsets gone.
            await(admin.deleteConsumerGroups(List.of(GROUP)).all());
            Collection<GroupListing> after = await(admin.listGroups(ListGroupsOptions.forConsumerGroups()).all());
            assertTrue(after.stream().noneMatch(g -> g.groupId().equals(GROUP)), "deleted group still listed: " + after);
            Map<TopicPartition, OffsetAndMetadata> left =
                    await(admin.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata());
            assertTrue(left.values().stream().allMatch(o -> o == null), "offsets survived group deletion: " + left);

            // --- delete the topic.
            await(admin.deleteTopics(List.of(TOPIC)).all());
            Clients.eventually(Duration.ofSeconds(30), TOPIC + " gone", () -> {
                try {
                    return !await(admin.listTopics().names()).contains(TOPIC);
                } catch (Exception e) {
                    return false;
                }
            });
        }
    }

    private static Map<TopicPartition, Long> endOffsets(Admin admin) throws Exception {
        var res = await(admin.listOffsets(Map.of(P0, OffsetSpec.latest(), P1, OffsetSpec.latest())).all());
        Map<TopicPartition, Long> out = new HashMap<>();
        res.forEach((tp, info) -> out.put(tp, info.offset()));
        return out;
    }

    private static Map<TopicPartition, Long> committed(Admin admin) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> raw =
                await(admin.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata());
        Map<TopicPartition, Long> out = new HashMap<>();
        raw.forEach((tp, om) -> {
            assertNotNull(om, "null committed offset for " + tp);
            out.put(tp, om.offset());
        });
        return out;
    }

    private static long firstOffset(List<ConsumerRecord<String, String>> records, int partition) {
        return records.stream().filter(r -> r.partition() == partition).findFirst()
                .map(ConsumerRecord::offset).orElseThrow(() -> new AssertionError("nothing from partition " + partition));
    }

    /** Polls until {@code count} records arrived (or 60 s passed), then a little longer to catch extras. */
    private static List<ConsumerRecord<String, String>> pollUntil(KafkaConsumer<String, String> consumer, int count) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        Instant deadline = Instant.now().plusSeconds(60);
        while (out.size() < count && Instant.now().isBefore(deadline)) {
            consumer.poll(Duration.ofMillis(200)).forEach(out::add);
        }
        consumer.poll(Duration.ofMillis(500)).forEach(out::add);
        return out;
    }
}
