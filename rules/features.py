"""The one registry of features a rule may use.

The streaming feature code fills a float64 matrix whose columns follow `REGISTRY` order; the rule compiler
type-checks expressions against it; `interceptor rules features` prints it. Missing values are NaN.
Booleans are 0.0/1.0; categories are the index of the value in `Feature.categories`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FeatureType(StrEnum):
    NUMBER = "number"
    BOOL = "bool"
    CATEGORY = "category"


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    type: FeatureType
    unit: str
    description: str
    categories: tuple[str, ...] = ()

    def encode(self, value: str) -> float:
        """Column value of a category: its index. Raises ValueError for an unknown value."""
        return float(self.categories.index(value))


CHANNELS = ("mobile", "online", "atm", "counter", "pos", "third_party")
CALLER_RISKS = ("normal", "overseas", "virtual", "flagged")
_N, _B, _C = FeatureType.NUMBER, FeatureType.BOOL, FeatureType.CATEGORY

_FEATURES: tuple[Feature, ...] = (
    # the transaction itself
    Feature("amount", _N, "currency units", "Amount of this transfer."),
    Feature("channel", _C, "", "Channel the payer used; missing when the bank did not say.", CHANNELS),
    Feature(
        "hour",
        _N,
        "hour 0-23",
        "Hour of day of the event time in the bank's time zone (`INTERCEPTOR_TIMEZONE`, default +08:00; an IANA "
        "name follows daylight saving time).",
    ),
    Feature("night", _B, "", "The event time lies between 00:00 and 06:00 in the bank's time zone (as `hour`)."),
    # payer history
    Feature("payer.txn_count_1h", _N, "transactions", "Payer's transfers in the hour before this one."),
    Feature("payer.txn_count_24h", _N, "transactions", "Payer's transfers in the 24 h before this one."),
    Feature("payer.amount_sum_1h", _N, "currency units", "Payer's outgoing amount in the hour before this one."),
    Feature("payer.amount_sum_24h", _N, "currency units", "Payer's outgoing amount in the 24 h before this one."),
    Feature(
        "payer.amount_ratio_to_mean",
        _N,
        "ratio",
        "This amount divided by the payer's running mean amount; missing for a first transfer.",
    ),
    Feature(
        "payer.seconds_since_last_txn",
        _N,
        "seconds",
        "Time since the payer's previous transfer; missing for a first transfer.",
    ),
    Feature(
        "payer.account_age_days",
        _N,
        "days",
        "Age of the payer's account (from payer_account_opened); missing when not sent.",
    ),
    Feature(
        "payer.dormant_reactivated",
        _B,
        "",
        "The payer had no activity for at least the dormancy period (30 days) before this transfer.",
    ),
    Feature("payer.new_device", _B, "", "The device_id was never seen for this payer before."),
    Feature("payer.new_payees_24h", _N, "accounts", "Distinct payees new for this payer in the last 24 h."),
    Feature("payer.on_mule_list", _B, "", "The payer account is on the mule list."),
    Feature(
        "payer.open_holds",
        _N,
        "holds",
        "The payer's held transfers still waiting for verification at this event time (see docs/lifecycle.md).",
    ),
    Feature(
        "payer.inflow_30m", _N, "currency units", "Amount the payer received in the 30 minutes before this transfer."
    ),
    Feature(
        "payer.forwarding_share_30m",
        _N,
        "ratio",
        "This amount divided by payer.inflow_30m (money passed straight on); missing when nothing came in.",
    ),
    # payee (mule side)
    Feature("payee.new_for_payer", _B, "", "The payer never paid this payee before."),
    Feature(
        "payee.days_since_first_paid",
        _N,
        "days",
        "Days since this payer first paid this payee; missing when the payee is new for the payer.",
    ),
    Feature(
        "payee.amount_ratio_to_largest",
        _N,
        "ratio",
        "This amount divided by the largest earlier transfer from this payer to this payee; missing when new.",
    ),
    Feature("payee.distinct_payers_1h", _N, "accounts", "Distinct payers that paid this payee in the last hour."),
    Feature("payee.distinct_payers_24h", _N, "accounts", "Distinct payers that paid this payee in the last 24 h."),
    Feature("payee.inflow_24h", _N, "currency units", "Amount received by this payee in the last 24 h."),
    Feature(
        "payee.account_age_days",
        _N,
        "days",
        "Age of the payee's account (from payee_account_opened); missing when not sent.",
    ),
    Feature(
        "payee.amount_ratio_to_largest_inflow_30d",
        _N,
        "ratio",
        "This amount divided by the largest transfer the payee received from anyone in the last 30 days (to be "
        "exact: in the current 10-day period of the calendar and the three before it, so 30 to 40 days); missing "
        "when it received nothing in that time that this bank saw.",
    ),
    Feature(
        "payee.pass_through_30m",
        _N,
        "share 0-1",
        "Share of the payee's inflow of the last 24 h that it sent on within 30 minutes of receiving it.",
    ),
    # payee memory over a week: what earlier transfers showed of this account (streams/features/engine.py)
    Feature(
        "payee.forwarded_inflow_7d",
        _N,
        "transfers",
        "Transfers in the last 7 days in which this payee, as a payer, sent an account new for it 3,000 or more "
        "and 60 % or more of the 10,000 or more it had received in the 30 minutes before (a collection account "
        "emptying itself: its next payers are paying a mule).",
    ),
    Feature(
        "payee.escalated_payers_7d",
        _N,
        "accounts",
        "Distinct payers who, in the last 7 days, sent this payee 1.5 to 5 times their largest earlier transfer "
        "to it, 10,000 or more (or 5,000 or more and five times their usual), within two weeks of first paying "
        "it, while it had fewer than 10 payers in 24 h (an investment platform raising its victims' stakes).",
    ),
    Feature("payee.on_mule_list", _B, "", "The payee account is on the mule list."),
    Feature(
        "payee.mule_candidate",
        _B,
        "",
        "A victim reported fraud on a transfer to this payee (not yet confirmed by an investigator).",
    ),
    # telecom join on payer_phone
    Feature("call.active", _B, "", "The payer's phone is on a call right now."),
    Feature("call.within_30m", _B, "", "The payer's phone was on a call in the last 30 minutes (or is now)."),
    Feature("call.within_120m", _B, "", "The payer's phone was on a call in the last 120 minutes (or is now)."),
    Feature(
        "call.worst_risk_30m", _C, "", "Worst caller_risk of the payer's calls in the last 30 minutes.", CALLER_RISKS
    ),
    Feature(
        "call.worst_risk_120m",
        _C,
        "",
        "Worst caller_risk of the payer's calls in the last 120 minutes.",
        CALLER_RISKS,
    ),
    Feature(
        "call.risky_within_30m",
        _B,
        "",
        "A call from an overseas, virtual or flagged number in the last 30 minutes (or now).",
    ),
    Feature(
        "call.risky_within_120m",
        _B,
        "",
        "A call from an overseas, virtual or flagged number in the last 120 minutes (or now).",
    ),
    Feature("call.duration_s", _N, "seconds", "Duration so far of the payer's current or most recent call."),
)


class FeatureRegistry:
    """Ordered, read-only set of features; a feature's position is its column in the feature matrix."""

    def __init__(self, features: tuple[Feature, ...]) -> None:
        self._features = features
        self._index = {f.name: i for i, f in enumerate(features)}
        if len(self._index) != len(features):
            raise ValueError("feature names must be unique")

    def __len__(self) -> int:
        return len(self._features)

    def __iter__(self):
        return iter(self._features)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def get(self, name: str) -> Feature | None:
        i = self._index.get(name)
        return None if i is None else self._features[i]

    def column(self, name: str) -> int:
        return self._index[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self._features)


REGISTRY = FeatureRegistry(_FEATURES)
