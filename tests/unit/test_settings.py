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
    plain = Settings.from_env({"INTERCEPTOR_SSL_CAFILE": str(ca)})
    assert "ssl_cafile" not in plain.kafka_client_config()  # PLAINTEXT: no TLS at all
    config = aiokafka_config(settings)
    assert "ssl_cafile" not in config and isinstance(config["ssl_context"], ssl.SSLContext)
