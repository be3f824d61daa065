package dev.kraftwerk.tests;

import static dev.kraftwerk.tests.Clients.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Produce and fetch without consumer groups: the default (idempotent) producer, a producer with
 * idempotence off (so a failure can be pinned on InitProducerId or on Produce itself), and a
 * group-less consumer that reads everything back with keys, values, headers and order intact.
 */
@ExtendWith(KraftwerkExtension.class)
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ProduceConsumeTest {
    private static final int PARTITIONS = 3;
    private static final int RECORDS = 300;

    @Test
    void defaultIdempotentProducerRoundTrip(KraftwerkBroker broker) throws Exception {
        roundTrip(broker, "idempotent-round-trip", Clients.defaultProducer(broker));
    }

    @Test
    void nonIdempotentProducerRoundTrip(KraftwerkBroker broker) throws Exception {
        roundTrip(broker, "plain-round-trip", Clients.nonIdempotentProducer(broker));
    }

    private static void roundTrip(KraftwerkBroker broker, String topic, KafkaProducer<String, String> producer)
            throws Exception {
        try (Admin admin = Clients.admin(broker); producer) {
            Clients.createTopics(admin, new NewTopic(topic, PARTITIONS, (short) 1));

            // Keys spread records over the partitions; the partitioner is the client's own.
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = 0; i < RECORDS; i++) {
                ProducerRecord<String, String> r = new ProducerRecord<>(topic, "key-" + (i % 17), "value-" + i);
                r.headers().add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                acks.add(producer.send(r));
            }
            producer.flush();

            // Offsets the broker assigned: per partition, 0, 1, 2, ... in send order.
            Map<Integer, Long> nextOffset = new HashMap<>();
            Map<String, TopicPartition> partitionOfValue = new HashMap<>();
            Map<String, Long> offsetOfValue = new HashMap<>();
            for (int i = 0; i < RECORDS; i++) {
                RecordMetadata md = await(acks.get(i));
                long expected = nextOffset.getOrDefault(md.partition(), 0L);
                assertEquals(expected, md.offset(), "offset of record " + i + " in partition " + md.partition());
                nextOffset.put(md.partition(), expected + 1);
                partitionOfValue.put("value-" + i, new TopicPartition(topic, md.partition()));
                offsetOfValue.put("value-" + i, md.offset());
            }
            assertTrue(nextOffset.size() > 1, "17 keys should land on more than one partition: " + nextOffset);

            // ListOffsets agrees with what Produce acknowledged.
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            for (int p = 0; p < PARTITIONS; p++) {
                latest.put(new TopicPartition(topic, p), OffsetSpec.latest());
            }
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends = await(admin.listOffsets(latest).all());
            for (int p = 0; p < PARTITIONS; p++) {
                assertEquals(nextOffset.getOrDefault(p, 0L), ends.get(new TopicPartition(topic, p)).offset(),
                        "log end offset of partition " + p);
            }

            // Read everything back without a group.
            List<TopicPartition> all = new ArrayList<>(latest.keySet());
            Map<String, ConsumerRecord<String, String>> seen = new HashMap<>();
            try (KafkaConsumer<String, String> consumer = Clients.consumer(broker, null, topic + "-reader")) {
                consumer.assign(all);
                consumer.seekToBeginning(all);
                Instant deadline = Instant.now().plusSeconds(60);
                Map<Integer, Long> lastOffset = new HashMap<>();
                while (seen.size() < RECORDS && Instant.now().isBefore(deadline)) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                        Long prev = lastOffset.put(r.partition(), r.offset());
                        assertTrue(prev == null || r.offset() == prev + 1,
                                "partition " + r.partition() + " skipped from " + prev + " to " + r.offset());
                        assertTrue(seen.put(r.value(), r) == null, "duplicate " + r.value());
                    }
                }
            }
            assertEquals(RECORDS, seen.size(), "records read back");
            for (int i = 0; i < RECORDS; i++) {
                ConsumerRecord<String, String> r = seen.get("value-" + i);
                assertNotNull(r, "missing value-" + i);
                assertEquals("key-" + (i % 17), r.key());
                assertEquals(partitionOfValue.get(r.value()).partition(), r.partition());
                assertEquals(offsetOfValue.get(r.value()), r.offset());
                Header seq = r.headers().lastHeader("seq");
                assertNotNull(seq, "header lost on value-" + i);
                assertArrayEquals(Integer.toString(i).getBytes(StandardCharsets.UTF_8), seq.value());
                assertTrue(r.timestamp() > 0, "CreateTime must be preserved");
            }
        }
    }
}
