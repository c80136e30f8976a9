"""The numba scoring kernel: evaluates a compiled ruleset over a batch of feature rows."""
