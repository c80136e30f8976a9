"""Worker settings: read from the environment in one place, validated once, secrets kept out of logs.

Every setting is an `INTERCEPTOR_*` environment variable; `interceptor worker --help` lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from streams.errors import SettingsError
from streams.features.localtime import DEFAULT_ZONE, parse_zone


class Secret(str):
    """A string that never shows itself in repr/str formatting of settings (passwords, keys)."""

    def __repr__(self) -> str:
        return "Secret('**********')" if self else "Secret('')"


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings of one worker process. Defaults suit a laptop with a local broker."""

    broker: str = field(default="127.0.0.1:9092", metadata={"doc": "Kafka bootstrap servers, comma separated"})
    app_id: str = field(default="fraud-interceptor", metadata={"doc": "Consumer group and Faust app id"})
    topic_prefix: str = field(default="", metadata={"doc": "Prefix for every topic name (e.g. 'bank1.')"})
    partitions: int = field(default=4, metadata={"doc": "Partitions of the topics the worker creates"})
    rules_path: str = field(default="", metadata={"doc": "Ruleset file or directory ('' = the default ruleset)"})
    rules_poll_s: float = field(default=2.0, metadata={"doc": "How often to check the rules path for changes (s)"})
    session_timeout_s: float = field(
        default=60.0,
        metadata={"doc": "Consumer-group session (s): how long a crashed worker's partitions wait for another worker"},
    )
    reload_guard: str = field(
        default="refuse",
        metadata={"doc": "refuse, warn or off: a reload that changes too many recent decisions (docs/rules.md)"},
    )
    reload_max_changed_share: float = field(
        default=0.01, metadata={"doc": "Share of recent transactions a reload may change the action of"}
    )
    data_dir: str = field(default="./data", metadata={"doc": "Folder for the worker's local state"})
    checkpoint_interval_s: float = field(
        default=10.0, metadata={"doc": "Seconds between state checkpoints in the data dir (0 = no checkpoints)"}
    )
    decision_log_size: int = field(
        default=200_000,
        metadata={
            "doc": "Decisions remembered for re-delivered transactions; a checkpoint is also taken once half of "
            "them are new since the last one, so everything a restart re-delivers is remembered"
        },
    )
    timezone: str = field(
        default=DEFAULT_ZONE,
        metadata={
            "doc": "The bank's time zone, for the hour and night features: an IANA name (Europe/London, daylight "
            "saving time included) or an offset from UTC (+08:00)"
        },
    )
    metrics_port: int = field(default=9464, metadata={"doc": "Port of the Prometheus /metrics endpoint (0 = off)"})
    metrics_enabled: bool = field(default=True, metadata={"doc": "Count metrics at all (false only to benchmark)"})
    batch_max: int = field(default=1000, metadata={"doc": "Most transactions scored in one kernel call"})
    batch_within_s: float = field(
        default=0.2, metadata={"doc": "Longest wait for a fetch while the input topics are quiet (seconds)"}
    )
    log_level: str = field(default="info", metadata={"doc": "Log level: debug, info, warning, error"})
    security_protocol: str = field(default="PLAINTEXT", metadata={"doc": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"})
    sasl_mechanism: str = field(default="", metadata={"doc": "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"})
    sasl_username: str = field(default="", metadata={"doc": "SASL user name"})
    sasl_password: Secret = field(default=Secret(""), metadata={"doc": "SASL password (never logged)"})
    ssl_cafile: str = field(default="", metadata={"doc": "CA bundle to verify the brokers' certificates"})
    ssl_certfile: str = field(
        default="",
        metadata={"doc": "Client certificate (PEM) for brokers that require one (mutual TLS); may hold the key too"},
    )
    ssl_keyfile: str = field(
        default="",
        metadata={"doc": "Private key (PEM) of the client certificate, unless INTERCEPTOR_SSL_CERTFILE has it"},
    )
    ssl_key_password: Secret = field(
        default=Secret(""), metadata={"doc": "Password of an encrypted client key (never logged)"}
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `INTERCEPTOR_<NAME>` variables; unknown values raise SettingsError."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(_env_name(f.name))
            if raw is None:
                continue
            values[f.name] = _convert(f.name, raw, type(f.default))
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.partitions < 1:
            raise SettingsError(f"{_env_name('partitions')} must be >= 1, got {self.partitions}")
        if self.batch_max < 1:
            raise SettingsError(f"{_env_name('batch_max')} must be >= 1, got {self.batch_max}")
        if self.decision_log_size < 2:
            raise SettingsError(f"{_env_name('decision_log_size')} must be >= 2, got {self.decision_log_size}")
        try:
            parse_zone(self.timezone)
        except ValueError as exc:
            raise SettingsError(f"{_env_name('timezone')}: {exc}") from None
        if self.security_protocol not in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}:
            raise SettingsError(f"{_env_name('security_protocol')}: unknown protocol {self.security_protocol!r}")
        if self.session_timeout_s < 6:
            raise SettingsError(f"{_env_name('session_timeout_s')} must be >= 6 seconds, got {self.session_timeout_s}")
        if self.reload_guard not in {"refuse", "warn", "off"}:
            raise SettingsError(f"{_env_name('reload_guard')} must be refuse, warn or off, got {self.reload_guard!r}")
        if not 0 <= self.reload_max_changed_share <= 1:
            raise SettingsError(
                f"{_env_name('reload_max_changed_share')} must be between 0 and 1, got {self.reload_max_changed_share}"
            )
        if self.rules_path and not Path(self.rules_path).exists():
            raise SettingsError(f"{_env_name('rules_path')}: no such file or directory: {self.rules_path}")
        self._validate_tls()

    def _validate_tls(self) -> None:
        tls_set = [_env_name(name) for name in TLS_SETTINGS if getattr(self, name)]
        if tls_set and self.security_protocol not in ("SSL", "SASL_SSL"):
            # the clients would connect without TLS and ignore them: a CA or certificate meant for a TLS listener
            # is a sign that the protocol is wrong, not that TLS is unwanted
            with_tls = "SASL_SSL" if self.security_protocol == "SASL_PLAINTEXT" else "SSL (or SASL_SSL)"
            raise SettingsError(
                f"{' and '.join(tls_set)} {'is' if len(tls_set) == 1 else 'are'} set, but "
                f"{_env_name('security_protocol')}={self.security_protocol} does not use TLS: set "
                f"{_env_name('security_protocol')}={with_tls} to use TLS, or unset {', '.join(tls_set)}"
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise SettingsError(f"{_env_name(name)}: no such file: {path}")
        if (self.ssl_keyfile or self.ssl_key_password) and not self.ssl_certfile:
            given = _env_name("ssl_keyfile" if self.ssl_keyfile else "ssl_key_password")
            raise SettingsError(f"{given} needs {_env_name('ssl_certfile')}, the client certificate of the key")

    def topic(self, name: str) -> str:
        """The full name of one of the contract's topics, e.g. `topic('decisions')`."""
        return f"{self.topic_prefix}{name}"

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip().removeprefix("kafka://") for s in self.broker.split(",") if s.strip()]

    def kafka_client_config(self) -> dict[str, object]:
        """Keyword arguments for kafka-python / aiokafka clients (bootstrap, security)."""
        config: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": str(self.sasl_password),
            }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            # kafka-python's names; aiokafka gets an SSL context made of them instead (streams.kafka_security)
            if self.ssl_cafile:
                config["ssl_cafile"] = self.ssl_cafile
            if self.ssl_certfile:
                config["ssl_certfile"] = self.ssl_certfile
                config["ssl_keyfile"] = self.ssl_keyfile or None
                config["ssl_password"] = str(self.ssl_key_password)  # "", not None: None lets OpenSSL prompt
        return config

    def faust_broker_url(self) -> str:
        return ";".join(f"kafka://{s}" for s in self.bootstrap_servers)

    @staticmethod
    def documented() -> list[tuple[str, str, str]]:
        """(variable, default, description) for every setting, for --help and docs."""
        return [(_env_name(f.name), repr(f.default), f.metadata["doc"]) for f in fields(Settings)]


TLS_SETTINGS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password")


def _env_name(name: str) -> str:
    return f"INTERCEPTOR_{name.upper()}"


def _convert(name: str, raw: str, kind: type) -> object:
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise SettingsError(f"{_env_name(name)} must be a {kind.__name__}, got {raw!r}") from None
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{_env_name(name)} must be true or false, got {raw!r}")
    if kind is Secret:
        return Secret(raw)
    return raw
