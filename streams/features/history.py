"""Feature rows for a short, hand-written history of transactions and calls (rule tests use it)."""

from __future__ import annotations

import numpy as np
import orjson

from streams.events import decode_call, decode_transaction
from streams.features.engine import FeatureEngine


def featurize_history(transactions: list[dict], calls: list[dict]) -> np.ndarray:
    """One feature row per transaction, computed as the worker would after the calls arrived."""
    engine = FeatureEngine()
    for call in calls:
        engine.add_call(decode_call(orjson.dumps(call)))
    return engine.process([decode_transaction(orjson.dumps(t)) for t in transactions])
