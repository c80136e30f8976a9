"""`--timezone`, for the commands that compute features outside the worker (`backtest`, `rules test`) and for
`simulate`, whose simulated bank lives by it: the bank's time zone for `hour` and `night`, from the worker's own
INTERCEPTOR_TIMEZONE unless given."""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import Any

import click
from click.core import ParameterSource

from streams.features.localtime import DEFAULT_ZONE, parse_zone


def _zone(ctx: click.Context, param: click.Parameter, value: str) -> tzinfo:
    try:
        return parse_zone(value)
    except ValueError as exc:
        # name where the value came from (click's own hint names the option and the variable, whichever it was)
        if ctx.get_parameter_source(param.name or "") is ParameterSource.ENVIRONMENT:
            raise click.BadParameter(str(exc), param_hint=f"environment variable {param.envvar}") from None
        raise click.BadParameter(str(exc), param_hint="'--timezone'") from None


_HELP = (
    "The bank's time zone for the hour and night features, as the worker's INTERCEPTOR_TIMEZONE (which sets it "
    "here too, unless --timezone is given): an IANA name (Europe/London) or an offset from UTC."
)


def timezone_option(command: Callable[..., Any], *, help: str = _HELP) -> Callable[..., Any]:
    """Adds `--timezone`, passed to the command as `zone` (a tzinfo); `help` says what the command does with it."""
    return click.option(
        "--timezone",
        "zone",
        envvar="INTERCEPTOR_TIMEZONE",
        show_envvar=True,
        default=DEFAULT_ZONE,
        show_default=True,
        callback=_zone,
        help=help,
    )(command)
