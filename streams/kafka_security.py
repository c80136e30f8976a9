"""Kafka connection security from `Settings`: SASL (PLAIN/SCRAM) and TLS for Faust and for plain aiokafka clients.

The password is a `Secret` and is unwrapped only here, where the client needs it.
"""

from __future__ import annotations

import ssl

import faust

from streams.settings import Settings


def aiokafka_config(settings: Settings) -> dict[str, object]:
    config = dict(settings.kafka_client_config())
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        config["ssl_context"] = _ssl_context(settings)
    return config


def faust_credentials(settings: Settings) -> faust.auth.Credentials | None:
    if settings.sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=str(settings.sasl_password),
            mechanism=settings.sasl_mechanism,
            ssl_context=_ssl_context(settings) if settings.security_protocol == "SASL_SSL" else None,
        )
    if settings.security_protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    return None


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ssl_cafile or None)
