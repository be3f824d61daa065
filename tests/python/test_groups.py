"""Consumer groups across clients: kafka-python's own group code, and one group whose members are a
kafka-python consumer and a confluent-kafka (librdkafka) consumer, rebalancing as members join and leave."""

import threading
import time

from confluent_kafka import Consumer, Producer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

PARTITIONS = 4
PER_PARTITION = 250


def create_topic(broker, name, partitions):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30000)
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    admin.close()


def produce(broker, topic, partitions, per_partition, tag):
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    sent = set()
    for part in range(partitions):
        for i in range(per_partition):
            value = f"{tag}-{part}-{i}"
            p.produce(topic, value=value.encode(), partition=part)
            sent.add(value)
    assert p.flush(60) == 0
    return sent


def wait_for(predicate, timeout_s, what):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_kafka_python_group_consumes_all_and_commits(broker):
    topic = "py-group-kp"
    create_topic(broker, topic, 2)
    sent = produce(broker, topic, 2, 500, "kp")
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="py-kp-group",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             session_timeout_ms=10000, heartbeat_interval_ms=1000)
    got = set()
    deadline = time.time() + 60
    while len(got) < len(sent) and time.time() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.update(r.value.decode() for r in records)
    assert got == sent
    consumer.commit()
    committed = {p: consumer.committed(TopicPartition(topic, p)) for p in range(2)}
    assert committed == {0: 500, 1: 500}
    consumer.close()

    # A new member of the same group resumes at the committed offsets: nothing left to read.
    again = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="py-kp-group",
                          auto_offset_reset="earliest", enable_auto_commit=False)
    leftovers = []
    end = time.time() + 8
    while time.time() < end:
        for records in again.poll(timeout_ms=500).values():
            leftovers.extend(records)
    again.close()
    assert leftovers == []


class Member(threading.Thread):
    """Polls one consumer in its own thread (group membership needs continuous polling), recording its
    assignment and every value it receives."""

    def __init__(self, name, poll, assignment, close):
        super().__init__(daemon=True, name=name)
        self._poll, self._assignment, self._close = poll, assignment, close
        self.stop = threading.Event()
        self.values = set()
        self.lock = threading.Lock()
        self.error = None

    def assigned(self):
        with self.lock:
            return set(self._assignment())

    def run(self):
        try:
            while not self.stop.is_set():
                got = self._poll()
                with self.lock:
                    self.values.update(got)
        except Exception as e:  # surfaced by the test through .error
            self.error = e
        finally:
            self._close()


def kafka_python_member(broker, topic, group):
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group, auto_offset_reset="earliest",
                      session_timeout_ms=10000, heartbeat_interval_ms=500, max_poll_interval_ms=30000)

    def poll():
        return [r.value.decode() for rs in c.poll(timeout_ms=200).values() for r in rs]

    return Member("kafka-python", poll, lambda: {tp.partition for tp in c.assignment()}, c.close)


def librdkafka_member(broker, topic, group):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
                  "partition.assignment.strategy": "range"})
    c.subscribe([topic])

    def poll():
        m = c.poll(0.2)
        if m is None or m.error():
            return []
        return [m.value().decode()]

    return Member("librdkafka", poll, lambda: {tp.partition for tp in c.assignment()}, c.close)


def test_mixed_client_group_rebalances(broker):
    topic = "py-group-mixed"
    group = "py-mixed-group"
    create_topic(broker, topic, PARTITIONS)
    sent = produce(broker, topic, PARTITIONS, PER_PARTITION, "first")
    everything = set(range(PARTITIONS))

    a = librdkafka_member(broker, topic, group)
    a.start()
    wait_for(lambda: a.assigned() == everything, 60, "the first member to own every partition")

    b = kafka_python_member(broker, topic, group)
    b.start()
    # Range assignment over two members: two partitions each, disjoint, covering the topic.
    wait_for(lambda: len(a.assigned()) == 2 and len(b.assigned()) == 2 and a.assigned() | b.assigned() == everything,
             60, "a rebalance splitting the partitions between the two clients")

    more = produce(broker, topic, PARTITIONS, PER_PARTITION, "second")
    a.stop.set()
    a.join(30)
    wait_for(lambda: b.assigned() == everything, 60, "the remaining member to take over every partition")
    wait_for(lambda: (a.values | b.values) >= sent | more, 60, "every record to be consumed by the group")
    b.stop.set()
    b.join(30)
    assert a.error is None and b.error is None, (a.error, b.error)


def test_committed_offsets_survive_kill9(tmp_path):
    from conftest import Broker
    from confluent_kafka import TopicPartition as CkTopicPartition

    b = Broker(tmp_path)
    b.format()
    b.start()
    try:
        topic, group = "py-group-durable", "py-durable-group"
        create_topic(b, topic, 3)
        produce(b, topic, 3, 100, "durable")
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False})
        c.commit(offsets=[CkTopicPartition(topic, p, 10 * (p + 1)) for p in range(3)], asynchronous=False)
        c.close()

        b.proc.kill()  # SIGKILL: no flush, no clean shutdown
        b.proc.wait()
        b.start()

        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False})
        committed = c.committed([CkTopicPartition(topic, p) for p in range(3)], timeout=30)
        c.close()
        assert {tp.partition: tp.offset for tp in committed} == {0: 10, 1: 20, 2: 30}
    finally:
        b.stop()
