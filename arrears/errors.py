"""The one exception root of Arrears; each package narrows it where it raises."""

from __future__ import annotations


class ArrearsError(Exception):
    """Base of every error Arrears raises on purpose."""


class ConfigError(ArrearsError):
    """Settings or the config file are invalid; the message names the key."""


class BrokerError(ArrearsError):
    """The Kafka broker could not be started, reached or used."""


class PublishError(ArrearsError):
    """A record could not be published (validation or delivery)."""
