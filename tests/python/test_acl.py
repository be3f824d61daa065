"""ACL authorization (StandardAuthorizer rules) with two client-certificate principals over SSL.

The broker's own principal on the PLAINTEXT inter-broker listener is User:ANONYMOUS and is a super
user, as Kafka requires of its brokers; so is an admin certificate. Principal A gets WRITE, READ and
DESCRIBE on the topic prefix `a-` and READ on the group `a-group`; B gets nothing. ACLs are created,
listed and deleted with confluent-kafka's AdminClient and survive a restart (they live in the
metadata log).
"""

import time

import pytest
import trustme
from cryptography import x509
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from conftest import Broker, free_ports


def principal_of(cert) -> str:
    """Kafka's default principal for a client certificate: User: and the RFC 2253 subject."""
    pem = cert.cert_chain_pems[0].bytes()
    return "User:" + x509.load_pem_x509_certificate(pem).subject.rfc4514_string()


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    d = tmp_path_factory.mktemp("kraftwerk-acl")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(d / "broker.pem"))
    clients = {}
    for name in ("admin", "a", "b"):
        cert = ca.issue_cert(f"client-{name}@example.test", common_name=f"client-{name}")
        cert.cert_chain_pems[0].write_to_path(str(d / f"{name}-cert.pem"))
        cert.private_key_pem.write_to_path(str(d / f"{name}-key.pem"))
        clients[name] = principal_of(cert)
    (ssl_port,) = free_ports(1)
    b = Broker(d, {
        "listeners": f"PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port},"
                     "CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(d / "broker.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(d / "ca.pem"),
        "ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:ANONYMOUS;{clients['admin']}",
        "group.initial.rebalance.delay.ms": "0",
    })
    b.format()
    b.start()

    def conf(who, **extra):
        c = {
            "bootstrap.servers": f"127.0.0.1:{ssl_port}",
            "security.protocol": "SSL",
            "ssl.ca.location": str(d / "ca.pem"),
            "ssl.certificate.location": str(d / f"{who}-cert.pem"),
            "ssl.key.location": str(d / f"{who}-key.pem"),
        }
        c.update(extra)
        return c

    yield b, conf, clients
    b.stop()


def allow(principal, rt, name, pattern, op, permission=AclPermissionType.ALLOW):
    return AclBinding(rt, name, pattern, principal, "*", op, permission)


def create(admin, bindings):
    for f in admin.create_acls(bindings).values():
        f.result(timeout=60)


def produce(conf, topic, n=10):
    """Delivery errors (codes) of n records."""
    producer = Producer(dict(conf, acks="all", **{"message.timeout.ms": 20000}))
    errors = []
    for i in range(n):
        producer.produce(topic, value=f"v-{i}".encode(),
                         on_delivery=lambda e, m: errors.append(e.code() if e else None))
    producer.flush(60)
    return errors


def test_acls_decide_who_may_do_what(secured):
    broker, conf, who = secured
    admin = AdminClient(conf("admin"))
    for t in ("a-topic", "a-denied", "other"):
        admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)])[t].result(timeout=60)
    create(admin, [
        allow(who["a"], ResourceType.TOPIC, "a-", ResourcePatternType.PREFIXED, op)
        for op in (AclOperation.WRITE, AclOperation.READ, AclOperation.DESCRIBE)
    ] + [
        allow(who["a"], ResourceType.GROUP, "a-group", ResourcePatternType.LITERAL, AclOperation.READ),
        allow(who["a"], ResourceType.TOPIC, "a-denied", ResourcePatternType.LITERAL, AclOperation.WRITE,
              AclPermissionType.DENY),
    ])

    # A writes and reads its topics through a group.
    assert produce(conf("a"), "a-topic") == [None] * 10
    consumer = Consumer(conf("a", **{"group.id": "a-group", "auto.offset.reset": "earliest"}))
    consumer.subscribe(["a-topic"])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 10 and time.monotonic() < deadline:
        m = consumer.poll(1)
        if m is not None:
            assert m.error() is None, m.error()
            got.append(m.value())
    consumer.commit(asynchronous=False)
    consumer.close()
    assert len(got) == 10

    # DENY beats the prefixed ALLOW.
    assert produce(conf("a"), "a-denied", 1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]

    # A sees only its topics; B sees none of them.
    a_topics = set(AdminClient(conf("a")).list_topics(timeout=30).topics)
    assert {"a-topic", "a-denied"} <= a_topics and "other" not in a_topics
    b_topics = set(AdminClient(conf("b")).list_topics(timeout=30).topics)
    assert not b_topics & {"a-topic", "a-denied", "other"}

    # B may not write, nor read through a group.
    assert produce(conf("b"), "a-topic", 1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    consumer = Consumer(conf("b", **{"group.id": "b-group", "auto.offset.reset": "earliest"}))
    consumer.subscribe(["a-topic"])
    errors = set()
    deadline = time.monotonic() + 30
    while KafkaError.GROUP_AUTHORIZATION_FAILED not in errors and time.monotonic() < deadline:
        m = consumer.poll(1)
        if m is not None and m.error() is not None:
            errors.add(m.error().code())
    consumer.close()
    assert KafkaError.GROUP_AUTHORIZATION_FAILED in errors, errors

    # Only super users (or ALTER on the cluster) may change ACLs.
    with pytest.raises(KafkaException) as e:
        create(AdminClient(conf("a")), [allow(who["b"], ResourceType.TOPIC, "x", ResourcePatternType.LITERAL,
                                              AclOperation.READ)])
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED

    # The super user does everything, with no ACL naming it.
    assert produce(conf("admin"), "other", 3) == [None] * 3

    # Describe filters: A's bindings on the MATCHing resource "a-topic".
    match = AclBindingFilter(ResourceType.TOPIC, "a-topic", ResourcePatternType.MATCH, who["a"], None,
                             AclOperation.ANY, AclPermissionType.ANY)
    described = admin.describe_acls(match).result(timeout=30)
    assert sorted(b.operation for b in described) == sorted(
        [AclOperation.WRITE, AclOperation.READ, AclOperation.DESCRIBE])

    # ACLs survive a restart.
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    before = sorted(map(str, admin.describe_acls(everything).result(timeout=30)))
    assert len(before) == 5
    broker.stop()
    broker.start()
    admin = AdminClient(conf("admin"))
    assert sorted(map(str, admin.describe_acls(everything).result(timeout=30))) == before
    assert produce(conf("b"), "a-topic", 1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]

    # Deleting A's WRITE takes its produce right away.
    write = AclBindingFilter(ResourceType.TOPIC, "a-", ResourcePatternType.PREFIXED, who["a"], "*",
                             AclOperation.WRITE, AclPermissionType.ALLOW)
    deleted = admin.delete_acls([write])[write].result(timeout=30)
    assert len(deleted) == 1
    assert produce(conf("a"), "a-topic", 1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_acl_apis_without_an_authorizer_say_security_disabled(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    binding = allow("User:a", ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, AclOperation.READ)
    with pytest.raises(KafkaException) as e:
        create(admin, [binding])
    assert e.value.args[0].code() == KafkaError.SECURITY_DISABLED
    # librdkafka reports DescribeAcls' SECURITY_DISABLED as an empty list.
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    assert admin.describe_acls(everything).result(timeout=30) == []
