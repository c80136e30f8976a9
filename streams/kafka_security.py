"""Kafka connection security from `Settings`: SASL (PLAIN/SCRAM) and TLS for Faust and for plain aiokafka clients.

The passwords (SASL, and a client key's for mutual TLS) are `Secret`s and are unwrapped only here and in
`Settings.kafka_client_config`, where the clients need them. aiokafka logs every request it sends at debug level,
and a SASL PLAIN token carries the password in clear: building a SASL client config here also installs a log
filter that blanks those tokens (`INTERCEPTOR_LOG_LEVEL=debug` must not print it).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

import faust

from streams.errors import BrokerConnectionError, SettingsError
from streams.settings import Settings

if TYPE_CHECKING:
    from aiokafka.conn import AIOKafkaConnection

SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
TLS_PROTOCOLS = ("SSL", "SASL_SSL")
_KAFKA_PYTHON_SSL_KEYS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password")
# TLS alerts a broker sends when it wants a client certificate and got none, or refuses the one it got
_CLIENT_CERTIFICATE_ALERTS = {
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "TLSV1_ALERT_ACCESS_DENIED",
}
__all__ = ["BrokerConnectionError", "aiokafka_config", "check_connection", "check_security", "faust_credentials"]


def check_security(settings: Settings) -> None:
    """Raise SettingsError for a protocol and a mechanism that do not go together: Faust and the other clients
    would otherwise disagree silently (Faust uses SASL whenever a mechanism is set, the others follow the
    protocol)."""
    if settings.security_protocol in SASL_PROTOCOLS and not settings.sasl_mechanism:
        raise SettingsError(
            f"INTERCEPTOR_SECURITY_PROTOCOL={settings.security_protocol} needs INTERCEPTOR_SASL_MECHANISM "
            "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
        )
    if settings.sasl_mechanism and settings.security_protocol not in SASL_PROTOCOLS:
        raise SettingsError(
            f"INTERCEPTOR_SASL_MECHANISM={settings.sasl_mechanism} needs INTERCEPTOR_SECURITY_PROTOCOL "
            f"SASL_PLAINTEXT or SASL_SSL, not {settings.security_protocol}"
        )


def aiokafka_config(settings: Settings) -> dict[str, object]:
    if settings.sasl_mechanism:
        redact_sasl_tokens_in_logs()
    config = dict(settings.kafka_client_config())
    for name in _KAFKA_PYTHON_SSL_KEYS:  # aiokafka takes the CA and the client certificate through the context
        config.pop(name, None)
    if settings.security_protocol in TLS_PROTOCOLS:
        config["ssl_context"] = _ssl_context(settings)
    return config


def faust_credentials(settings: Settings) -> faust.auth.Credentials | None:
    check_security(settings)
    if settings.sasl_mechanism:
        redact_sasl_tokens_in_logs()
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=str(settings.sasl_password),
            mechanism=settings.sasl_mechanism,
            ssl_context=_ssl_context(settings) if settings.security_protocol == "SASL_SSL" else None,
        )
    if settings.security_protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    return None


def check_connection(settings: Settings, timeout_s: float = 15.0) -> None:
    """Connect to the bootstrap servers with the worker's security settings and ask one for metadata; raise
    BrokerConnectionError naming the cause when none answers.

    The Kafka clients retry a refused login until their own timeout and then report only that they could not
    bootstrap; this says "authentication refused" (or TLS failed, or wrong listener) at once. Meant to run
    before the worker's clients start."""
    check_security(settings)
    asyncio.run(_check_connection(settings, timeout_s))


async def _check_connection(settings: Settings, timeout_s: float) -> None:
    from aiokafka.errors import (
        IllegalSaslStateError,
        KafkaConnectionError,
        KafkaError,
        SaslAuthenticationFailed,
        UnsupportedSaslMechanismError,
    )

    config = aiokafka_config(settings)
    servers: list[str] = config.pop("bootstrap_servers")  # type: ignore[assignment]
    who = f"user {settings.sasl_username!r} with {settings.sasl_mechanism}"
    problems = []
    for server in servers:
        host, _, port = server.rpartition(":")  # Settings.bootstrap_servers gives every server its port
        try:
            await _ask_for_metadata(host.strip("[]"), int(port), timeout_s, config)
            return
        except SaslAuthenticationFailed as exc:
            # the same credentials go to every broker: no point asking the next one
            raise BrokerConnectionError(
                f"SASL authentication as {who} was refused by {server} ({_broker_message(exc)}); "
                "check INTERCEPTOR_SASL_USERNAME and INTERCEPTOR_SASL_PASSWORD"
            ) from None
        except UnsupportedSaslMechanismError:
            raise BrokerConnectionError(
                f"{server} does not offer SASL mechanism {settings.sasl_mechanism} on this listener; "
                "check INTERCEPTOR_SASL_MECHANISM"
            ) from None
        except IllegalSaslStateError:
            problems.append(f"{server} does not speak SASL on this port (INTERCEPTOR_SECURITY_PROTOCOL?)")
        except ssl.SSLCertVerificationError as exc:
            # an untrusted CA, or a certificate that does not name the host; a different broker may pass
            problems.append(
                f"TLS with {server} failed: its certificate was refused ({exc.verify_message}) when checked "
                f"against {_trusted_cas(settings)}; check INTERCEPTOR_SSL_CAFILE"
            )
        except ssl.SSLError as exc:  # with TLS 1.2 a refused client certificate fails the handshake itself
            problems.append(
                _client_certificate_refused(server, exc, settings)
                or f"TLS with {server} failed: {exc.reason or exc} (INTERCEPTOR_SSL_CAFILE?)"
            )
        except KafkaConnectionError as exc:
            # with TLS 1.3 the client's handshake is done before the broker checks the client's certificate: the
            # broker's alert ends the first request
            cause = exc.__cause__
            refused = _client_certificate_refused(server, cause, settings) if isinstance(cause, ssl.SSLError) else ""
            problems.append(refused or f"{server} closed the connection{_listener_hint(settings)}")
        except ConnectionResetError:  # a listener without TLS drops a TLS client's handshake
            problems.append(f"{server} reset the connection{_listener_hint(settings)}")
        except (OSError, TimeoutError, KafkaError) as exc:
            problems.append(f"{server}: {type(exc).__name__}" + (f": {exc}" if str(exc) else ""))
    raise BrokerConnectionError(f"no broker answered with {settings.security_protocol}: " + "; ".join(problems))


async def _ask_for_metadata(host: str, port: int, timeout_s: float, config: dict[str, object]) -> None:
    """Connect (TLS, SASL), send one metadata request, close; the exceptions are aiokafka's and ssl's."""
    from aiokafka.conn import AIOKafkaConnection
    from aiokafka.errors import KafkaError
    from aiokafka.protocol.metadata import MetadataRequest

    conn = AIOKafkaConnection(host, port, request_timeout_ms=int(timeout_s * 1000), **config)  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(timeout_s):
            await conn.connect()
            await conn.send(MetadataRequest([]))
    except (KafkaError, TimeoutError):
        await _closed(conn)  # the broker answered or went silent: a connection was made
        raise
    except OSError:  # refused, reset, or a failed TLS handshake: no connection was made
        conn.close()
        raise
    await _closed(conn)


async def _closed(conn: AIOKafkaConnection) -> None:
    """Close an aiokafka connection and wait (briefly) until its socket is closed: TLS says goodbye first,
    which takes a round trip, and a socket still open when asyncio.run closes the loop is leaked."""
    await asyncio.wait([conn.close()], timeout=1)


def _listener_hint(settings: Settings) -> str:
    """Why a broker may hang up on a client at once: the listener speaks another protocol."""
    return {
        "PLAINTEXT": " (a SASL or TLS listener? INTERCEPTOR_SECURITY_PROTOCOL)",
        "SSL": " (a listener without TLS, or a SASL one? INTERCEPTOR_SECURITY_PROTOCOL)",
        "SASL_PLAINTEXT": " (a TLS listener? INTERCEPTOR_SECURITY_PROTOCOL)",  # a plain one answers (no SASL)
        "SASL_SSL": " (a listener without TLS? INTERCEPTOR_SECURITY_PROTOCOL)",
    }[settings.security_protocol]


def _client_certificate_refused(server: str, exc: ssl.SSLError, settings: Settings) -> str:
    """The cause, when the broker's TLS alert says that it wants a client certificate or refused ours; else ''."""
    if exc.reason not in _CLIENT_CERTIFICATE_ALERTS:
        return ""
    alert = exc.reason.lower().replace("_", " ").partition(" ")[2]  # "alert bad certificate"
    if not settings.ssl_certfile:
        return (
            f"TLS with {server} failed: the broker requires a client certificate (mutual TLS) and none was given "
            f"({alert}); set INTERCEPTOR_SSL_CERTFILE and INTERCEPTOR_SSL_KEYFILE"
        )
    return (
        f"TLS with {server} failed: the broker refused the client certificate in {settings.ssl_certfile} ({alert}); "
        "it must be signed by a CA the broker trusts and be valid; check INTERCEPTOR_SSL_CERTFILE"
    )


def _trusted_cas(settings: Settings) -> str:
    if settings.ssl_cafile:
        return f"the CA certificates in {settings.ssl_cafile}"
    return "the system's CA certificates (INTERCEPTOR_SSL_CAFILE is not set)"


def _broker_message(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else type(exc).__name__


class _RedactSaslTokens(logging.Filter):
    """Replaces the SASL authentication requests in aiokafka's debug log ("Request to ...: <request>")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(_is_sasl_token(a) for a in record.args):
            record.args = tuple("SaslAuthenticateRequest(<redacted>)" if _is_sasl_token(a) else a for a in record.args)
        return True


def _is_sasl_token(value: object) -> bool:
    return type(value).__name__.startswith("SaslAuthenticateRequest")


_AIOKAFKA_CONNECTION_LOG = logging.getLogger("aiokafka.conn")


def redact_sasl_tokens_in_logs() -> None:
    """Install the filter on aiokafka's connection logger (once per process)."""
    if not any(isinstance(f, _RedactSaslTokens) for f in _AIOKAFKA_CONNECTION_LOG.filters):
        _AIOKAFKA_CONNECTION_LOG.addFilter(_RedactSaslTokens())


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
    except ssl.SSLError as exc:  # a file that holds no PEM certificate (its existence is checked in Settings)
        raise SettingsError(
            f"INTERCEPTOR_SSL_CAFILE: {settings.ssl_cafile} holds no usable PEM CA certificate ({exc.reason or exc})"
        ) from None
    if settings.ssl_certfile:
        password = str(settings.ssl_key_password)
        try:
            # a callable, even for no password: with None, OpenSSL would prompt on the terminal for an encrypted key
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None, password=lambda: password)
        except ssl.SSLError as exc:
            raise SettingsError(_client_certificate_problem(settings, exc)) from None
    return context


def _client_certificate_problem(settings: Settings, exc: ssl.SSLError) -> str:
    """Why the client certificate and key did not load; OpenSSL says only "PEM lib" for most of it."""
    cert, key = settings.ssl_certfile, settings.ssl_keyfile or settings.ssl_certfile
    key_setting = "INTERCEPTOR_SSL_KEYFILE" if settings.ssl_keyfile else "INTERCEPTOR_SSL_CERTFILE"
    if exc.reason == "KEY_VALUES_MISMATCH":
        return (
            f"{key_setting}: the key in {key} does not belong to the certificate in {cert} (INTERCEPTOR_SSL_CERTFILE)"
        )
    cert_text, key_text = _read_text(cert), _read_text(key)
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        return f"INTERCEPTOR_SSL_CERTFILE: {cert} holds no PEM certificate"
    if "ENCRYPTED" in key_text:  # "BEGIN ENCRYPTED PRIVATE KEY", or "Proc-Type: 4,ENCRYPTED" (traditional PEM)
        if not settings.ssl_key_password:
            return f"{key_setting}: the key in {key} is encrypted; set INTERCEPTOR_SSL_KEY_PASSWORD"
        return f"INTERCEPTOR_SSL_KEY_PASSWORD does not decrypt the key in {key} ({key_setting})"
    if "PRIVATE KEY-----" not in key_text:
        if settings.ssl_keyfile:
            return f"INTERCEPTOR_SSL_KEYFILE: {key} holds no PEM private key"
        return f"INTERCEPTOR_SSL_CERTFILE: {cert} holds no private key; set INTERCEPTOR_SSL_KEYFILE to the key's file"
    return f"{key_setting}: cannot use the client certificate {cert} with the key in {key} ({exc.reason or exc})"


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""
