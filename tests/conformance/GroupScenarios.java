// The Java client's side of tests/tests/conformance_groups.rs: the same group scenarios with
// org.apache.kafka:kafka-clients consumers, run by the JDK's source launcher against one broker:
//
//   java -cp 'tests/tools/lib/*' tests/conformance/GroupScenarios.java <bootstrap> <topic>
//
// The topic must exist with 4 partitions. Each member polls on its own thread (KafkaConsumer is
// single-threaded) and records its rebalance listener calls as "assign N" / "revoke N" / "lost N". One line
// per scenario is printed: "<scenario>: [[member 1 events], [member 2 events]]", which the Rust test compares
// between Apache Kafka and Kraftwerk.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupScenarios {
    static final long SETTLE_MS = 1000;
    static final long DEADLINE_MS = 60_000;

    static final class Member implements Runnable {
        final List<String> events = new CopyOnWriteArrayList<>();
        final AtomicInteger assigned = new AtomicInteger();
        final AtomicBoolean unsubscribe = new AtomicBoolean();
        final AtomicBoolean close = new AtomicBoolean();
        final Properties props;
        final String topic;
        final Thread thread;

        Member(String bootstrap, String group, String topic, String assignor) {
            this(bootstrap, group, topic, assignor, null);
        }

        Member(String bootstrap, String group, String topic, String assignor, String instance) {
            props = new Properties();
            if (instance != null) {
                props.put("group.instance.id", instance);
            }
            props.put("bootstrap.servers", bootstrap);
            props.put("group.id", group);
            props.put("partition.assignment.strategy", assignor);
            props.put("enable.auto.commit", "false");
            props.put("session.timeout.ms", "6000");
            props.put("heartbeat.interval.ms", "500");
            props.put("key.deserializer", ByteArrayDeserializer.class.getName());
            props.put("value.deserializer", ByteArrayDeserializer.class.getName());
            this.topic = topic;
            thread = new Thread(this);
            thread.start();
        }

        public void run() {
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
                consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                        events.add("revoke " + parts.size());
                    }

                    public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                        events.add("assign " + parts.size());
                    }

                    public void onPartitionsLost(Collection<TopicPartition> parts) {
                        events.add("lost " + parts.size());
                    }
                });
                boolean subscribed = true;
                while (!close.get()) {
                    if (subscribed && unsubscribe.get()) {
                        consumer.unsubscribe();
                        subscribed = false;
                    }
                    if (subscribed) {
                        consumer.poll(Duration.ofMillis(50));
                    } else {
                        Thread.sleep(50);
                    }
                    assigned.set(consumer.assignment().size());
                }
            } catch (Exception e) {
                events.add("error " + e);
            }
        }

        void stop() throws InterruptedException {
            close.set(true);
            thread.join(30_000);
        }
    }

    /// Waits until `done` holds and no member recorded a new event for SETTLE_MS.
    static void until(List<Member> members, String what, BooleanSupplier done) throws InterruptedException {
        long start = System.currentTimeMillis();
        int seen = -1;
        long quietSince = start;
        while (true) {
            int now = members.stream().mapToInt(m -> m.events.size()).sum();
            if (now != seen) {
                seen = now;
                quietSince = System.currentTimeMillis();
            }
            if (done.getAsBoolean() && System.currentTimeMillis() - quietSince >= SETTLE_MS) {
                return;
            }
            if (System.currentTimeMillis() - start > DEADLINE_MS) {
                List<List<String>> events = new ArrayList<>();
                members.forEach(m -> events.add(m.events));
                throw new IllegalStateException(what + ": not reached in 60 s; events " + events);
            }
            Thread.sleep(20);
        }
    }

    static String joinThenUnsubscribe(String bootstrap, String topic, String prefix, String assignor, String name)
            throws InterruptedException {
        String group = prefix + "-java-" + name;
        Member first = new Member(bootstrap, group, topic, assignor);
        until(List.of(first), "first member assigned", () -> first.assigned.get() == 4);
        Member second = new Member(bootstrap, group, topic, assignor);
        until(List.of(first, second), "both members assigned",
            () -> first.assigned.get() == 2 && second.assigned.get() == 2);
        second.unsubscribe.set(true);
        until(List.of(first, second), "second member gone",
            () -> first.assigned.get() == 4 && second.assigned.get() == 0);
        second.stop();
        first.stop();
        return List.of(first.events, second.events).toString();
    }

    /// Two static members; the second closes (a static member does not leave the group) and comes back
    /// within its session timeout (nothing moves), then stays away beyond it (its partitions move and
    /// come back when it rejoins).
    static String staticMembers(String bootstrap, String topic, String prefix) throws InterruptedException {
        String group = prefix + "-java-static";
        String range = "org.apache.kafka.clients.consumer.RangeAssignor";
        Member first = new Member(bootstrap, group, topic, range, "static-1");
        until(List.of(first), "first static member assigned", () -> first.assigned.get() == 4);
        Member second = new Member(bootstrap, group, topic, range, "static-2");
        until(List.of(first, second), "both static members assigned",
            () -> first.assigned.get() == 2 && second.assigned.get() == 2);
        second.stop();
        Member back = new Member(bootstrap, group, topic, range, "static-2");
        until(List.of(first, back), "static member back within the timeout", () -> back.assigned.get() == 2);
        back.stop();
        until(List.of(first), "partitions moved after the session timeout", () -> first.assigned.get() == 4);
        Member later = new Member(bootstrap, group, topic, range, "static-2");
        until(List.of(first, later), "static member back after the timeout",
            () -> first.assigned.get() == 2 && later.assigned.get() == 2);
        later.stop();
        first.stop();
        return List.of(first.events, second.events, back.events, later.events).toString();
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        // Group ids start with this (the topic by default): a second run uses fresh groups.
        String prefix = args.length > 2 ? args[2] : topic;
        System.out.println("range, join then unsubscribe: " + joinThenUnsubscribe(bootstrap, topic, prefix,
            "org.apache.kafka.clients.consumer.RangeAssignor", "range"));
        System.out.println("cooperative-sticky, join then unsubscribe: " + joinThenUnsubscribe(bootstrap, topic,
            prefix, "org.apache.kafka.clients.consumer.CooperativeStickyAssignor", "cooperative"));
        System.out.println("static members restarting: " + staticMembers(bootstrap, topic, prefix));
    }
}
