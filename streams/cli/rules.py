"""`interceptor rules ...`: check, test and list features of rulesets (owned by the rules work)."""

import click


@click.group()
def rules() -> None:
    """Check, test and explore rulesets."""
