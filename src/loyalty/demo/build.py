"""Loads the generated demo business through the same import path a real chain would use."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.auth.service import create_key
from loyalty.bulk import refresh_statistics
from loyalty.db import run_in_transaction, session_scope
from loyalty.demo import generator
from loyalty.demo.rewards_data import build_rewards_data
from loyalty.demo.service_data import build_service_data
from loyalty.demo.web_logins import demo_logins
from loyalty.imports import rows as importrows
from loyalty.imports.service import BatchReport, import_customers, import_transactions
from loyalty.jobs import run_jobs
from loyalty.ledger.verify import verify
from loyalty.models import Customer, LedgerPosting, Store, Transaction
from loyalty.programs.service import apply_program, load_program_file, program_at
from loyalty.stores.service import StoreIn, create_store
from loyalty.tiers import service as tiers
from loyalty.timeutil import utcnow

DEMO_PROGRAM_FILE = Path(__file__).with_name("program.yaml")


@dataclass(frozen=True, slots=True)
class DemoSummary:
    database_url: str
    stores: int
    customers: int
    purchases: int
    returns: int
    points_outstanding: int
    points_expired: int
    admin_key: str
    store_key: str
    store_id: str
    seconds: float
    ledger_ok: bool
    built_now: bool
    web_logins: tuple[tuple[str, str, str], ...] = ()

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("database", self.database_url),
            ("stores / customers", f"{self.stores} / {self.customers:,}"),
            ("purchases / returns", f"{self.purchases:,} / {self.returns:,}"),
            ("points outstanding / expired", f"{self.points_outstanding:,} / {self.points_expired:,}"),
            ("ledger verify", "ok" if self.ledger_ok else "FAILED (run `loyalty ledger verify`)"),
            ("admin API key", self.admin_key),
            (f"store API key ({self.store_id})", self.store_key),
            ("built in", f"{self.seconds:.1f} s" if self.built_now else "already built (kept as it was)"),
            *[(f"web login ({role})", f"{email}  password {password}") for role, email, password in self.web_logins],
        ]


def _customer_row(index: int, row: generator.CustomerRow) -> importrows.CustomerRow:
    return importrows.CustomerRow(
        line=index + 2, phone=row.phone, email=row.email, card=row.card, external_id=None, namespace=None,
        name=row.name, birthday=row.birthday, gender=row.gender, city=row.city,
        preferred_channel=row.preferred_channel, consent_email=row.consent_email, consent_sms=row.consent_sms,
        consent_zalo=row.consent_zalo, consent_phone=row.consent_phone, store_id=row.enrolled_store_id,
        enrolled_at=row.enrolled_at,
    )


def _transaction_row(index: int, row: generator.TransactionRow) -> importrows.TransactionRow:
    return importrows.TransactionRow(
        line=index + 2, transaction_id=row.transaction_id, store_id=row.store_id, customer=row.customer_phone,
        occurred_at=row.occurred_at, amount=row.amount, currency=row.currency, type=row.type,
        original_transaction_id=row.original_transaction_id,
        lines=tuple(importrows.LineItem(li.sku, li.category, li.quantity, li.unit_price) for li in row.lines),
    )


def _load(engine: Engine, data: generator.DemoData, console: Console) -> None:
    with session_scope(engine) as session:
        for store in data.stores:
            create_store(session, StoreIn(id=store.id, name=store.name, kind=store.kind, city=store.city))
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console)
    with progress:
        task = progress.add_task("customers", total=len(data.customers))
        for start in range(0, len(data.customers), 5000):
            chunk = [_customer_row(i, c) for i, c in enumerate(data.customers[start:start + 5000], start)]
            _check(run_in_transaction(engine, partial(_customers, rows=chunk)))
            progress.advance(task, len(chunk))
        task = progress.add_task("purchases and returns", total=len(data.transactions))
        for start in range(0, len(data.transactions), 10_000):
            part = data.transactions[start:start + 10_000]
            tx_chunk = [_transaction_row(i, t) for i, t in enumerate(part, start)]
            _check(run_in_transaction(engine, partial(_transactions, rows=tx_chunk)))
            if start // 10_000 in (0, 1, 3, 7):  # statistics keep up with the load (PostgreSQL)
                run_in_transaction(engine, refresh_statistics)
            progress.advance(task, len(tx_chunk))


def _customers(session: Session, rows: list[importrows.CustomerRow]) -> BatchReport:
    return import_customers(session, list(rows))


def _transactions(session: Session, rows: list[importrows.TransactionRow]) -> BatchReport:
    return import_transactions(session, list(rows), actor="demo")


def _check(report: BatchReport) -> None:
    if report.errors:
        raise RuntimeError(f"the demo generator produced rows the importer refused: {report.errors[:3]}")


def apply_demo_program(engine: Engine) -> int:
    """The demo chain's program (demo/program.yaml: rules, tiers, rewards) as the version in force
    over the whole history, so the history earns under it."""
    definition, source = load_program_file(DEMO_PROGRAM_FILE)
    with session_scope(engine) as session:
        return apply_program(session, definition, source, actor="demo",
                             effective_from=datetime(2000, 1, 1, tzinfo=UTC))


def build_demo(engine: Engine, *, seed: int, customers: int, purchases: int, console: Console) -> DemoSummary:
    started = time.perf_counter()
    with session_scope(engine) as session:
        built_before = session.scalar(select(func.count()).select_from(Store)) or 0
    if not built_before:
        console.print(f"generating a retail chain: {customers:,} customers, ~{purchases:,} purchases (seed {seed})")
        data = generator.generate(seed=seed, customers=customers, target_purchases=purchases)
        apply_demo_program(engine)
        _load(engine, data, console)
        with session_scope(engine) as session:
            # Members reach the tiers their imported spend qualifies them for (as after an import).
            now = utcnow()
            tiers.recompute_all(session, program_at(session, now), now, actor="demo")
        for result in run_jobs(engine, utcnow()):
            console.print(f"  job {result.name}: {result.count:,} {result.unit}")
        console.print("  " + ": ".join(build_service_data(engine, seed=seed, now=utcnow()).row()))
        console.print("  " + ": ".join(build_rewards_data(engine, seed=seed, now=utcnow()).row()))
    with session_scope(engine) as session:
        store_id = session.scalar(select(Store.id).where(Store.kind == "retail").order_by(Store.id).limit(1)) or ""
        _, admin_key = create_key(session, role="admin", store_id=None, name="demo-admin")
        _, store_key = create_key(session, role="store", store_id=store_id, name=f"demo-{store_id}")
    web_logins = tuple(demo_logins(engine))  # the staff screens' demo owner and agent
    with session_scope(engine) as session:
        counts = dict(session.execute(select(Transaction.kind, func.count()).group_by(Transaction.kind)).all())
        outstanding = session.scalar(select(func.coalesce(func.sum(LedgerPosting.amount), 0))
                                     .where(LedgerPosting.account.in_(("available", "pending", "held"))))
        expired = session.scalar(select(func.coalesce(func.sum(LedgerPosting.amount), 0))
                                 .where(LedgerPosting.account == "expired"))
        ledger_ok = all(result.ok for result in verify(session))
        summary = DemoSummary(
            database_url=engine.url.render_as_string(hide_password=True),
            stores=session.scalar(select(func.count()).select_from(Store)) or 0,
            customers=session.scalar(select(func.count()).select_from(Customer)) or 0,
            purchases=counts.get("purchase", 0), returns=counts.get("return", 0),
            points_outstanding=int(outstanding or 0), points_expired=int(expired or 0),
            admin_key=admin_key, store_key=store_key, store_id=store_id,
            seconds=time.perf_counter() - started, ledger_ok=ledger_ok, built_now=not built_before,
            web_logins=web_logins,
        )
    return summary
