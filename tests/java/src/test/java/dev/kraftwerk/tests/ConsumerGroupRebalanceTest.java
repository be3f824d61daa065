package dev.kraftwerk.tests;

import static dev.kraftwerk.tests.Clients.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Three consumers share a topic through the classic group protocol; one leaves; the other two
 * take over its partitions. Every record must be delivered, and a record may be delivered twice
 * only if it was in a batch whose commit the group refused (at-least-once, nothing more).
 */
@ExtendWith(KraftwerkExtension.class)
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class ConsumerGroupRebalanceTest {
    private static final String TOPIC = "rebalance-events";
    private static final String GROUP = "rebalance-group";
    private static final int PARTITIONS = 6;
    private static final int PER_PHASE = 300;
    private static final Duration SETTLE = Duration.ofSeconds(60);

    @Test
    void threeMembersThenOneLeaves(KraftwerkBroker broker) throws Exception {
        Map<String, Integer> deliveries = GroupMember.newDeliveryMap();
        Set<String> uncommitted = GroupMember.newValueSet();
        List<TopicPartition> all = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            all.add(new TopicPartition(TOPIC, p));
        }

        try (Admin admin = Clients.admin(broker);
             KafkaProducer<String, String> producer = Clients.defaultProducer(broker)) {
            Clients.createTopics(admin, new NewTopic(TOPIC, PARTITIONS, (short) 1));
            produce(producer, 0, PER_PHASE);

            GroupMember a = new GroupMember(broker, GROUP, TOPIC, "member-a", deliveries, uncommitted);
            GroupMember b = new GroupMember(broker, GROUP, TOPIC, "member-b", deliveries, uncommitted);
            GroupMember c = new GroupMember(broker, GROUP, TOPIC, "member-c", deliveries, uncommitted);
            List<GroupMember> three = List.of(a, b, c);
            try {
                // Phase 1: three members split the six partitions and drain the first batch.
                awaitBalanced(three, all);
                awaitDelivered(three, deliveries, PER_PHASE);
                int generationBefore = a.generation();
                Set<TopicPartition> leaversPartitions = c.assignment();
                assertFalse(leaversPartitions.isEmpty(), "member-c had no partitions to hand over");

                // Phase 2: member-c leaves; a and b must take over all six, including c's.
                c.close();
                assertNull(c.failure(), () -> "member-c failed: " + c.failure());
                List<GroupMember> two = List.of(a, b);
                awaitBalanced(two, all);
                assertTrue(a.generation() > generationBefore,
                        "generation must advance after a member leaves: " + generationBefore + " -> " + a.generation());
                Set<TopicPartition> remaining = new HashSet<>(a.assignment());
                remaining.addAll(b.assignment());
                assertTrue(remaining.containsAll(leaversPartitions),
                        "partitions of the leaver " + leaversPartitions + " not reassigned: " + remaining);

                produce(producer, PER_PHASE, PER_PHASE);
                awaitDelivered(two, deliveries, 2 * PER_PHASE);
            } finally {
                for (GroupMember m : three) {
                    m.close();
                }
            }
            for (GroupMember m : three) {
                assertNull(m.failure(), () -> m.name() + " failed: " + m.failure());
            }

            // Nothing lost; duplicates only where a commit was refused.
            for (int i = 0; i < 2 * PER_PHASE; i++) {
                assertTrue(deliveries.containsKey("v-" + i), "record v-" + i + " was never delivered");
            }
            assertEquals(2 * PER_PHASE, deliveries.size(), "unexpected values delivered: " + deliveries.keySet());
            Set<String> unexplained = deliveries.entrySet().stream()
                    .filter(e -> e.getValue() > 1 && !uncommitted.contains(e.getKey()))
                    .map(Map.Entry::getKey).collect(Collectors.toCollection(java.util.TreeSet::new));
            assertTrue(unexplained.isEmpty(), "delivered twice although their offsets were committed: " + unexplained);

            // The group's committed offsets reach the end of every partition.
            Map<TopicPartition, OffsetSpec> latest = all.stream()
                    .collect(Collectors.toMap(tp -> tp, tp -> OffsetSpec.latest()));
            var ends = await(admin.listOffsets(latest).all());
            Map<TopicPartition, OffsetAndMetadata> committed =
                    await(admin.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata());
            for (TopicPartition tp : all) {
                OffsetAndMetadata om = committed.get(tp);
                assertTrue(om != null, "no committed offset for " + tp);
                assertEquals(ends.get(tp).offset(), om.offset(), "committed offset of " + tp);
            }
        }
    }

    private static void produce(KafkaProducer<String, String> producer, int from, int count) throws Exception {
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        for (int i = from; i < from + count; i++) {
            acks.add(producer.send(new ProducerRecord<>(TOPIC, "k-" + i, "v-" + i)));
        }
        producer.flush();
        for (Future<RecordMetadata> f : acks) {
            await(f);
        }
    }

    /** Waits until the members agree on one generation and split {@code all} among themselves. */
    private static void awaitBalanced(List<GroupMember> members, List<TopicPartition> all) throws InterruptedException {
        Clients.eventually(SETTLE, "a balanced assignment of " + all.size() + " partitions over "
                + members.size() + " members", () -> {
            failFast(members);
            Set<Integer> generations = members.stream().map(GroupMember::generation).collect(Collectors.toSet());
            if (generations.size() != 1 || generations.contains(-1)) {
                return false;
            }
            Map<TopicPartition, Integer> owners = new HashMap<>();
            for (GroupMember m : members) {
                if (m.assignment().isEmpty()) {
                    return false;
                }
                for (TopicPartition tp : m.assignment()) {
                    owners.merge(tp, 1, Integer::sum);
                }
            }
            return owners.keySet().equals(new HashSet<>(all)) && owners.values().stream().allMatch(n -> n == 1);
        });
    }

    private static void awaitDelivered(List<GroupMember> members, Map<String, Integer> deliveries, int count)
            throws InterruptedException {
        Clients.eventually(SETTLE, count + " distinct records delivered", () -> {
            failFast(members);
            return deliveries.size() >= count;
        });
    }

    private static void failFast(List<GroupMember> members) {
        for (GroupMember m : members) {
            if (m.failure() != null) {
                throw new AssertionError(m.name() + " stopped with an error", m.failure());
            }
        }
    }
}
