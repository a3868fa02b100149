"""The demo's purchases and returns as a transactions CSV in the import format (imports/rows.py)."""

from __future__ import annotations

import csv
from pathlib import Path

from loyalty.demo import generator


def export_transactions(path: Path, *, seed: int, customers: int, purchases: int) -> int:
    """Generates the demo business (nothing touches a database) and writes its transactions to
    `path`; returns the number of rows. The same seed gives the rows `loyalty demo` loads."""
    data = generator.generate(seed=seed, customers=customers, target_purchases=purchases)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(generator.TRANSACTIONS_CSV_HEADER)
        writer.writerows((t.transaction_id, t.store_id, t.customer_phone or "", t.occurred_at.isoformat(), t.amount,
                          t.currency, t.type, t.original_transaction_id or "") for t in data.transactions)
    return len(data.transactions)
