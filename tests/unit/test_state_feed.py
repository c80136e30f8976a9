"""Every worker's state holds every partition's transactions (streams/state_feed.py): what a worker records of
the partitions other workers decide, and the offsets a checkpoint saves with it."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson

from rules.features import REGISTRY
from streams.outputs import RawRecord, Verdict
from streams.pipeline import TransactionPipeline
from streams.scorer import AllowAllScorer
from streams.state_feed import StateFeed

MINUTE_MS = 60_000
DISTINCT_1H = REGISTRY.column("payee.distinct_payers_1h")


def txn(i: int, payer: str, payee: str = "mule", minutes: int = 0) -> bytes:
    return orjson.dumps({"txn_id": f"t{i}", "ts": 1_772_325_000_000 + minutes * MINUTE_MS, "payer_account": payer,
                         "payee_account": payee, "amount": f"{100 + i}.00"})  # fmt: skip


def records(values: list[bytes], partition: int = 0) -> list[RawRecord]:
    return [RawRecord(v, "transactions", partition, i, 0, b"k") for i, v in enumerate(values)]


class Capture:
    version = "capture"

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []

    def score(self, transactions, features):  # type: ignore[no-untyped-def]
        self.rows.extend(features)
        return [Verdict("allow", 0.0) for _ in transactions]


def test_a_worker_counts_the_payers_other_workers_decided() -> None:
    # a mule paid by four victims whose banks' feeds land on two partitions, decided by two workers
    scorer = Capture()
    worker = TransactionPipeline(scorer)
    worker.process(records([txn(1, "alice", minutes=0)]), now_ms=0)
    assert worker.record_others(records([txn(2, "bob", minutes=5), txn(3, "carol", minutes=9)], partition=1)) == 2
    worker.process(records([txn(4, "dave", minutes=12)]), now_ms=0)
    assert scorer.rows[-1][DISTINCT_1H] == 3  # alice, and bob and carol from the other partition

    alone = Capture()  # without the other partition's transactions the mule looks like it has one payer
    TransactionPipeline(alone).process(records([txn(1, "alice"), txn(4, "dave", minutes=12)]), now_ms=0)
    assert alone.rows[-1][DISTINCT_1H] == 1


def test_recorded_transactions_build_the_same_state_as_deciding_them() -> None:
    mine = [txn(1, "alice", "shop"), txn(3, "carol", "bob", minutes=60)]
    theirs = [txn(2, "bob", "shop", minutes=30), txn(4, "dave", "alice", minutes=90), b"{broken"]
    single = TransactionPipeline(AllowAllScorer())  # one worker deciding both partitions
    single.process(records(mine + theirs[:2]), now_ms=0)
    worker = TransactionPipeline(AllowAllScorer())
    worker.process(records(mine), now_ms=0)
    assert worker.record_others(records(theirs, partition=1)) == 2  # the broken one is its owner's dead letter
    for account in ("alice", "bob", "carol", "dave", "shop"):
        assert worker.engine.store.account(account) == single.engine.store.account(account), account
    assert len(worker.decision_log) == 2  # recorded, not decided


def test_a_checkpoint_saves_what_the_worker_processed_of_its_own_partitions_and_the_feed_of_the_rest() -> None:
    feed = StateFeed("transactions", {}, lambda records: 0, committed=None, positions={0: 5, 1: 7, 2: 4})  # type: ignore[arg-type]
    feed.owned = {0, 2}
    # partition 2 was taken over at 4 and nothing processed since: the state holds it up to 4
    assert feed.state_offsets({0: 9, 1: 100}) == {0: 9, 1: 7, 2: 4}
    feed.give_up(0, 9)  # taken away after its last commit: the feed reads it on from there
    assert (feed.owned, feed.positions[0], feed.frontier[0]) == ({2}, 9, 9)
    feed.give_up(2, None)
    assert (feed.owned, feed.positions[2]) == (set(), 4)


def test_a_new_owner_decides_only_once_the_partition_is_recorded_up_to_its_commit() -> None:
    async def scenario() -> None:
        async def committed(partitions: list[int]) -> dict[int, int]:
            return {1: 10}  # the previous owner's last commit: deciding starts at offset 10

        feed = StateFeed("transactions", {}, lambda records: 0, committed, positions={1: 4})
        taking = asyncio.ensure_future(feed.take_over([1]))
        await asyncio.sleep(0.05)
        assert not taking.done() and 1 not in feed.owned  # offsets 4..9 are not in the state yet
        feed.positions[1] = 10  # the feed recorded them
        await asyncio.wait_for(taking, 1)
        assert feed.owned == {1} and feed.frontier[1] == 10

    asyncio.run(scenario())
