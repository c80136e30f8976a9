"""Mutual TLS against a real broker: local-kafka's SSL listener with KAFKA_TLS_CLIENT_AUTH=required wants a
client certificate. The worker decides with the one local-kafka issued (its key encrypted, the password never
printed) and stops saying so without one; a certificate another CA signed, or a key that cannot be used, is
named as the cause; the command line uses the certificate too.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.errors import SettingsError
from streams.kafka_security import BrokerConnectionError, aiokafka_config, check_connection
from streams.settings import Settings
from streams.topics import CONTRACT_TOPICS
from tests.integration.conftest import free_port, private_broker
from tests.integration.secure_workers import (
    assert_refused_at_once,
    assert_stopped_refused,
    assert_worker_decides,
    interceptor,
    interceptor_ok,
    run_until_exit,
    secure_deployment,
    tls_env,
)

pytestmark = pytest.mark.integration

NO_CLIENT_CERTIFICATE_BOUND_S = 90  # a worker without the client certificate the listener wants stops by then
REFUSED_WITHIN_S = 5.0  # check_connection names a refused TLS connection this fast (no retries)

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
