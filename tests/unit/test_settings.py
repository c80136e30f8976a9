from pathlib import Path

import pytest

from streams.errors import SettingsError
from streams.settings import Settings


def test_settings_come_from_the_environment_and_build_the_client_config() -> None:
    s = Settings.from_env(
        {
            "INTERCEPTOR_BROKER": "kafka://k1:9092, k2:9092",
            "INTERCEPTOR_PARTITIONS": "8",
            "INTERCEPTOR_TOPIC_PREFIX": "bank1.",
            "INTERCEPTOR_SECURITY_PROTOCOL": "SASL_SSL",
            "INTERCEPTOR_SASL_MECHANISM": "SCRAM-SHA-512",
            "INTERCEPTOR_SASL_USERNAME": "svc",
            "INTERCEPTOR_SASL_PASSWORD": "hunter2",
        }
    )
    assert s.partitions == 8 and s.topic("decisions") == "bank1.decisions"
    assert s.kafka_client_config()["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert s.kafka_client_config()["sasl_plain_password"] == "hunter2"
    assert s.faust_broker_url() == "kafka://k1:9092;kafka://k2:9092"
    assert "hunter2" not in repr(s)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INTERCEPTOR_PARTITIONS": "four"}, "INTERCEPTOR_PARTITIONS must be a int, got 'four'"),
        ({"INTERCEPTOR_PARTITIONS": "0"}, "INTERCEPTOR_PARTITIONS must be >= 1, got 0"),
        ({"INTERCEPTOR_RULES_PATH": "/nonexistent/rules"}, "no such file or directory: /nonexistent/rules"),
        ({"INTERCEPTOR_METRICS_ENABLED": "maybe"}, "INTERCEPTOR_METRICS_ENABLED must be true or false, got 'maybe'"),
    ],
)
def test_bad_settings_say_which_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_switches_read_true_and_false_words() -> None:
    assert Settings.from_env({"INTERCEPTOR_METRICS_ENABLED": "off"}).metrics_enabled is False
    assert Settings.from_env({"INTERCEPTOR_METRICS_ENABLED": "TRUE"}).metrics_enabled is True


def test_a_private_ca_reaches_both_kinds_of_kafka_client() -> None:
    import ssl
    from pathlib import Path

    from streams.kafka_security import aiokafka_config

    ca = Path("/etc/ssl/certs/ca-certificates.crt")  # any CA bundle will do (Debian's ca-certificates)
    if not ca.exists():
        pytest.skip("no CA bundle at /etc/ssl/certs")
    settings = Settings.from_env({"INTERCEPTOR_SECURITY_PROTOCOL": "SSL", "INTERCEPTOR_SSL_CAFILE": str(ca)})
    assert settings.kafka_client_config()["ssl_cafile"] == str(ca)  # kafka-python: topic creation, the CLI
    config = aiokafka_config(settings)
    assert "ssl_cafile" not in config and isinstance(config["ssl_context"], ssl.SSLContext)


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, str]:
    """Files that exist (their contents are checked only when a client is built: tests/integration/test_tls.py)."""
    files = {}
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_text(f"-- {name} --\n")
        files[name] = str(tmp_path / f"{name}.pem")
    return files


@pytest.mark.parametrize(
    ("protocol", "tls_env", "message"),
    [
        ("PLAINTEXT", {"CAFILE": "ca"}, "INTERCEPTOR_SSL_CAFILE is set, but INTERCEPTOR_SECURITY_PROTOCOL=PLAINTEXT does not use TLS: set INTERCEPTOR_SECURITY_PROTOCOL=SSL (or SASL_SSL) to use TLS, or unset INTERCEPTOR_SSL_CAFILE"),
        ("SASL_PLAINTEXT", {"CAFILE": "ca"}, "INTERCEPTOR_SSL_CAFILE is set, but INTERCEPTOR_SECURITY_PROTOCOL=SASL_PLAINTEXT does not use TLS: set INTERCEPTOR_SECURITY_PROTOCOL=SASL_SSL to use TLS"),
        ("PLAINTEXT", {"CERTFILE": "cert", "KEYFILE": "key"}, "INTERCEPTOR_SSL_CERTFILE and INTERCEPTOR_SSL_KEYFILE are set, but INTERCEPTOR_SECURITY_PROTOCOL=PLAINTEXT does not use TLS"),
        ("PLAINTEXT", {"KEY_PASSWORD": "hunter2"}, "INTERCEPTOR_SSL_KEY_PASSWORD is set, but INTERCEPTOR_SECURITY_PROTOCOL=PLAINTEXT"),
    ],
)  # fmt: skip
def test_tls_settings_without_a_tls_protocol_are_refused_not_ignored(
    protocol: str, tls_env: dict[str, str], message: str, pem_files: dict[str, str]
) -> None:
    env = {"INTERCEPTOR_SECURITY_PROTOCOL": protocol, "INTERCEPTOR_SASL_MECHANISM": "PLAIN"}
    if protocol == "PLAINTEXT":
        del env["INTERCEPTOR_SASL_MECHANISM"]
    env |= {f"INTERCEPTOR_SSL_{name}": pem_files.get(value, value) for name, value in tls_env.items()}
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert message in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_a_client_certificate_reaches_kafka_python_and_its_password_stays_hidden(pem_files: dict[str, str]) -> None:
    from streams.kafka_security import _KAFKA_PYTHON_SSL_KEYS

    settings = Settings.from_env(
        {
            "INTERCEPTOR_SECURITY_PROTOCOL": "SSL",
            "INTERCEPTOR_SSL_CAFILE": pem_files["ca"],
            "INTERCEPTOR_SSL_CERTFILE": pem_files["cert"],
            "INTERCEPTOR_SSL_KEYFILE": pem_files["key"],
            "INTERCEPTOR_SSL_KEY_PASSWORD": "hunter2",
        }
    )
    config = settings.kafka_client_config()
    assert (config["ssl_certfile"], config["ssl_keyfile"], config["ssl_password"]) == (
        pem_files["cert"],
        pem_files["key"],
        "hunter2",
    )
    assert set(_KAFKA_PYTHON_SSL_KEYS) <= set(config)  # aiokafka_config takes these out (aiokafka has no such names)
    assert "hunter2" not in repr(settings) and "hunter2" not in str(Settings.documented())
    # without a password the key is not prompted for (None would let OpenSSL ask on the terminal)
    no_password = Settings.from_env(
        {"INTERCEPTOR_SECURITY_PROTOCOL": "SSL", "INTERCEPTOR_SSL_CERTFILE": pem_files["cert"]}
    )
    assert no_password.kafka_client_config()["ssl_password"] == ""


@pytest.mark.parametrize(
    ("tls_env", "message"),
    [
        ({"CAFILE": "/nowhere/ca.pem"}, "INTERCEPTOR_SSL_CAFILE: no such file: /nowhere/ca.pem"),
        ({"CERTFILE": "/nowhere/client.pem"}, "INTERCEPTOR_SSL_CERTFILE: no such file: /nowhere/client.pem"),
        ({"CERTFILE": "cert", "KEYFILE": "/nowhere/client.key"}, "INTERCEPTOR_SSL_KEYFILE: no such file: /nowhere/client.key"),
        ({"KEYFILE": "key"}, "INTERCEPTOR_SSL_KEYFILE needs INTERCEPTOR_SSL_CERTFILE, the client certificate of the key"),
        ({"KEY_PASSWORD": "hunter2"}, "INTERCEPTOR_SSL_KEY_PASSWORD needs INTERCEPTOR_SSL_CERTFILE"),
    ],
)  # fmt: skip
def test_client_certificate_settings_say_which_variable(
    tls_env: dict[str, str], message: str, pem_files: dict[str, str]
) -> None:
    env = {"INTERCEPTOR_SECURITY_PROTOCOL": "SSL"}
    env |= {f"INTERCEPTOR_SSL_{name}": pem_files.get(value, value) for name, value in tls_env.items()}
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert message in str(raised.value)
    assert "hunter2" not in str(raised.value)
