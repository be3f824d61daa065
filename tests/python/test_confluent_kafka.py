"""confluent-kafka (librdkafka) against kraftwerk: admin create/list, 10,000 messages round trip."""

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

MESSAGES = 10_000


def create(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                  operation_timeout=30, request_timeout=30)
    futures[name].result(timeout=60)
    return admin


def test_admin_creates_and_lists_topics(broker):
    admin = create(broker.bootstrap, "py-ck-admin", 3)
    md = admin.list_topics(timeout=30)
    assert "py-ck-admin" in md.topics
    assert len(md.topics["py-ck-admin"].partitions) == 3
    assert md.topics["py-ck-admin"].error is None
    assert [b.port for b in md.brokers.values()] == [broker.port]

    futures = admin.create_topics([NewTopic("py-ck-admin", num_partitions=1, replication_factor=1)])
    with pytest.raises(KafkaException) as err:
        futures["py-ck-admin"].result(timeout=60)
    assert err.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS


def test_produce_and_consume_10000_messages(broker):
    topic = "py-ck-data"
    create(broker.bootstrap, topic, 2)
    acked = {}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[(msg.partition(), msg.offset())] = (msg.key(), msg.value())

    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5,
                         "compression.type": "lz4"})
    for i in range(MESSAGES):
        while True:
            try:
                producer.produce(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode(),
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert errors == []
    assert len(acked) == MESSAGES

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "py-ck-reader",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(2)])
    consumed = {}
    for _ in range(600):
        if len(consumed) >= MESSAGES:
            break
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            assert msg.error() is None, msg.error()
            consumed[(msg.partition(), msg.offset())] = (msg.key(), msg.value())
    consumer.close()
    assert consumed == acked
    for p in range(2):
        offsets = sorted(o for (part, o) in consumed if part == p)
        assert offsets == list(range(len(offsets))), f"partition {p} offsets not contiguous from 0"
