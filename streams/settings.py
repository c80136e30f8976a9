"""Worker settings: read from the environment in one place, validated once, secrets kept out of logs.

Every setting is an `INTERCEPTOR_*` environment variable; `interceptor worker --help` lists them.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
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

    broker: str = field(
        default="127.0.0.1:9092",
        metadata={"doc": "Kafka bootstrap servers, host:port, comma separated (port 9092 if none, as Kafka's clients)"},
    )
    app_id: str = field(
        default="fraud-interceptor",
        metadata={"doc": "Consumer group and Faust app id; also names the worker's files in the data dir"},
    )
    topic_prefix: str = field(
        default="", metadata={"doc": "Prefix for every topic name (e.g. 'bank1.'): letters, digits, '.', '_', '-'"}
    )
    partitions: int = field(default=4, metadata={"doc": "Partitions of the topics the worker creates"})
    rules_path: str = field(default="", metadata={"doc": "Ruleset file or directory ('' = the default ruleset)"})
    rules_poll_s: float = field(
        default=2.0, metadata={"doc": "How often to check the rules path for changes (seconds, > 0)"}
    )
    session_timeout_s: float = field(
        default=60.0,
        metadata={
            "doc": "Consumer-group session (seconds, >= 6): how long a crashed worker's partitions wait for another "
            "worker"
        },
    )
    reload_guard: str = field(
        default="refuse",
        metadata={"doc": "refuse, warn or off: a reload that changes too many recent decisions (docs/rules.md)"},
    )
    reload_max_changed_share: float = field(
        default=0.01, metadata={"doc": "Share of recent transactions a reload may change the action of"}
    )
    data_dir: str = field(
        default="./data",
        metadata={
            "doc": "Folder for the worker's local state (created if missing); one worker per data dir and app id"
        },
    )
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
    metrics_port: int = field(
        default=9464, metadata={"doc": "Port of the Prometheus /metrics endpoint, 1-65535 (0 = off)"}
    )
    metrics_enabled: bool = field(default=True, metadata={"doc": "Count metrics at all (false only to benchmark)"})
    batch_max: int = field(default=1000, metadata={"doc": "Most transactions scored in one kernel call"})
    batch_within_s: float = field(
        default=0.2, metadata={"doc": "Longest wait for a fetch while the input topics are quiet (seconds, > 0)"}
    )
    log_level: str = field(default="info", metadata={"doc": "Log level: debug, info, warning, error or critical"})
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
        """Build settings from `INTERCEPTOR_<NAME>` variables; unknown values raise SettingsError. An
        `INTERCEPTOR_*` variable that is no setting (a misspelling) is named in a warning on stderr, once."""
        env = os.environ if env is None else env
        for warning in unknown_variables(env):
            if warning not in _WARNED:
                _WARNED.add(warning)
                print(f"warning: {warning}", file=sys.stderr)
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
        for name, least in (("partitions", 1), ("batch_max", 1), ("decision_log_size", 2)):
            if getattr(self, name) < least:
                raise SettingsError(f"{_env_name(name)} must be >= {least}, got {getattr(self, name)}")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(
                f"{_env_name('metrics_port')} must be a port number, 1 to 65535 (or 0 = no /metrics endpoint), "
                f"got {self.metrics_port}"
            )
        if self.session_timeout_s < 6:
            raise SettingsError(f"{_env_name('session_timeout_s')} must be >= 6 seconds, got {self.session_timeout_s}")
        if self.checkpoint_interval_s < 0:
            raise SettingsError(
                f"{_env_name('checkpoint_interval_s')} must be >= 0 seconds (0 = no checkpoints), "
                f"got {self.checkpoint_interval_s}"
            )
        for name in ("rules_poll_s", "batch_within_s"):  # 0 would make the worker poll without pause
            if getattr(self, name) <= 0:
                raise SettingsError(f"{_env_name(name)} must be > 0 seconds, got {getattr(self, name)}")
        if not 0 <= self.reload_max_changed_share <= 1:
            raise SettingsError(
                f"{_env_name('reload_max_changed_share')} must be between 0 and 1, got {self.reload_max_changed_share}"
            )
        self._validate_broker()
        if not self.app_id or "/" in self.app_id or self.app_id in (".", ".."):
            raise SettingsError(
                f"{_env_name('app_id')} must be a name without '/' (it names files in the data dir), "
                f"got {self.app_id!r}"
            )
        if not re.fullmatch(r"[A-Za-z0-9._-]*", self.topic_prefix):
            raise SettingsError(
                f"{_env_name('topic_prefix')} may hold only letters, digits, '.', '_' and '-' (Kafka's topic names), "
                f"got {self.topic_prefix!r}"
            )
        if self.log_level.lower() not in LOG_LEVELS:
            raise SettingsError(
                f"{_env_name('log_level')} must be debug, info, warning, error or critical, got {self.log_level!r}"
            )
        try:
            parse_zone(self.timezone)
        except ValueError as exc:
            raise SettingsError(f"{_env_name('timezone')}: {exc}") from None
        if self.security_protocol not in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}:
            raise SettingsError(f"{_env_name('security_protocol')}: unknown protocol {self.security_protocol!r}")
        if self.reload_guard not in {"refuse", "warn", "off"}:
            raise SettingsError(f"{_env_name('reload_guard')} must be refuse, warn or off, got {self.reload_guard!r}")
        if self.rules_path and not Path(self.rules_path).exists():
            raise SettingsError(f"{_env_name('rules_path')}: no such file or directory: {self.rules_path}")
        self._validate_data_dir()
        self._validate_tls()

    def _validate_broker(self) -> None:
        servers = [s.strip() for s in self.broker.split(",")]
        if not any(servers):
            raise SettingsError(
                f"{_env_name('broker')} must name at least one broker as host:port, got {self.broker!r}"
            )
        for server in servers:
            try:
                _split_server(server)
            except ValueError as exc:
                raise SettingsError(f"{_env_name('broker')}: {exc}") from None

    def _validate_data_dir(self) -> None:
        """The data dir is a folder, or one can be made there: not a file, nor below one. (Whether this user may
        write there is the worker's to find out when it makes the folder: the other commands need no data dir.)"""
        folder = Path(self.data_dir or ".")
        where = f"{_env_name('data_dir')}={self.data_dir}"
        try:
            self._check_data_dir(folder, where)
        except OSError as exc:  # a parent this user may not search: Path.exists raises
            raise SettingsError(f"{where}: cannot look there: {exc.strerror}") from None

    @staticmethod
    def _check_data_dir(folder: Path, where: str) -> None:
        if folder.exists() and not folder.is_dir():
            raise SettingsError(f"{where} is a file, not a directory: point it at a directory for the worker's state")
        parent = folder.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise SettingsError(f"{where}: cannot create the directory, {parent} is a file")

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
        """`host:port` of each broker in INTERCEPTOR_BROKER, with Kafka's port 9092 where none is given."""
        servers = []
        for server in self.broker.split(","):
            if server.strip():
                try:
                    host, port = _split_server(server)
                except ValueError:  # not validated (Settings(...) built directly): left to the clients to refuse
                    servers.append(server.strip().removeprefix("kafka://"))
                    continue
                servers.append(f"{host}:{port}")
        return servers

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
DEFAULT_KAFKA_PORT = 9092  # what kafka-python, aiokafka and librdkafka use when a bootstrap server has no port
LOG_LEVELS = frozenset({"debug", "info", "warning", "warn", "error", "critical"})  # the names logging knows
# INTERCEPTOR_* variables read elsewhere, not settings of the worker: no warning for them
OTHER_VARIABLES = frozenset({"INTERCEPTOR_TEST_BROKER"})  # tests/integration/conftest.py: the broker tests use
_WARNED: set[str] = set()  # warnings already printed by this process


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """A warning for each `INTERCEPTOR_*` variable in `env` that is no setting, with the closest setting's name.

    >>> unknown_variables({"INTERCEPTOR_BROKERS": "k1:9092", "INTERCEPTOR_TEST_BROKER": "k1:9092"})
    ['INTERCEPTOR_BROKERS is not a setting and is ignored; did you mean INTERCEPTOR_BROKER?']
    """
    known = {f.name.upper() for f in fields(Settings)}
    warnings = []
    for variable in sorted(env):
        name = variable.removeprefix("INTERCEPTOR_")
        if name == variable or name in known or variable in OTHER_VARIABLES:
            continue
        # compared without the shared prefix, which would make every name look close
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {_env_name(close[0])}?" if close else "`interceptor worker --help` lists the settings"
        warnings.append(f"{variable} is not a setting and is ignored; {hint}")
    return warnings


def _split_server(server: str) -> tuple[str, int]:
    """`host`, `host:port`, `[ipv6]` or `[ipv6]:port` (a `kafka://` in front is allowed) -> (host, port)."""
    text = server.strip().removeprefix("kafka://")
    if "://" in text:
        raise ValueError(f"{server.strip()!r} is not host:port (only kafka:// may come before it)")
    if text.startswith("["):
        host, bracket, rest = text.partition("]")
        host += bracket
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{server.strip()!r} is not [IPv6 address]:port")
        port = rest[1:] if rest else None
    elif text.count(":") > 1:
        raise ValueError(f"{server.strip()!r}: an IPv6 address goes in brackets, as in [::1]:9092")
    else:
        host, colon, port_text = text.partition(":")
        port = port_text if colon else None
    if not host or host == "[]" or any(c in host for c in "/@ "):
        raise ValueError(f"{server.strip()!r} is not host:port")
    if port is None:
        return host, DEFAULT_KAFKA_PORT
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{server.strip()!r} is not host:port, the port must be a number from 1 to 65535")
    return host, int(port)


def _env_name(name: str) -> str:
    return f"INTERCEPTOR_{name.upper()}"


def _convert(name: str, raw: str, kind: type) -> object:
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{_env_name(name)} must be an integer, got {raw!r}") from None
    if kind is float:
        try:
            number = float(raw)
        except ValueError:
            raise SettingsError(f"{_env_name(name)} must be a number, got {raw!r}") from None
        if not math.isfinite(number):
            raise SettingsError(f"{_env_name(name)} must be a finite number, got {raw!r}")
        return number
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{_env_name(name)} must be true or false, got {raw!r}")
    if kind is Secret:
        return Secret(raw)
    return raw
