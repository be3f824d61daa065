"""confluent-kafka and kafka-python over an SSL listener with client certificates (ssl.client.auth=required).

Certificates come from trustme (a throwaway CA); the broker reads them as PEM files. A client without a
certificate is refused during the handshake.
"""

import pathlib

import pytest
import trustme
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, free_ports, kafka_python_round_trip

MESSAGES = 1000


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """(broker, ssl bootstrap, dict of PEM paths)."""
    d = tmp_path_factory.mktemp("kraftwerk-ssl")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client-1@example.test", common_name="client-1")
    paths = {
        "ca": d / "ca.pem",
        "broker": d / "broker.pem",
        "client_cert": d / "client-cert.pem",
        "client_key": d / "client-key.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(paths["broker"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    (ssl_port,) = free_ports(1)
    b = Broker(d, {
        "listeners": f"PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port},"
                     "CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(paths["broker"]),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(paths["ca"]),
        "ssl.client.auth": "required",
    })
    b.format()
    b.start()
    yield b, f"127.0.0.1:{ssl_port}", paths
    b.stop()


def ck_ssl(bootstrap, paths, with_cert=True):
    conf = {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SSL",
        "ssl.ca.location": str(paths["ca"]),
    }
    if with_cert:
        conf["ssl.certificate.location"] = str(paths["client_cert"])
        conf["ssl.key.location"] = str(paths["client_key"])
    return conf


def test_confluent_kafka_round_trip_over_ssl(tls):
    _, bootstrap, paths = tls
    topic = "py-ssl-ck"
    admin = AdminClient(ck_ssl(bootstrap, paths))
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=60)
    md = admin.list_topics(timeout=30)
    assert [b.port for b in md.brokers.values()] == [int(bootstrap.rsplit(":", 1)[1])]
    producer = Producer(dict(ck_ssl(bootstrap, paths), acks="all"))
    errors = []
    for i in range(MESSAGES):
        producer.produce(topic, value=f"m-{i}".encode(), on_delivery=lambda e, m: e and errors.append(e))
    assert producer.flush(60) == 0
    assert errors == []
    consumer = Consumer(dict(ck_ssl(bootstrap, paths), **{"group.id": "py-ssl", "enable.auto.commit": False}))
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    for _ in range(200):
        for m in consumer.consume(500, timeout=1):
            assert m.error() is None, m.error()
            got.append(m.value().decode())
        if len(got) >= MESSAGES:
            break
    consumer.close()
    assert got == [f"m-{i}" for i in range(MESSAGES)]


def test_kafka_python_round_trip_over_ssl(tls):
    _, bootstrap, paths = tls
    kafka_python_round_trip(
        dict(
            bootstrap_servers=bootstrap,
            security_protocol="SSL",
            ssl_cafile=str(paths["ca"]),
            ssl_certfile=str(paths["client_cert"]),
            ssl_keyfile=str(paths["client_key"]),
        ),
        "py-ssl-kp",
        count=100,
    )

def test_a_client_without_a_certificate_is_refused(tls):
    broker, bootstrap, paths = tls
    admin = AdminClient(ck_ssl(bootstrap, paths, with_cert=False))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    assert "TLS handshake with the client failed" in pathlib.Path(broker.log_path).read_text()
