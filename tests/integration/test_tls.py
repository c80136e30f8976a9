"""TLS against a real broker: local-kafka's opt-in SSL listener (KAFKA_TLS=1), and SASL_SSL with KAFKA_SASL too.

The worker talks to the broker only through a TLS listener and trusts only the throw-away CA that local-kafka
made (INTERCEPTOR_SSL_CAFILE); the test's own producer and reader use the broker's plain listener. A worker that
trusts another CA stops within a bound and says so; the command line (kafka-python) works over TLS as well, and
every command that talks to Kafka stops at once with the worker's message when the connection is wrong. With
KAFKA_TLS_CLIENT_AUTH=required the SSL listener wants a client certificate (mutual TLS): the worker decides with
the one local-kafka issued, and stops saying so without one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer

from streams.errors import SettingsError
from streams.kafka_security import BrokerConnectionError, aiokafka_config, check_connection
from streams.settings import Settings
from streams.topics import CONTRACT_TOPICS
from tests.integration.conftest import LOCAL_KAFKA, free_port, private_broker
from tests.integration.kafka_io import produce, read_topic
from tests.integration.secure_workers import (
    USER,
    WorkerExit,
    assert_refused_at_once,
    assert_stopped_refused,
    assert_worker_decides,
    distinct_free_ports,
    interceptor,
    interceptor_ok,
    run_until_exit,
    secure_deployment,
    transactions,
)

pytestmark = pytest.mark.integration

WRONG_CA_BOUND_S = 90  # a worker that does not trust the broker's certificate must have stopped by then
NO_CLIENT_CERTIFICATE_BOUND_S = 90  # nor one without the client certificate a mutual-TLS listener wants
REFUSED_WITHIN_S = 5.0  # check_connection names a refused TLS connection this fast (no retries)


@dataclass(frozen=True)
class TlsBroker:
    plaintext: str  # the plain listener, for the test's own clients
    tls: str  # the SSL listener
    sasl_plaintext: str
    sasl_ssl: str
    cafile: Path  # the throw-away CA local-kafka made; the broker's certificate chains to it
    password: str


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    password = f"pw-{uuid.uuid4().hex}"  # unique, so finding it in a log cannot be a coincidence
    tls_port, sasl_port, sasl_ssl_port = distinct_free_ports(3)
    with private_broker(
        tmp_path_factory.mktemp("tls-broker"),
        KAFKA_TLS="1",
        KAFKA_TLS_PORT=str(tls_port),
        KAFKA_SASL="plain",
        KAFKA_SASL_PORT=str(sasl_port),
        KAFKA_SASL_SSL_PORT=str(sasl_ssl_port),
        KAFKA_SASL_USER=USER,
        KAFKA_SASL_PASSWORD=password,
    ) as broker:
        cafile = Path(broker.env["KAFKA_DATA_DIR"]) / "tls" / "ca.pem"
        assert cafile.is_file(), f"local-kafka made no CA certificate at {cafile}"
        yield TlsBroker(
            broker.bootstrap,
            f"127.0.0.1:{tls_port}",
            f"127.0.0.1:{sasl_port}",
            f"127.0.0.1:{sasl_ssl_port}",
            cafile,
            password,
        )


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed CA that never signed anything the broker shows."""
    folder = tmp_path_factory.mktemp("other-ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=another CA",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem")],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return folder / "ca.pem"


def tls_env(cafile: Path | str, protocol: str = "SSL", password: str = "") -> dict[str, str]:
    env = {"INTERCEPTOR_SECURITY_PROTOCOL": protocol, "INTERCEPTOR_SSL_CAFILE": str(cafile)}
    if protocol == "SASL_SSL":
        env |= {
            "INTERCEPTOR_SASL_MECHANISM": "PLAIN",
            "INTERCEPTOR_SASL_USERNAME": USER,
            "INTERCEPTOR_SASL_PASSWORD": password,
        }
    return env


@pytest.mark.timeout(180)
@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_worker_decides_over_tls_trusting_only_the_brokers_ca(
    tls_broker: TlsBroker, tmp_path: Path, protocol: str
) -> None:
    listener = tls_broker.tls if protocol == "SSL" else tls_broker.sasl_ssl
    deployment = secure_deployment(listener, "tls", tmp_path)
    env = tls_env(tls_broker.cafile, protocol, tls_broker.password)
    if protocol == "SASL_SSL":  # the clients' most talkative level must not print the password either
        env["INTERCEPTOR_LOG_LEVEL"] = "debug"
    worker = assert_worker_decides(deployment, tls_broker.plaintext, env)
    assert tls_broker.password not in worker.log(), "the SASL password appears in the worker's output"


@pytest.fixture(scope="module")
def wrong_ca_run(tls_broker: TlsBroker, other_ca: Path, tmp_path_factory: pytest.TempPathFactory) -> WorkerExit:
    """A worker given a CA that did not sign the broker's certificate, left alone until it exits or the bound
    passes."""
    deployment = secure_deployment(tls_broker.tls, "wrong-ca", tmp_path_factory.mktemp("wrong-ca"))
    return run_until_exit(deployment, WRONG_CA_BOUND_S, tls_env(other_ca))


@pytest.mark.timeout(150)
def test_a_worker_that_does_not_trust_the_broker_stops_and_names_the_ca(
    tls_broker: TlsBroker, other_ca: Path, wrong_ca_run: WorkerExit
) -> None:
    tail = assert_stopped_refused(wrong_ca_run, WRONG_CA_BOUND_S, "the TLS handshake failed")
    assert f"TLS with {tls_broker.tls} failed: its certificate was refused" in tail, tail
    assert f"the CA certificates in {other_ca}; check INTERCEPTOR_SSL_CAFILE" in tail, tail


@pytest.mark.timeout(120)
def test_check_connection_names_the_cause_of_a_refused_tls_connection(tls_broker: TlsBroker, other_ca: Path) -> None:
    def settings(broker: str, **env: str) -> Settings:
        return Settings.from_env({"INTERCEPTOR_BROKER": broker, **env})

    # the certificate names 127.0.0.1 and localhost
    port = tls_broker.tls.rpartition(":")[2]
    for broker in (tls_broker.tls, f"localhost:{port}"):
        check_connection(settings(broker, **tls_env(tls_broker.cafile)))  # no error
    check_connection(settings(tls_broker.sasl_ssl, **tls_env(tls_broker.cafile, "SASL_SSL", tls_broker.password)))

    no_ca = {"INTERCEPTOR_SECURITY_PROTOCOL": "SSL"}  # the system's CA certificates
    refused = [
        (tls_broker.tls, tls_env(other_ca), f"TLS with {tls_broker.tls} failed: its certificate was refused (self-signed certificate in certificate chain) when checked against the CA certificates in {other_ca}; check INTERCEPTOR_SSL_CAFILE"),
        (tls_broker.tls, no_ca, "when checked against the system's CA certificates (INTERCEPTOR_SSL_CAFILE is not set)"),
        (tls_broker.sasl_ssl, tls_env(other_ca, "SASL_SSL", tls_broker.password), f"TLS with {tls_broker.sasl_ssl} failed: its certificate was refused"),
        (tls_broker.tls, {}, f"{tls_broker.tls} closed the connection (a SASL or TLS listener? INTERCEPTOR_SECURITY_PROTOCOL)"),
        (tls_broker.plaintext, tls_env(tls_broker.cafile), "(a listener without TLS, or a SASL one? INTERCEPTOR_SECURITY_PROTOCOL)"),
        (tls_broker.sasl_plaintext, tls_env(tls_broker.cafile, "SASL_SSL", tls_broker.password), "(a listener without TLS? INTERCEPTOR_SECURITY_PROTOCOL)"),
        (tls_broker.sasl_ssl, tls_env(tls_broker.cafile, "SASL_SSL", "not-the-password"), f"SASL authentication as user '{USER}' with PLAIN was refused"),
    ]  # fmt: skip
    for broker, env, message in refused:
        started = time.monotonic()
        with pytest.raises(BrokerConnectionError) as raised:
            check_connection(settings(broker, **env), timeout_s=15)
        took = time.monotonic() - started
        assert message in str(raised.value), f"{broker} {env}"
        assert took < REFUSED_WITHIN_S, f"refused after {took:.1f}s, not at once: {raised.value}"
        assert tls_broker.password not in str(raised.value)


def test_a_ca_file_that_is_missing_or_holds_no_certificate_is_a_settings_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(SettingsError, match=f"INTERCEPTOR_SSL_CAFILE: no such file: {missing}"):
        Settings.from_env(tls_env(missing))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    settings = Settings.from_env(tls_env(garbage))
    with pytest.raises(SettingsError, match=f"INTERCEPTOR_SSL_CAFILE: {garbage} holds no usable PEM CA certificate"):
        aiokafka_config(settings)


@pytest.mark.timeout(240)
def test_the_command_line_creates_topics_produces_and_tails_over_tls(tls_broker: TlsBroker, tmp_path: Path) -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}."
    env = {
        "INTERCEPTOR_BROKER": tls_broker.tls,
        "INTERCEPTOR_TOPIC_PREFIX": prefix,
        "INTERCEPTOR_PARTITIONS": "3",
        **tls_env(tls_broker.cafile),
    }
    # topic creation: kafka-python's admin client
    created = interceptor_ok(env, "topics", "create").stdout
    assert created.strip() == "created: " + ", ".join(prefix + t for t in CONTRACT_TOPICS)
    consumer = KafkaConsumer(bootstrap_servers=tls_broker.plaintext)
    try:
        for name in CONTRACT_TOPICS:
            assert consumer.partitions_for_topic(prefix + name) == {0, 1, 2}, name
    finally:
        consumer.close()

    # a producer
    feed = transactions(50, prefix)
    path = tmp_path / "transactions.jsonl"
    path.write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in feed))
    interceptor_ok(env, "produce", str(path), "--topic", "transactions")
    sent = read_topic(tls_broker.plaintext, prefix + "transactions", len(feed), timeout=60)
    assert sorted(m.json()["txn_id"] for m in sent) == sorted(t["txn_id"] for t in feed)

    # a consumer
    decision = {"txn_id": f"{prefix}0", "action": "allow"}
    produce(tls_broker.plaintext, prefix + "decisions", [(b"P0", orjson.dumps(decision))])
    tailed = interceptor_ok(env, "tail", "decisions", "--from-beginning", "--max", "1", "--idle-exit", "30").stdout
    assert [orjson.loads(line) for line in tailed.splitlines()] == [decision]


KAFKA_COMMANDS = [
    ("topics", "create"),
    ("produce", "{tmp}/feed.jsonl", "--topic", "transactions"),
    ("tail", "decisions", "--idle-exit", "5"),
    ("dead-letters", "--out", "{tmp}/rejected.jsonl"),
    ("call-centre", "--idle-exit", "1"),
    ("simulate", "--kafka", "--customers", "20", "--days", "1"),
    ("bench", "--transactions", "100", "--seconds", "1"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", KAFKA_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_kafka_command_stops_at_once_with_the_workers_message(
    tls_broker: TlsBroker, other_ca: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    (tmp_path / "feed.jsonl").write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in transactions(3, "cli")))
    env = {
        "INTERCEPTOR_BROKER": tls_broker.tls,
        "INTERCEPTOR_TOPIC_PREFIX": f"x{uuid.uuid4().hex[:8]}.",
        **tls_env(other_ca),
    }
    # without the check, kafka-python retried for 30 s and then printed a traceback
    result = interceptor(env, *(arg.format(tmp=tmp_path) for arg in command), timeout=60)
    assert_refused_at_once(
        result,
        f"TLS with {tls_broker.tls} failed: its certificate was refused",
        f"the CA certificates in {other_ca}; check INTERCEPTOR_SSL_CAFILE",
    )
    assert not (tmp_path / "rejected.jsonl").exists()


@pytest.mark.timeout(120)
def test_local_kafka_serves_a_keystore_of_your_own(tls_broker: TlsBroker, tmp_path: Path) -> None:
    # the first broker's certificate, handed to a second broker as if it were the operator's own
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(tls_broker.cafile.parent / "broker-keystore.pem", own / "keystore.pem")
    shutil.copy(tls_broker.cafile, own / "ca.pem")
    tls_port = free_port()
    with private_broker(
        tmp_path / "data",
        KAFKA_TLS="1",
        KAFKA_TLS_PORT=str(tls_port),
        KAFKA_TLS_KEYSTORE=str(own / "keystore.pem"),
        KAFKA_TLS_CAFILE=str(own / "ca.pem"),
    ) as broker:
        check_connection(Settings.from_env({"INTERCEPTOR_BROKER": f"127.0.0.1:{tls_port}", **tls_env(own / "ca.pem")}))
        assert not (Path(broker.env["KAFKA_DATA_DIR"]) / "tls").exists(), "a CA was made although a keystore was given"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_TLS": "yes"}, "KAFKA_TLS must be 1 (on) or empty (off), not 'yes'"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_PORT": "{port}"}, "KAFKA_TLS_PORT ({port}) must differ from the other listeners' ports"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_PORT": "x"}, "KAFKA_TLS_PORT and KAFKA_SASL_SSL_PORT must be numbers"),
        ({"KAFKA_TLS_KEYSTORE": "{ca}"}, "KAFKA_TLS_KEYSTORE and KAFKA_TLS_CAFILE need KAFKA_TLS=1"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_KEYSTORE": "{ca}"}, "KAFKA_TLS_KEYSTORE needs KAFKA_TLS_CAFILE"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_KEYSTORE": "{ca}", "KAFKA_TLS_CAFILE": "{ca}"}, "holds no unencrypted PKCS#8 key"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_CAFILE": "{ca}"}, "KAFKA_TLS_CAFILE is only for a KAFKA_TLS_KEYSTORE of your own"),
        ({"KAFKA_TLS_CLIENT_AUTH": "required"}, "KAFKA_TLS_CLIENT_AUTH needs KAFKA_TLS=1"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_CLIENT_AUTH": "yes"}, "KAFKA_TLS_CLIENT_AUTH must be required or none, not 'yes'"),
    ],
)  # fmt: skip
def test_local_kafka_refuses_tls_settings_that_cannot_work(
    env: dict[str, str], message: str, other_ca: Path, tmp_path: Path
) -> None:
    port = str(free_port())
    env = {k: v.format(port=port, ca=other_ca) for k, v in env.items()}
    result = subprocess.run(
        [str(LOCAL_KAFKA), "status"],
        env={**os.environ, "KAFKA_PORT": port, "KAFKA_DATA_DIR": str(tmp_path / "kafka"), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert message.format(port=port) in result.stderr


# --- mutual TLS: local-kafka's SSL listener with KAFKA_TLS_CLIENT_AUTH=required ---

KEY_PASSWORD = f"kp-{uuid.uuid4().hex}"  # unique, so finding it in a log cannot be a coincidence


@dataclass(frozen=True)
class MtlsBroker:
    plaintext: str  # the plain listener, for the test's own clients
    tls: str  # the SSL listener, which wants a client certificate signed by its CA
    cafile: Path
    certfile: Path  # the client certificate local-kafka issued, and its key (unencrypted)
    keyfile: Path


@pytest.fixture(scope="module")
def mtls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MtlsBroker]:
    tls_port = free_port()
    with private_broker(
        tmp_path_factory.mktemp("mtls-broker"),
        KAFKA_TLS="1",
        KAFKA_TLS_PORT=str(tls_port),
        KAFKA_TLS_CLIENT_AUTH="required",
    ) as broker:
        folder = Path(broker.env["KAFKA_DATA_DIR"]) / "tls"
        for name in ("ca.pem", "client.pem", "client.key"):
            assert (folder / name).is_file(), f"local-kafka made no {name} in {folder}"
        yield MtlsBroker(
            broker.bootstrap,
            f"127.0.0.1:{tls_port}",
            folder / "ca.pem",
            folder / "client.pem",
            folder / "client.key",
        )


@pytest.fixture(scope="module")
def encrypted_key(mtls_broker: MtlsBroker, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """local-kafka's client key, encrypted with KEY_PASSWORD (PKCS#8, AES-256)."""
    out = tmp_path_factory.mktemp("encrypted-key") / "client.key"
    subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", str(mtls_broker.keyfile), "-out", str(out),
         "-passout", "env:KEY_PASSWORD"],
        check=True, capture_output=True, timeout=30, env={**os.environ, "KEY_PASSWORD": KEY_PASSWORD},
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def stranger(other_ca: Path) -> tuple[Path, Path]:
    """A client certificate and key signed by another CA than the broker's."""
    folder = other_ca.parent
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=stranger",
         "-keyout", str(folder / "stranger.key"), "-out", str(folder / "stranger.csr")],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "x509", "-req", "-days", "2", "-in", str(folder / "stranger.csr"), "-CA", str(other_ca),
         "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-out", str(folder / "stranger.pem")],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return folder / "stranger.pem", folder / "stranger.key"


def mtls_env(
    broker: MtlsBroker, certfile: Path | None = None, keyfile: Path | None = None, password: str = ""
) -> dict[str, str]:
    env = tls_env(broker.cafile)
    if certfile:
        env["INTERCEPTOR_SSL_CERTFILE"] = str(certfile)
    if keyfile:
        env["INTERCEPTOR_SSL_KEYFILE"] = str(keyfile)
    if password:
        env["INTERCEPTOR_SSL_KEY_PASSWORD"] = password
    return env


@pytest.mark.timeout(180)
def test_worker_decides_over_mutual_tls_and_never_prints_the_key_password(
    mtls_broker: MtlsBroker, encrypted_key: Path, tmp_path: Path
) -> None:
    deployment = secure_deployment(mtls_broker.tls, "mtls", tmp_path)
    env = mtls_env(mtls_broker, mtls_broker.certfile, encrypted_key, KEY_PASSWORD)
    env["INTERCEPTOR_LOG_LEVEL"] = "debug"  # the clients' most talkative level must not print it either
    worker = assert_worker_decides(deployment, mtls_broker.plaintext, env)
    assert KEY_PASSWORD not in worker.log(), "the client key's password appears in the worker's output"


@pytest.mark.timeout(150)
def test_a_worker_without_a_client_certificate_stops_saying_the_broker_requires_one(
    mtls_broker: MtlsBroker, tmp_path: Path
) -> None:
    deployment = secure_deployment(mtls_broker.tls, "no-cert", tmp_path)
    run = run_until_exit(deployment, NO_CLIENT_CERTIFICATE_BOUND_S, mtls_env(mtls_broker))
    tail = assert_stopped_refused(run, NO_CLIENT_CERTIFICATE_BOUND_S, "the broker asked for a client certificate")
    assert f"TLS with {mtls_broker.tls} failed: the broker requires a client certificate (mutual TLS)" in tail, tail
    assert "set INTERCEPTOR_SSL_CERTFILE and INTERCEPTOR_SSL_KEYFILE" in tail, tail


@pytest.mark.timeout(120)
def test_check_connection_over_mutual_tls_names_a_missing_or_refused_client_certificate(
    mtls_broker: MtlsBroker, encrypted_key: Path, stranger: tuple[Path, Path], tmp_path: Path
) -> None:
    def settings(**env: str) -> Settings:
        return Settings.from_env({"INTERCEPTOR_BROKER": mtls_broker.tls, **env})

    both = tmp_path / "client-and-key.pem"  # a certificate file that holds its key too
    both.write_text(mtls_broker.certfile.read_text() + mtls_broker.keyfile.read_text())
    for env in (
        mtls_env(mtls_broker, mtls_broker.certfile, mtls_broker.keyfile),
        mtls_env(mtls_broker, mtls_broker.certfile, encrypted_key, KEY_PASSWORD),
        mtls_env(mtls_broker, both),
    ):
        check_connection(settings(**env))  # no error

    refused = [
        (mtls_env(mtls_broker), f"TLS with {mtls_broker.tls} failed: the broker requires a client certificate (mutual TLS) and none was given"),
        (mtls_env(mtls_broker, *stranger), f"TLS with {mtls_broker.tls} failed: the broker refused the client certificate in {stranger[0]}"),
    ]  # fmt: skip
    for env, message in refused:
        started = time.monotonic()
        with pytest.raises(BrokerConnectionError) as raised:
            check_connection(settings(**env), timeout_s=15)
        took = time.monotonic() - started
        assert message in str(raised.value), env
        assert took < REFUSED_WITHIN_S, f"refused after {took:.1f}s, not at once: {raised.value}"


def test_a_client_key_that_cannot_be_used_is_a_settings_error(
    mtls_broker: MtlsBroker, encrypted_key: Path, stranger: tuple[Path, Path]
) -> None:
    cert = mtls_broker.certfile
    unusable = [
        (mtls_env(mtls_broker, cert, encrypted_key), f"INTERCEPTOR_SSL_KEYFILE: the key in {encrypted_key} is encrypted; set INTERCEPTOR_SSL_KEY_PASSWORD"),
        (mtls_env(mtls_broker, cert, encrypted_key, "not-the-password"), f"INTERCEPTOR_SSL_KEY_PASSWORD does not decrypt the key in {encrypted_key}"),
        (mtls_env(mtls_broker, cert, stranger[1]), f"INTERCEPTOR_SSL_KEYFILE: the key in {stranger[1]} does not belong to the certificate in {cert}"),
        (mtls_env(mtls_broker, cert), f"INTERCEPTOR_SSL_CERTFILE: {cert} holds no private key; set INTERCEPTOR_SSL_KEYFILE"),
        (mtls_env(mtls_broker, mtls_broker.keyfile, mtls_broker.keyfile), f"INTERCEPTOR_SSL_CERTFILE: {mtls_broker.keyfile} holds no PEM certificate"),
    ]  # fmt: skip
    for env, message in unusable:
        with pytest.raises(SettingsError) as raised:
            aiokafka_config(Settings.from_env(env))
        assert message in str(raised.value), env
        assert "not-the-password" not in str(raised.value)


@pytest.mark.timeout(120)
def test_the_command_line_uses_the_client_certificate(mtls_broker: MtlsBroker, encrypted_key: Path) -> None:
    prefix = f"m{uuid.uuid4().hex[:8]}."
    env = {"INTERCEPTOR_BROKER": mtls_broker.tls, "INTERCEPTOR_TOPIC_PREFIX": prefix, "INTERCEPTOR_PARTITIONS": "2"}
    # kafka-python's admin client, with the encrypted key
    created = interceptor_ok(
        env | mtls_env(mtls_broker, mtls_broker.certfile, encrypted_key, KEY_PASSWORD), "topics", "create"
    )
    assert created.stdout.strip() == "created: " + ", ".join(prefix + t for t in CONTRACT_TOPICS)
    assert KEY_PASSWORD not in created.stdout + created.stderr
    without = interceptor(env | mtls_env(mtls_broker), "tail", "decisions", "--idle-exit", "5", timeout=60)
    assert_refused_at_once(without, f"TLS with {mtls_broker.tls} failed: the broker requires a client certificate")
