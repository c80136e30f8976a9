"""The streaming worker: Kafka -> decode -> features/state -> kernel -> decisions -> Kafka + metrics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fraud-interceptor")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
