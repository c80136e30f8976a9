"""Errors of the scoring kernel.

`InterceptorError` is the base of every error the project raises. It lives here because `scoring` is the
package every other one imports (rules -> scoring, streams -> rules + scoring), so nothing imports upwards.
"""


class InterceptorError(Exception):
    """Base of every error raised by fraud-interceptor."""


class ScoringError(InterceptorError):
    """A batch or program handed to the kernel has the wrong shape or dtype."""
