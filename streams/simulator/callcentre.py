"""The bank's call centre, simulated: when a transfer is held, the bank calls the customer, who answers.

Most victims, asked "is someone on the phone telling you to move money?", report the scam; some were coached
by the scammer to confirm; some do not pick up (the scammer told them not to). Most honest customers confirm
their payment; some are unreachable. Unanswered holds expire and the ruleset's default applies. Each answer
is drawn from a generator seeded by (seed, txn_id), so a backtest is reproducible whatever its batch size.

A bank can only call its own customers: a hold on a payment from another bank's customer (a stranger paying
into an account here) gets no answer and runs to its deadline. The bank does not call the payee instead: for
a stranger paying a recruit's collection account the payee is the mule, who expects the money and confirms.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from streams.events import Verification
from streams.lifecycle.holds import Hold


@dataclass(frozen=True, slots=True)
class CallCentre:
    victim_reports: float = 0.80  # share of called victims who report the scam
    victim_confirms: float = 0.10  # coached: they confirm the payment; the rest do not answer
    legit_confirms: float = 0.92  # the rest of honest customers do not answer in time
    answer_minutes: tuple[float, float] = (2.0, 40.0)  # when the customer answers, after the hold opened
    seed: int = 0

    def answer(self, hold: Hold, fraud: bool, customer: bool = True) -> Verification | None:
        """The customer's answer to the call about `hold`, or None when they never answer; None too when the
        payer is not the bank's `customer` (nobody calls them)."""
        if not customer:
            return None
        rng = random.Random(f"{self.seed}:{hold.txn_id}")
        draw = rng.random()
        if fraud:
            if draw < self.victim_reports:
                outcome = "fraud_reported"
            elif draw < self.victim_reports + self.victim_confirms:
                outcome = "confirmed"
            else:
                return None
        elif draw < self.legit_confirms:
            outcome = "confirmed"
        else:
            return None
        delay_ms = int(rng.uniform(*self.answer_minutes) * 60_000)
        return Verification(
            verification_id=f"cc-{hold.txn_id}",
            txn_id=hold.txn_id,
            payer_account=hold.payer,
            outcome=outcome,
            ts_ms=hold.opened_ts_ms + delay_ms,
        )
