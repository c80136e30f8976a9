"""Errors of the rule language."""

from scoring.errors import InterceptorError


class RuleError(InterceptorError):
    """A ruleset could not be loaded; its message lists every problem found."""
