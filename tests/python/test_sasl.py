"""confluent-kafka and kafka-python over SASL_PLAINTEXT and SASL_SSL listeners: PLAIN users from the listener's JAAS
config, SCRAM users created with AlterUserScramCredentials (stored in the metadata log); a wrong password fails
with an authentication error (not a hang); a client without SASL on a SASL port is named in the broker log.
"""

import pathlib
import time

import pytest
import trustme
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import Broker, free_ports, kafka_python_round_trip

MESSAGES = 200
PLAIN_JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" '
    'user_admin="admin-secret" user_alice="alice-secret";'
)


@pytest.fixture(scope="module")
def sasl(tmp_path_factory):
    """(broker, {"SASL_PLAINTEXT": bootstrap, "SASL_SSL": bootstrap}, CA path)."""
    d = tmp_path_factory.mktemp("kraftwerk-sasl")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca_path, broker_pem = d / "ca.pem", d / "broker.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server.private_key_and_cert_chain_pem.write_to_path(str(broker_pem))
    sasl_port, sasl_ssl_port = free_ports(2)
    b = Broker(d, {
        "listeners": f"PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port},"
                     f"SASL_SSL://127.0.0.1:{sasl_ssl_port},CONTROLLER://127.0.0.1:{{controller_port}}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port},"
                                f"SASL_SSL://127.0.0.1:{sasl_ssl_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,"
                                          "CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        # The broker-wide key serves the SASL_SSL listener.
        "sasl.jaas.config": PLAIN_JAAS,
        "connection.failed.authentication.delay.ms": "300",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(broker_pem),
    })
    b.format()
    b.start()
    yield b, {
        "SASL_PLAINTEXT": f"127.0.0.1:{sasl_port}",
        "SASL_SSL": f"127.0.0.1:{sasl_ssl_port}",
    }, ca_path
    b.stop()


def ck_conf(protocol, bootstrap, ca, mechanism="PLAIN", user="alice", password="alice-secret"):
    conf = {
        "bootstrap.servers": bootstrap,
        "security.protocol": protocol,
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    if protocol == "SASL_SSL":
        conf["ssl.ca.location"] = str(ca)
    return conf


def kp_conf(protocol, bootstrap, ca, mechanism="PLAIN", user="alice", password="alice-secret"):
    conf = dict(
        bootstrap_servers=bootstrap,
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )
    if protocol == "SASL_SSL":
        conf["ssl_cafile"] = str(ca)
    return conf


def ck_round_trip(conf, topic):
    producer = Producer(dict(conf, acks="all"))
    errors = []
    for i in range(MESSAGES):
        producer.produce(topic, value=f"m-{i}".encode(), on_delivery=lambda e, m: e and errors.append(e))
    assert producer.flush(60) == 0
    assert errors == []
    consumer = Consumer(dict(conf, **{"group.id": f"g-{topic}", "enable.auto.commit": False}))
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    for _ in range(120):
        for m in consumer.consume(500, timeout=1):
            assert m.error() is None, m.error()
            got.append(m.value().decode())
        if len(got) >= MESSAGES:
            break
    consumer.close()
    assert got == [f"m-{i}" for i in range(MESSAGES)]


def auth_error(conf):
    """The first error librdkafka reports for `conf`, waiting at most 30 s."""
    seen = []
    producer = Producer(dict(conf, error_cb=seen.append))
    deadline = time.monotonic() + 30
    while not seen and time.monotonic() < deadline:
        producer.poll(0.2)
    return seen[0] if seen else None


def wait_for_log(broker, text, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = pathlib.Path(broker.log_path).read_text()
        if text in log:
            return log
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the broker log:\n{broker.log_tail()}")


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_confluent_kafka_plain(sasl, protocol):
    _, bootstraps, ca = sasl
    ck_round_trip(ck_conf(protocol, bootstraps[protocol], ca), f"ck-plain-{protocol.lower()}")


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_kafka_python_plain(sasl, protocol):
    _, bootstraps, ca = sasl
    kafka_python_round_trip(kp_conf(protocol, bootstraps[protocol], ca), f"kp-plain-{protocol.lower()}")


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_wrong_password_is_an_authentication_error(sasl, protocol):
    broker, bootstraps, ca = sasl
    err = auth_error(ck_conf(protocol, bootstraps[protocol], ca, password="wrong"))
    assert err is not None, "no error reported within 30 s"
    assert err.code() == KafkaError._AUTHENTICATION, err
    assert "Invalid username or password" in err.str(), err
    wait_for_log(broker, 'authentication failed for user "alice"')


def test_kafka_python_wrong_password(sasl):
    """kafka-python gives up bootstrapping with an error (it logs SaslAuthenticationFailedError per attempt)."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KPError

    broker, bootstraps, ca = sasl
    start = time.monotonic()
    with pytest.raises(KPError):
        KafkaProducer(max_block_ms=10000, **kp_conf("SASL_PLAINTEXT", bootstraps["SASL_PLAINTEXT"], ca,
                                                    password="wrong"))
    assert time.monotonic() - start < 60
    wait_for_log(broker, 'authentication failed for user "alice"')


@pytest.fixture(scope="module")
def scram_users(sasl):
    """Creates bob (SCRAM-SHA-256) and carol (SCRAM-SHA-512) as a PLAIN-authenticated admin."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    _, bootstraps, ca = sasl
    admin = AdminClient(ck_conf("SASL_PLAINTEXT", bootstraps["SASL_PLAINTEXT"], ca, user="admin",
                                password="admin-secret"))
    alterations = [
        UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b"bob-secret"),
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                     b"carol-secret"),
    ]
    for user, future in admin.alter_user_scram_credentials(alterations).items():
        future.result(timeout=60)
    described = admin.describe_user_scram_credentials(["bob", "carol"])
    bob = described["bob"].result(timeout=30)
    assert [(i.mechanism, i.iterations) for i in bob.scram_credential_infos] == [(ScramMechanism.SCRAM_SHA_256, 8192)]
    # Too few iterations is refused as Kafka does.
    bad = [UserScramCredentialUpsertion("dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1000), b"x")]
    with pytest.raises(KafkaException, match="Too few iterations"):
        admin.alter_user_scram_credentials(bad)["dave"].result(timeout=30)
    return admin


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_confluent_kafka_scram(sasl, scram_users, protocol):
    _, bootstraps, ca = sasl
    ck_round_trip(ck_conf(protocol, bootstraps[protocol], ca, mechanism="SCRAM-SHA-256", user="bob",
                          password="bob-secret"), f"ck-scram-{protocol.lower()}")


def test_kafka_python_scram(sasl, scram_users):
    _, bootstraps, ca = sasl
    kafka_python_round_trip(kp_conf("SASL_SSL", bootstraps["SASL_SSL"], ca, mechanism="SCRAM-SHA-512", user="carol",
                          password="carol-secret"), "kp-scram")


def test_scram_wrong_password_and_wrong_mechanism(sasl, scram_users):
    broker, bootstraps, ca = sasl
    for mechanism, password in [("SCRAM-SHA-256", "wrong"), ("SCRAM-SHA-512", "bob-secret")]:
        err = auth_error(ck_conf("SASL_PLAINTEXT", bootstraps["SASL_PLAINTEXT"], ca, mechanism=mechanism, user="bob",
                                 password=password))
        assert err is not None and err.code() == KafkaError._AUTHENTICATION, err
        assert f"invalid credentials with SASL mechanism {mechanism}" in err.str(), err
    wait_for_log(broker, 'authentication failed for user "bob"')


def test_deleted_scram_user_cannot_log_in(sasl, scram_users):
    from confluent_kafka.admin import ScramMechanism, UserScramCredentialDeletion

    _, bootstraps, ca = sasl
    admin = scram_users
    from confluent_kafka.admin import ScramCredentialInfo, UserScramCredentialUpsertion
    admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "erin", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"erin-secret")])["erin"].result(timeout=30)
    conf = ck_conf("SASL_PLAINTEXT", bootstraps["SASL_PLAINTEXT"], ca, mechanism="SCRAM-SHA-256", user="erin",
                   password="erin-secret")
    assert AdminClient(conf).list_topics(timeout=30).brokers
    admin.alter_user_scram_credentials([UserScramCredentialDeletion("erin", ScramMechanism.SCRAM_SHA_256)])[
        "erin"].result(timeout=30)
    err = auth_error(conf)
    assert err is not None and err.code() == KafkaError._AUTHENTICATION, err


def test_a_plaintext_client_on_a_sasl_port_is_named(sasl):
    broker, bootstraps, _ = sasl
    admin = AdminClient({"bootstrap.servers": bootstraps["SASL_PLAINTEXT"]})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    log = wait_for_log(broker, "Unexpected Kafka request of type METADATA during SASL handshake")
    assert "the client probably has security.protocol=PLAINTEXT" in log
