package dev.kraftwerk.tests;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;

/**
 * One subscribed consumer running its own poll loop on its own thread (KafkaConsumer is not
 * thread-safe), committing synchronously after every batch it processed.
 *
 * <p>It publishes what the test needs to judge the group from outside: its current assignment
 * and generation, how often each record value was delivered to anyone (shared map), and which
 * values were in a batch whose commit failed — the only records at-least-once delivery may
 * hand out twice.
 */
final class GroupMember implements AutoCloseable {
    private final String name;
    private final Thread thread;
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private volatile boolean running = true;
    private volatile Set<TopicPartition> assignment = Set.of();
    private volatile int generation = -1;

    GroupMember(KraftwerkBroker broker, String group, String topic, String name,
                Map<String, Integer> deliveries, Set<String> uncommitted) {
        this.name = name;
        this.thread = new Thread(() -> run(broker, group, topic, deliveries, uncommitted), name);
        this.thread.setDaemon(true);
        this.thread.start();
    }

    private void run(KraftwerkBroker broker, String group, String topic,
                     Map<String, Integer> deliveries, Set<String> uncommitted) {
        try (KafkaConsumer<String, String> consumer = Clients.consumer(broker, group, name)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    assignment = Set.copyOf(consumer.assignment());
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    assignment = Set.copyOf(consumer.assignment());
                    generation = consumer.groupMetadata().generationId();
                }
            });
            while (running) {
                ConsumerRecords<String, String> batch = consumer.poll(Duration.ofMillis(100));
                if (batch.isEmpty()) {
                    continue;
                }
                Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
                for (ConsumerRecord<String, String> r : batch) {
                    deliveries.merge(r.value(), 1, Integer::sum);
                    commit.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                try {
                    consumer.commitSync(commit);
                } catch (CommitFailedException | RebalanceInProgressException e) {
                    // The group moved on under us: these records may be delivered again elsewhere.
                    batch.forEach(r -> uncommitted.add(r.value()));
                }
            }
        } catch (Throwable t) {
            failure.set(t);
        } finally {
            assignment = Set.of();
        }
    }

    String name() {
        return name;
    }

    Set<TopicPartition> assignment() {
        return assignment;
    }

    int generation() {
        return generation;
    }

    /** The exception that ended the poll loop, if any (checked by the test after each phase). */
    Throwable failure() {
        return failure.get();
    }

    /** Stops polling and closes the consumer, which sends LeaveGroup so the group rebalances at once. */
    @Override
    public void close() throws InterruptedException {
        running = false;
        thread.join(Duration.ofSeconds(60).toMillis());
        if (thread.isAlive()) {
            thread.interrupt();
            throw new AssertionError(name + " did not stop within 60 s");
        }
    }

    static Map<String, Integer> newDeliveryMap() {
        return new ConcurrentHashMap<>();
    }

    static Set<String> newValueSet() {
        return ConcurrentHashMap.newKeySet();
    }
}
