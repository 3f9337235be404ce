"""Arrears: a Kafka-native delinquency and third-party collections pipeline.

This package holds what every component shares: the pure domain rules
(:mod:`arrears.domain`), settings, topic names, the embedded broker and the CLI.
"""

__version__ = "0.1.0"
