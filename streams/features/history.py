"""Features of the last transaction of a short, hand-written history (rule tests use it).

The history runs through the worker's own pipeline with the ruleset under test, one transaction per batch,
so earlier transfers update the state *and* open holds exactly as in the worker (`payer.open_holds`).
"""

from __future__ import annotations

from datetime import tzinfo

import numpy as np
import orjson

from rules.ruleset import CompiledRuleset
from streams.events import decode_call, decode_transaction
from streams.features.engine import FeatureConfig, FeatureEngine
from streams.features.localtime import DEFAULT_TZ
from streams.outputs import RawRecord
from streams.pipeline import TransactionPipeline
from streams.scorer import RulesetScorer


def featurize_history(
    transactions: list[dict], calls: list[dict], ruleset: CompiledRuleset, zone: tzinfo = DEFAULT_TZ
) -> np.ndarray:
    """The feature row of the last transaction, computed as the worker would after the ones before it, in the
    bank's time zone `zone`."""
    engine = FeatureEngine(FeatureConfig(zone=zone))
    pipeline = TransactionPipeline(RulesetScorer(ruleset), hold_clock="event", engine=engine)
    for call in calls:
        pipeline.engine.add_call(decode_call(orjson.dumps(call)))
    *before, last = [decode_transaction(orjson.dumps(t)) for t in transactions]
    for i, (raw, txn) in enumerate(zip(transactions, before, strict=False)):
        pipeline.process([RawRecord(orjson.dumps(raw), "history", 0, i, txn.ts_ms)], now_ms=txn.ts_ms)
    pipeline.expire(last.ts_ms)
    return pipeline.engine.process([last])[0]
