"""`interceptor call-centre`: the simulated bank call centre, live. It answers the worker's holds on Kafka.

It reads the simulator's ground truth from `labels`, the held transfers from `alerts` and, from
`transactions`, which payers are the bank's own customers (those sent with `payer_account_opened`: it calls
nobody else), asks the same customer model as `interceptor backtest --call-centre`
(streams/simulator/callcentre.py) and, when the customer's answer is due, produces it on `verifications`.
`--speed 60` plays a 10-minute wait as 10 seconds.
For demos and dashboards only: a real bank's call centre writes `verifications` itself.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import replace

import click
import orjson

from streams.cli.brokers import kafka_settings


@click.command("call-centre")
@click.option("--speed", type=float, default=60.0, show_default=True, help="Simulated minutes per real minute.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the customers' answers.")
@click.option(
    "--idle-exit", type=float, default=0.0, help="Stop after this many seconds without a hold or answer (0 = never)."
)
def call_centre(speed: float, seed: int, idle_exit: float) -> None:
    """Answer held transfers on `verifications` as simulated customers would (uses the simulator's labels)."""
    from kafka import KafkaConsumer, KafkaProducer

    from streams.events import is_bank_customer
    from streams.lifecycle.holds import Hold
    from streams.outputs import encode_verification
    from streams.simulator.callcentre import CallCentre

    if speed <= 0:
        raise click.BadParameter("must be > 0", param_hint="--speed")
    settings = kafka_settings()
    config = settings.kafka_client_config()
    consumer = KafkaConsumer(
        settings.topic("labels"),
        settings.topic("alerts"),
        settings.topic("transactions"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **config,
    )
    producer = KafkaProducer(acks="all", linger_ms=5, **config)
    model = CallCentre(seed=seed)
    fraud: set[str] = set()
    customers: set[str] = set()  # payers sent with their account's opening date: the bank's own
    payers: set[str] = set()  # every payer seen on `transactions`
    asked: set[str] = set()
    calls: list[tuple[float, float, bytes, dict]] = []  # (real time to call, to stop waiting, key, hold decision)
    due: list[tuple[float, bytes, bytes]] = []  # (real time to send, key, verification)
    answered = unanswered = strangers = 0
    last_activity = time.monotonic()
    try:
        while True:
            for records in consumer.poll(timeout_ms=200, max_records=5_000).values():
                for record in records:
                    event = orjson.loads(record.value)
                    if record.topic == settings.topic("labels"):
                        if event.get("txn_id") and event.get("verdict") == "fraud":
                            fraud.add(event["txn_id"])
                        continue
                    if record.topic == settings.topic("transactions"):
                        payer = event.get("payer_account")
                        if isinstance(payer, str):
                            payers.add(payer)
                            if is_bank_customer(event.get("payer_account_opened")):
                                customers.add(payer)
                        continue
                    if event.get("action") != "hold" or event["txn_id"] in asked or record.key is None:
                        continue
                    asked.add(event["txn_id"])
                    last_activity = time.monotonic()
                    # the call starts a moment later, when the labels read with this poll are known too
                    calls.append((time.monotonic() + 1.0, time.monotonic() + 30.0, record.key, event))
            while calls and calls[0][0] <= time.monotonic():
                _, give_up, key, event = calls.pop(0)
                payer = key.decode()
                if payer not in payers and time.monotonic() < give_up:
                    calls.append((time.monotonic() + 0.5, give_up, key, event))  # its transaction is not read yet
                    continue
                now_ms = int(time.time() * 1000)
                hold = Hold(event["txn_id"], payer, "", event["amount"], event["currency"],
                            now_ms, now_ms, now_ms, (), "release", event["ruleset"])  # fmt: skip
                if payer not in customers:
                    strangers += 1  # another bank's customer: nobody calls them, the hold runs to its deadline
                    click.echo(f"hold on {hold.txn_id}: the payer banks elsewhere, not called", err=True)
                    continue
                answer = model.answer(hold, fraud=event["txn_id"] in fraud)
                if answer is None:
                    unanswered += 1
                    click.echo(f"hold on {hold.txn_id}: called, no answer", err=True)
                    continue
                wait_s = (answer.ts_ms - now_ms) / 1000 / speed
                value = encode_verification(replace(answer, ts_ms=int(time.time() * 1000 + wait_s * 1000)))
                heapq.heappush(due, (time.monotonic() + wait_s, key, value))
            while due and due[0][0] <= time.monotonic():
                _, key, value = heapq.heappop(due)
                producer.send(settings.topic("verifications"), key=key, value=value)
                answered += 1
                said = orjson.loads(value)  # txn ids and outcomes only: no account is printed
                click.echo(f"hold on {said['txn_id']}: the customer answered {said['outcome']}", err=True)
                last_activity = time.monotonic()
            if idle_exit and not calls and not due and time.monotonic() - last_activity > idle_exit:
                break
    except KeyboardInterrupt:
        pass
    finally:
        producer.flush(timeout=30)
        producer.close()
        consumer.close()
        click.echo(
            f"{len(asked)} holds: {strangers} on other banks' customers (not called); called "
            f"{len(asked) - strangers} customers: {answered} answered, {unanswered} did not pick up",
            err=True,
        )
