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
        ({"INTERCEPTOR_PARTITIONS": "four"}, "INTERCEPTOR_PARTITIONS must be an integer, got 'four'"),
        ({"INTERCEPTOR_METRICS_PORT": "9464.5"}, "INTERCEPTOR_METRICS_PORT must be an integer, got '9464.5'"),
        ({"INTERCEPTOR_SESSION_TIMEOUT_S": "a minute"}, "INTERCEPTOR_SESSION_TIMEOUT_S must be a number, got 'a minute'"),
        ({"INTERCEPTOR_SESSION_TIMEOUT_S": "nan"}, "INTERCEPTOR_SESSION_TIMEOUT_S must be a finite number, got 'nan'"),
        ({"INTERCEPTOR_RULES_POLL_S": "inf"}, "INTERCEPTOR_RULES_POLL_S must be a finite number, got 'inf'"),
        ({"INTERCEPTOR_PARTITIONS": "0"}, "INTERCEPTOR_PARTITIONS must be >= 1, got 0"),
        ({"INTERCEPTOR_RULES_PATH": "/nonexistent/rules"}, "no such file or directory: /nonexistent/rules"),
        ({"INTERCEPTOR_METRICS_ENABLED": "maybe"}, "INTERCEPTOR_METRICS_ENABLED must be true or false, got 'maybe'"),
        ({"INTERCEPTOR_METRICS_PORT": "99999"}, "INTERCEPTOR_METRICS_PORT must be a port number, 1 to 65535 (or 0 = no /metrics endpoint), got 99999"),
        ({"INTERCEPTOR_METRICS_PORT": "-1"}, "INTERCEPTOR_METRICS_PORT must be a port number, 1 to 65535 (or 0 = no /metrics endpoint), got -1"),
        ({"INTERCEPTOR_LOG_LEVEL": "verbose"}, "INTERCEPTOR_LOG_LEVEL must be debug, info, warning, error or critical, got 'verbose'"),
        ({"INTERCEPTOR_CHECKPOINT_INTERVAL_S": "-1"}, "INTERCEPTOR_CHECKPOINT_INTERVAL_S must be >= 0 seconds (0 = no checkpoints), got -1.0"),
        ({"INTERCEPTOR_RULES_POLL_S": "0"}, "INTERCEPTOR_RULES_POLL_S must be > 0 seconds, got 0.0"),
        ({"INTERCEPTOR_BATCH_WITHIN_S": "-0.5"}, "INTERCEPTOR_BATCH_WITHIN_S must be > 0 seconds, got -0.5"),
        ({"INTERCEPTOR_SESSION_TIMEOUT_S": "5"}, "INTERCEPTOR_SESSION_TIMEOUT_S must be >= 6 seconds, got 5.0"),
        ({"INTERCEPTOR_DECISION_LOG_SIZE": "1"}, "INTERCEPTOR_DECISION_LOG_SIZE must be >= 2, got 1"),
        ({"INTERCEPTOR_BATCH_MAX": "0"}, "INTERCEPTOR_BATCH_MAX must be >= 1, got 0"),
        ({"INTERCEPTOR_RELOAD_MAX_CHANGED_SHARE": "2"}, "INTERCEPTOR_RELOAD_MAX_CHANGED_SHARE must be between 0 and 1, got 2.0"),
        ({"INTERCEPTOR_APP_ID": ""}, "INTERCEPTOR_APP_ID must be a name without '/' (it names files in the data dir), got ''"),
        ({"INTERCEPTOR_APP_ID": "bank/1"}, "INTERCEPTOR_APP_ID must be a name without '/'"),
        ({"INTERCEPTOR_TOPIC_PREFIX": "bank 1/"}, "INTERCEPTOR_TOPIC_PREFIX may hold only letters, digits, '.', '_' and '-' (Kafka's topic names), got 'bank 1/'"),
        ({"INTERCEPTOR_BROKER": " , "}, "INTERCEPTOR_BROKER must name at least one broker as host:port, got ' , '"),
        ({"INTERCEPTOR_BROKER": "k1:9092,k2:kafka"}, "INTERCEPTOR_BROKER: 'k2:kafka' is not host:port, the port must be a number from 1 to 65535"),
        ({"INTERCEPTOR_BROKER": "k1:99999"}, "INTERCEPTOR_BROKER: 'k1:99999' is not host:port, the port must be a number from 1 to 65535"),
        ({"INTERCEPTOR_BROKER": ":9092"}, "INTERCEPTOR_BROKER: ':9092' is not host:port"),
        ({"INTERCEPTOR_BROKER": "http://k1:9092"}, "INTERCEPTOR_BROKER: 'http://k1:9092' is not host:port (only kafka:// may come before it)"),
        ({"INTERCEPTOR_BROKER": "::1"}, "INTERCEPTOR_BROKER: '::1': an IPv6 address goes in brackets, as in [::1]:9092"),
    ],
)  # fmt: skip
def test_bad_settings_say_which_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("level", ["debug", "INFO", "Warning", "error", "critical"])
def test_log_levels_are_the_ones_logging_knows(level: str) -> None:
    import logging.config

    from mode.utils.logging import level_name

    assert Settings.from_env({"INTERCEPTOR_LOG_LEVEL": level}).log_level == level
    # what the worker does with it (mode.utils.logging.setup_logging): "verbose" failed here with a traceback
    handler = {"class": "logging.NullHandler", "level": level_name(level)}
    logging.config.dictConfig({"version": 1, "incremental": False, "handlers": {"h": handler}})


def test_a_broker_without_a_port_gets_kafkas_port_as_in_the_kafka_clients() -> None:
    s = Settings.from_env({"INTERCEPTOR_BROKER": "localhost, kafka://k2:9093,[::1],[::1]:9094"})
    assert s.bootstrap_servers == ["localhost:9092", "k2:9093", "[::1]:9092", "[::1]:9094"]
    assert s.kafka_client_config()["bootstrap_servers"] == s.bootstrap_servers
    assert s.faust_broker_url() == "kafka://localhost:9092;kafka://k2:9093;kafka://[::1]:9092;kafka://[::1]:9094"


def test_the_connection_check_reads_a_broker_given_without_a_port(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.kafka_security
    from streams.errors import BrokerConnectionError

    asked = []

    async def ask_for_metadata(host: str, port: int, timeout_s: float, config: dict[str, object]) -> None:
        asked.append((host, port))
        raise OSError("refused")  # the next broker is asked

    monkeypatch.setattr(streams.kafka_security, "_ask_for_metadata", ask_for_metadata)
    settings = Settings.from_env({"INTERCEPTOR_BROKER": "localhost,[::1]:9093"})
    # was ValueError: invalid literal for int() with base 10: 'localhost'
    with pytest.raises(BrokerConnectionError, match=r"localhost:9092: OSError: refused; \[::1\]:9093: OSError"):
        streams.kafka_security.check_connection(settings, timeout_s=1)
    assert asked == [("localhost", 9092), ("::1", 9093)]


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"INTERCEPTOR_DATA_DIR": str(tmp_path / "state")})
    assert str(raised.value) == (
        f"INTERCEPTOR_DATA_DIR={tmp_path / 'state'} is a file, not a directory: point it at a directory for the "
        "worker's state"
    )
    with pytest.raises(SettingsError, match=r"cannot create the directory, .*/state is a file"):
        Settings.from_env({"INTERCEPTOR_DATA_DIR": str(tmp_path / "state" / "w1")})


def test_a_data_dir_is_an_existing_directory_or_one_that_can_be_made(tmp_path: Path) -> None:
    assert Settings.from_env({"INTERCEPTOR_DATA_DIR": str(tmp_path)}).data_dir == str(tmp_path)
    assert Settings.from_env({"INTERCEPTOR_DATA_DIR": str(tmp_path / "a" / "b")}).data_dir == str(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()  # made by the worker at start, not by reading the settings


def test_a_misspelled_variable_is_named_with_the_setting_it_resembles(capsys: pytest.CaptureFixture[str]) -> None:
    from streams.settings import unknown_variables

    env = {
        "INTERCEPTOR_CHEKPOINT_INTERVAL_S": "5",
        "INTERCEPTOR_SOMETHING_ELSE": "1",
        "INTERCEPTOR_TEST_BROKER": "k1:9092",  # read by tests/integration/conftest.py, not a setting
        "INTERCEPTOR_BROKER": "k1:9092",
        "KAFKA_PORT": "9092",
    }
    assert unknown_variables(env) == [
        "INTERCEPTOR_CHEKPOINT_INTERVAL_S is not a setting and is ignored; did you mean "
        "INTERCEPTOR_CHECKPOINT_INTERVAL_S?",
        "INTERCEPTOR_SOMETHING_ELSE is not a setting and is ignored; `interceptor worker --help` lists the settings",
    ]
    # a warning, not an error: the settings are read, and the misspelled one keeps its default
    settings = Settings.from_env({**env, "INTERCEPTOR_CHEKPOINT_INTERVAL_S": "7"})
    assert settings.checkpoint_interval_s == 10.0
    Settings.from_env({**env, "INTERCEPTOR_CHEKPOINT_INTERVAL_S": "7"})  # once per process, not per reading
    err = capsys.readouterr().err
    assert err.count("warning: INTERCEPTOR_CHEKPOINT_INTERVAL_S is not a setting") == 1
    assert "INTERCEPTOR_TEST_BROKER" not in err and "INTERCEPTOR_BROKER " not in err


def test_every_interceptor_variable_the_repository_uses_is_a_setting_or_known_to_be_read_elsewhere() -> None:
    import re

    from streams.settings import unknown_variables

    root = Path(__file__).resolve().parents[2]
    files = [p for p in root.iterdir() if p.is_file()]
    for folder in ("streams", "rules", "scoring", "tests", "scripts", "deploy", "benchmarks", "docs", "examples"):
        files += [p for p in (root / folder).rglob("*") if p.is_file() and p.suffix not in (".pyc", ".parquet")]
    used = set()
    for path in set(files) - {root / "streams" / "settings.py", Path(__file__).resolve()}:  # misspelled here
        used |= set(re.findall(r"INTERCEPTOR_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="ignore")))
    used -= {"INTERCEPTOR_SSL", "INTERCEPTOR_SASL"}  # prefixes in prose (INTERCEPTOR_SSL_*)
    assert unknown_variables(dict.fromkeys(used, "")) == []


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
