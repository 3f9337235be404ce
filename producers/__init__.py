"""Upstream publishers: the loan-event publisher library, the business-date clock, the simulator."""

from .publisher import LoanEventPublisher

__all__ = ["LoanEventPublisher"]
