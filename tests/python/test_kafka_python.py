"""kafka-python (pure Python client, its own protocol code) against kraftwerk."""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

MESSAGES = 10_000


def test_admin_creates_and_lists_topics(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30000)
    admin.create_topics([NewTopic("py-kp-admin", num_partitions=2, replication_factor=1)])
    assert "py-kp-admin" in admin.list_topics()
    described = admin.describe_topics(["py-kp-admin"])
    assert len(described) == 1
    assert described[0]["error_code"] == 0
    assert len(described[0]["partitions"]) == 2
    admin.close()


def test_produce_and_consume_10000_messages(broker):
    topic = "py-kp-data"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=30000)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                             compression_type="gzip")
    futures = [
        (i, producer.send(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode()))
        for i in range(MESSAGES)
    ]
    producer.flush(timeout=60)
    acked = {}
    for i, fut in futures:
        md = fut.get(timeout=60)
        acked[md.offset] = (f"key-{i}".encode(), f"value-{i}".encode())
    producer.close()
    assert sorted(acked) == list(range(MESSAGES))

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    consumed = {}
    for _ in range(600):
        if len(consumed) >= MESSAGES:
            break
        for records in consumer.poll(timeout_ms=500, max_records=2000).values():
            for r in records:
                consumed[r.offset] = (r.key, r.value)
    consumer.close()
    assert consumed == acked
