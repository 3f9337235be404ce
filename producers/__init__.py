"""Upstream publishers: the loan-event publisher library, the business-date clock, the simulator."""

from arrears.errors import PublishError

from .publisher import LoanEventPublisher

__all__ = ["LoanEventPublisher", "PublishError"]
