"""Pytest fixtures that run the real `kraftwerk` binary on free loopback ports in a temp dir.

Readiness is "the port accepts and a Metadata request succeeds" (via confluent-kafka's AdminClient),
never a log line. The broker log is printed when a test using the fixture fails.
"""

import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60


def kraftwerk_binary() -> pathlib.Path:
    """$KRAFTWERK_BIN, else target/debug/kraftwerk, else target/release/kraftwerk."""
    env = os.environ.get("KRAFTWERK_BIN")
    if env:
        return pathlib.Path(env)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        candidate = target / profile / "kraftwerk"
        if candidate.is_file():
            return candidate
    raise RuntimeError(
        f"no kraftwerk binary under {target}; run `cargo build -p kraftwerk-broker --bin kraftwerk` "
        "or set KRAFTWERK_BIN"
    )


def free_ports(n: int) -> list:
    """n distinct ports the OS considers free right now (held together while picking)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Broker:
    """One kraftwerk process: formatted, started, stopped on close."""

    def __init__(self, directory: pathlib.Path, overrides=None):
        self.dir = directory
        self.port, self.controller_port = free_ports(2)
        self.bin = kraftwerk_binary()
        self.config = directory / "server.properties"
        self.log_path = directory / "kraftwerk.log"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "log.dirs": str(directory / "data"),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "auto.create.topics.enable": "true",
        }
        props.update(overrides or {})
        # "{port}" and "{controller_port}" in an override become the ports picked here (to add listeners).
        props = {
            k: v.replace("{port}", str(self.port)).replace("{controller_port}", str(self.controller_port))
            for k, v in props.items()
        }
        self.config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        self.env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.proc = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def format(self):
        uuid = subprocess.run(
            [self.bin, "random-uuid"], check=True, capture_output=True, text=True, env=self.env
        ).stdout.strip()
        subprocess.run(
            [self.bin, "format", "--config", str(self.config), "--cluster-id", uuid],
            check=True,
            capture_output=True,
            env=self.env,
        )

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.bin, "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.dir,
            env=self.env,
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self):
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kraftwerk exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                md = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=2)
                if md.brokers:
                    return
                last = "metadata lists no brokers"
            except Exception as e:  # connection refused, metadata timeout: keep polling
                last = repr(e)
            time.sleep(0.1)
        raise RuntimeError(f"kraftwerk not serving after {READY_TIMEOUT_S}s ({last}):\n{self.log_tail()}")

    def log_tail(self, n: int = 64 * 1024) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's report on the item so fixtures can tell whether the test failed."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="module")
def broker(tmp_path_factory, request):
    """A formatted, serving broker shared by one test module (topics are per test)."""
    b = Broker(tmp_path_factory.mktemp("kraftwerk"))
    b.format()
    b.start()
    yield b
    b.stop()
    failed = any(
        getattr(item, "rep_call", None) is not None and item.rep_call.failed
        for item in request.session.items
        if item.module is request.module
    )
    if failed:
        print(f"\n===== kraftwerk log ({b.log_path}) =====\n{b.log_tail()}\n===== end =====")


def kafka_python_round_trip(conf, topic, count=50):
    """kafka-python with `conf` (bootstrap and security settings) produces `count` records to partition 0 of
    `topic` with acks=all and reads them back from the start: offsets and values must be exactly those sent."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    producer = KafkaProducer(acks="all", **conf)
    futures = [producer.send(topic, f"k-{i}".encode()) for i in range(count)]
    producer.flush(60)
    assert [f.get(timeout=60).offset for f in futures] == list(range(count))
    producer.close()
    consumer = KafkaConsumer(enable_auto_commit=False, **conf)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = []
    for _ in range(60):
        for records in consumer.poll(timeout_ms=1000).values():
            got.extend(r.value.decode() for r in records)
        if len(got) >= count:
            break
    consumer.close()
    assert got == [f"k-{i}" for i in range(count)]
