"""Errors of the streaming worker."""

from scoring.errors import InterceptorError


class StreamsError(InterceptorError):
    """Base of the worker's errors."""


# every reason_class an EventError can carry (docs/events.md): a metric label, so a bounded set
REASON_CLASSES = (
    "invalid_json",
    "invalid_encoding",
    "oversized",
    "missing_field",
    "invalid_field",
    "out_of_range",
    "duplicate_txn_id",
)


class EventError(StreamsError):
    """An event failed decoding or validation; `field` names the offending field ('' for the whole message).

    `reason_class` is a small, bounded word (invalid_json, missing_field, invalid_field, ...) used as a metric
    label and in the dead-letter record; the message says what was expected and what was found.
    """

    def __init__(self, field: str, reason: str, reason_class: str = "invalid_field") -> None:
        self.field = field
        self.reason = reason
        self.reason_class = reason_class
        super().__init__(f"field '{field}': {reason}" if field else reason)


class SettingsError(StreamsError):
    """A worker setting from the environment is missing or malformed."""


class TopicLayoutError(SettingsError):
    """The contract topics exist with partition counts that do not fit together (streams/topics.py)."""


class BrokerConnectionError(StreamsError):
    """The worker cannot talk to the brokers with its settings; the message names the cause (never the password)."""
