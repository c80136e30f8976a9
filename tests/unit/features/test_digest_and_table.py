"""Id digests are stable and well spread; the account table numbers digests in order of first sight."""

from __future__ import annotations

import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.features.digest import _digest_all, digest, digests
from streams.features.layout import NONE
from streams.features.table import AccountTable


def test_digests_are_pinned() -> None:
    """Checkpoints hold digests: a change of the function must come with a new checkpoint format."""
    assert digests(["6222000000000001", "t-17", "", "a", "é漢😀"]).tolist() == [
        -5057714565239627597,
        6500636699232120191,
        -1166397803181037273,
        507112810378999431,
        -8967740430470342073,
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=30))
def test_a_batch_digests_each_id_as_alone(ids: list[str]) -> None:
    got = digests(ids)
    assert got.dtype == np.int64
    assert got.tolist() == [digest(i) for i in ids]
    assert all(d & 1 and d != NONE and d != 0 for d in got.tolist())


def test_digests_of_numbered_ids_are_distinct() -> None:
    for pattern in ("6222{:012d}", "dev-{}", "t{}"):
        ids = [pattern.format(i) for i in range(300_000)]
        assert len(np.unique(digests(ids))) == len(ids), pattern


def test_an_id_is_its_code_points_and_length() -> None:
    # ids that share code points in another split or order differ
    assert len({digest(x) for x in ("ab", "ba", "a", "b", "abab", "a\x00", "\x00a", "\x00")}) == 8
    codes = np.frombuffer("abc".encode("utf-32-le"), np.uint32)
    assert _digest_all(codes, np.array([3])).view(np.int64)[0] == digest("abc")


def test_table_numbers_in_order_of_first_sight_across_growth_and_pickle() -> None:
    table = AccountTable(capacity=4)
    names = [f"A{i % 3000}" for i in range(10_000)]
    rows = np.concatenate([table.rows(digests(names[k : k + 700])) for k in range(0, len(names), 700)])
    assert rows.tolist() == [i % 3000 for i in range(10_000)]
    assert len(table) == 3000 and table.keys.shape[0] >= 3000
    table = pickle.loads(pickle.dumps(table))
    assert table.find(digest("A2999")) == 2999
    assert table.find(digest("nobody")) is None
    assert table.rows(digests(["A5", "new", "new"])).tolist() == [5, 3000, 3000]


def crowded(i: int) -> int:
    """A digest whose home is one of the last 16 of 1,024 slots: runs are long and wrap around the end."""
    return (((i << 10) | (1008 + i % 16)) << 1) | 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, 699), min_size=1, max_size=300)), max_size=12))
def test_released_rows_leave_lookups_intact_and_are_reused(steps: list[tuple[bool, list[int]]]) -> None:
    """Random batches of lookups and releases against a dict: every account still in the table is found at its
    row, a released one is not, new accounts take released rows first, and a pickle keeps all of it. At most
    700 accounts keep the table at 1,024 slots, where `crowded` digests pile up."""
    table, model = AccountTable(capacity=4), {}
    for k, (release, ids) in enumerate(steps):
        if release:
            gone = sorted({model[i] for i in ids if i in model})
            table.release(np.array(gone, np.int64))
            model = {i: r for i, r in model.items() if r not in gone}
        else:
            free_before, n_before = table.nfree, table.n
            rows = table.rows(np.array([crowded(i) for i in ids], np.int64)).tolist()
            new = [i for i in dict.fromkeys(ids) if i not in model]
            for i, row in zip(ids, rows, strict=True):
                assert model.setdefault(i, row) == row
            assert table.n == n_before + max(0, len(new) - free_before)
        if k % 3 == 2:
            table = pickle.loads(pickle.dumps(table))
        assert table.slots.shape[0] == 1024
        assert len(table) == len(model) == len(set(model.values()))
        assert all(table.find(crowded(i)) == r for i, r in model.items())
        assert all(table.find(crowded(i)) is None for i in ids if i not in model)
