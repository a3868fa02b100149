"""Replays purchase history under a draft program and under the active one, writing nothing.

What an owner sees before applying a change (`loyalty program simulate`, POST /v1/program/simulate,
the dashboard): points issued, points redeemed, members per tier, rewards unlocked and what it all
costs in currency, under the draft beside the program in force, over the same history.

How each figure is computed (the same way for both programs, so the difference is the program's):
- Points issued: every member purchase scored by the program's earn rules (RuleEngine.evaluate_many,
  vectorised; sku/category rules on the purchase's lines; tier rules and perks with the member's
  simulated tier), capped per transaction, per member per day and in total (budgets) in time
  order; less what returns in the history take back (proportionally, as the live path does).
- Tiers: a member's tier at a purchase is the level their metric reaches over the window before
  it (upgrades at once, as live sales do; reviews, grace periods and overrides are not replayed).
  Members per tier: the level each member's metric reaches over the window ending at the end of
  the period. For `points_earned` tiers, the metric is the points earned without tier perks.
- Points redeemed: the history's own redemptions (points paid on purchases, capped by the
  program's redemption limits; reward vouchers not cancelled), each kept only when the member's
  simulated balance (points earned in the period, less earlier redemptions) covers it.
- Rewards unlocked: per reward of the program's catalogue (the file's `rewards:`, else the
  database's active rewards), the members whose simulated balance at the end of the period
  reaches its cost and whose tier may redeem it.
- Cost: points issued x the program's `redemption.point_value`; net liability: (issued -
  redeemed) x point_value. Expiry is not replayed (the liability is before expiry).

Other features (stamp cards, bonuses, goals) add their own figures as `Contributor`s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import BaseModel
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from loyalty.bulk import sqlite_datetime
from loyalty.db import read_only_engine, session_factory
from loyalty.errors import ValidationFailed
from loyalty.models import Customer, Store
from loyalty.models.rewards import Reward
from loyalty.programs.rules import RuleEngine
from loyalty.programs.schemas import ProgramDefinition, TierProgram
from loyalty.timeutil import add_months

I64 = npt.NDArray[np.int64]
_MEMBERLESS = -1


# --- the history ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CatalogueReward:
    code: str
    name: str
    points_cost: int
    min_tier: str | None


@dataclass(slots=True)
class History:
    """Purchases (with what was returned of each), their lines, and reward redemptions.

    `purchases`: key (Int64), store_id, store_kind (String), customer_id (Int64, null: anonymous),
    occurred_at (Datetime UTC), amount, returned, points_redeemed (Int64). `lines`: key, sku,
    category, value (quantity x unit price), or None when not loaded. `reward_spends`:
    customer_id, occurred_at, points. `birthdays`: customer_id, month.
    """

    purchases: pl.DataFrame
    returns: int
    date_from: date | None
    date_to: date | None
    source: str
    lines: pl.DataFrame | None = None
    reward_spends: pl.DataFrame | None = None
    birthdays: pl.DataFrame | None = None
    catalogue: list[CatalogueReward] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_PURCHASE_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.Int64(), "store_id": pl.String(), "store_kind": pl.String(), "customer_id": pl.Int64(),
    "occurred_at": pl.Datetime("us", "UTC"), "amount": pl.Int64(), "returned": pl.Int64(),
    "points_redeemed": pl.Int64()}


def _bounds(date_from: date | None, date_to: date | None, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    if date_from and date_to and date_from > date_to:
        raise ValidationFailed(f"date_from {date_from} is after date_to {date_to}")
    start = datetime.combine(date_from, datetime.min.time(), tzinfo=tz).astimezone(UTC) if date_from else None
    end = (datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tzinfo=tz).astimezone(UTC)
           if date_to else None)
    return start, end


def _lines_needed(programs: Sequence[ProgramDefinition]) -> tuple[set[str], set[str]] | None:
    skus: set[str] = set()
    categories: set[str] = set()
    for program in programs:
        for rule in program.rules:
            skus.update(rule.when.skus or ())
            categories.update(rule.when.categories or ())
    return (skus, categories) if skus or categories else None


def load_history(
    session: Session, programs: Sequence[ProgramDefinition], *, date_from: date | None = None,
    date_to: date | None = None,
) -> History:
    """The database's own purchases in [date_from, date_to] (business dates), read-only.

    Lines are read only when a program has sku/category rules, and only the lines those rules
    can match; birthdays only when a program has birthday rules. Rows are read at the driver
    level into Polars (through the ORM, converting 100,000 timestamps cost more than scoring).
    """
    tz = ZoneInfo(programs[0].timezone)
    start, end = _bounds(date_from, date_to, tz)
    postgres = session.get_bind().dialect.name == "postgresql"
    params: dict[str, object] = {}
    period = ""
    if start is not None:
        params["start"] = start if postgres else sqlite_datetime(start)
        period += f" AND t.occurred_at >= {_param('start', postgres)}"
    if end is not None:
        params["end"] = end if postgres else sqlite_datetime(end)
        period += f" AND t.occurred_at < {_param('end', postgres)}"
    returns_end = f" AND occurred_at < {_param('end', postgres)}" if end is not None else ""
    rows = _fetch(session, (
        f"SELECT t.id, t.store_id, s.kind, t.customer_id, {_moment_sql('t.occurred_at', postgres)}, t.amount, "
        "COALESCE(r.returned, 0), t.points_redeemed, COALESCE(r.n, 0) "
        "FROM transactions t JOIN stores s ON s.id = t.store_id "
        "LEFT JOIN (SELECT original_id, SUM(amount) AS returned, COUNT(*) AS n FROM transactions "
        f"WHERE kind = 'return'{returns_end} GROUP BY original_id) r ON r.original_id = t.id "
        f"WHERE t.kind = 'purchase'{period}"), params)
    frame = pl.DataFrame(rows, schema=["key", "store_id", "store_kind", "customer_id", "occurred_at", "amount",
                                       "returned", "points_redeemed", "n"], orient="row", infer_schema_length=None)
    returns, purchases = 0, pl.DataFrame(schema=_PURCHASE_SCHEMA)
    if frame.height:
        returns = int(frame["n"].sum())
        purchases = (frame.with_columns(_moments(pl.col("occurred_at"), postgres)).drop("n")
                     .cast(_PURCHASE_SCHEMA))  # type: ignore[arg-type]
    history = History(purchases=purchases, returns=returns, date_from=date_from, date_to=date_to,
                      source="database")
    wanted = _lines_needed(programs)
    if wanted is not None and rows:
        skus, categories = wanted
        conditions = []
        for name, values in (("sku", sorted(skus)), ("category", sorted(categories))):
            if values:
                names = [f"{name}{n}" for n in range(len(values))]
                params.update(zip(names, values, strict=True))
                conditions.append(f"l.{name} IN ({', '.join(_param(n, postgres) for n in names)})")
        line_rows = _fetch(session, (
            "SELECT l.transaction_id, l.sku, l.category, l.quantity * l.unit_price FROM transaction_lines l "
            f"JOIN transactions t ON t.id = l.transaction_id WHERE t.kind = 'purchase'{period} "
            f"AND ({' OR '.join(conditions)})"), params)
        history.lines = _lines_frame(line_rows)
    voucher_period = period.replace("t.occurred_at", "v.issued_at")
    spend_rows = _fetch(session, (
        f"SELECT v.customer_id, {_moment_sql('v.issued_at', postgres)}, v.points_spent FROM vouchers v "
        f"WHERE v.status <> 'cancelled'{voucher_period}"), {k: v for k, v in params.items() if k in ("start", "end")})
    spends = pl.DataFrame(spend_rows, schema=["customer_id", "occurred_at", "points"], orient="row",
                          infer_schema_length=None)
    history.reward_spends = (spends.with_columns(_moments(pl.col("occurred_at"), postgres))
                             .cast({"customer_id": pl.Int64, "points": pl.Int64}) if spends.height
                             else pl.DataFrame(schema={"customer_id": pl.Int64,
                                                       "occurred_at": pl.Datetime("us", "UTC"), "points": pl.Int64}))
    _add_member_facts(session, history, programs)
    return history


def _param(name: str, postgres: bool) -> str:
    return f"%({name})s" if postgres else f":{name}"


def _moment_sql(column: str, postgres: bool) -> str:
    # PostgreSQL: microseconds since 1970 (exact); SQLite stores the UTC text '2026-01-02 03:04:05.000000'.
    return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)" if postgres else column


def _moments(column: pl.Expr, postgres: bool) -> pl.Expr:
    if postgres:
        return pl.from_epoch(column, time_unit="us").dt.replace_time_zone("UTC")
    return column.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", time_zone="UTC")


def _fetch(session: Session, sql: str, params: dict[str, object]) -> list[tuple[object, ...]]:
    """Rows of one query through the driver's own cursor, in the session's (read-only) transaction."""
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    cursor = driver.cursor()
    try:
        cursor.execute(sql, params)
        rows: list[tuple[object, ...]] = cursor.fetchall()
    finally:
        cursor.close()
    return rows


def _lines_frame(rows: Sequence[tuple[object, ...]]) -> pl.DataFrame:
    schema = {"key": pl.Int64, "sku": pl.String, "category": pl.String, "value": pl.Int64}
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame(rows, schema=schema, orient="row")


def _add_member_facts(session: Session, history: History, programs: Sequence[ProgramDefinition]) -> None:
    if any(rule.when.birthday_month for program in programs for rule in program.rules):
        rows = [row for row in session.execute(select(Customer.id, Customer.birthday)) if row[1] is not None]
        history.birthdays = pl.DataFrame(
            {"customer_id": [r[0] for r in rows], "month": [r[1].month for r in rows if r[1]]},
            schema={"customer_id": pl.Int64, "month": pl.Int64})
    history.catalogue = [CatalogueReward(code, name, int(cost), min_tier) for code, name, cost, min_tier in
                         session.execute(select(Reward.code, Reward.name, Reward.points_cost, Reward.min_tier)
                                         .where(Reward.active).order_by(Reward.points_cost, Reward.code))]


def history_from_csv(
    session: Session, path: Path, programs: Sequence[ProgramDefinition], *, date_from: date | None = None,
    date_to: date | None = None,
) -> History:
    """A transactions CSV in the import format (src/loyalty/imports/rows.py), read with Polars.

    Stores and customers are looked up in the database (read-only): rows at an unknown store
    are left out (and counted in the notes); an unknown customer reference is simulated as a
    new member, as `import transactions --create-customers` would enrol them.
    """
    from loyalty.customers.identities import guess_identity
    from loyalty.customers.repository import find_many
    from loyalty.imports.rows import TRANSACTION_OPTIONAL, TRANSACTION_REQUIRED, check_header

    tz = ZoneInfo(programs[0].timezone)
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ValidationFailed(f"{path}: cannot read the CSV ({exc})") from None
    check_header(frame.columns, TRANSACTION_REQUIRED, TRANSACTION_REQUIRED + TRANSACTION_OPTIONAL)
    notes: list[str] = []
    if "type" not in frame.columns:
        frame = frame.with_columns(pl.lit("purchase").alias("type"))
    if "original_transaction_id" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("original_transaction_id"))
    frame = frame.with_columns(
        pl.col("type").fill_null("purchase").str.to_lowercase(),
        pl.col("amount").str.replace_all("_", "").cast(pl.Int64, strict=False),
        _parse_moments(pl.col("occurred_at"), tz),
        pl.col("customer").str.strip_chars(),
    )
    bad = frame.filter(pl.col("amount").is_null() | pl.col("occurred_at").is_null()
                       | (pl.col("amount") < 0) | ~pl.col("type").is_in(["purchase", "return"]))
    if bad.height:
        notes.append(f"{bad.height} row(s) with an unreadable amount, time or type left out")
        frame = frame.filter(~(pl.col("amount").is_null() | pl.col("occurred_at").is_null()
                               | (pl.col("amount") < 0) | ~pl.col("type").is_in(["purchase", "return"])))
    start, end = _bounds(date_from, date_to, tz)
    if start is not None:
        frame = frame.filter(pl.col("occurred_at") >= start)
    if end is not None:
        frame = frame.filter(pl.col("occurred_at") < end)
    kinds = dict(session.execute(select(Store.id, Store.kind)).all())
    unknown = frame.filter(~pl.col("store_id").is_in(list(kinds)))
    if unknown.height:
        stores = ", ".join(sorted(set(unknown["store_id"].drop_nulls().to_list()))[:5])
        notes.append(f"{unknown.height} row(s) at unknown store(s) {stores} left out")
        frame = frame.filter(pl.col("store_id").is_in(list(kinds)))
    # Customer references -> ids: known identities from the database, the rest as new members.
    references = frame["customer"].drop_nulls().unique().to_list()
    keys: dict[str, tuple[str, str, str]] = {}
    for reference in references:
        try:
            kind, value = guess_identity(reference)
        except Exception:
            continue
        keys[reference] = (kind, "", value)
    found = find_many(session, keys.values())
    ids = {ref: found[key] for ref, key in keys.items() if key in found}
    new = [ref for ref in references if ref not in ids]
    if new:
        notes.append(f"{len(new)} customer reference(s) not in the database simulated as new members")
        ids.update({ref: -(n + 2) for n, ref in enumerate(new)})  # negative: never a real id
    frame = frame.with_columns(pl.col("customer").replace_strict(ids, default=None, return_dtype=pl.Int64)
                               .alias("customer_id"))
    frame = frame.with_row_index("key").with_columns(pl.col("key").cast(pl.Int64))
    purchases = frame.filter(pl.col("type") == "purchase").unique(["store_id", "transaction_id"], keep="first")
    returns = frame.filter(pl.col("type") == "return")
    returned = (returns.group_by(["store_id", "original_transaction_id"])
                .agg(pl.col("amount").sum().alias("returned"))
                .rename({"original_transaction_id": "transaction_id"}))
    purchases = (purchases.join(returned, on=["store_id", "transaction_id"], how="left")
                 .with_columns(pl.col("returned").fill_null(0).clip(upper_bound=pl.col("amount")),
                               pl.col("store_id").replace_strict(kinds, return_dtype=pl.String).alias("store_kind"),
                               pl.lit(0, pl.Int64).alias("points_redeemed"))
                 .sort("occurred_at"))
    history = History(purchases=purchases.select(list(_PURCHASE_SCHEMA)).cast(_PURCHASE_SCHEMA),  # type: ignore[arg-type]
                      returns=returns.height, date_from=date_from, date_to=date_to, source=f"csv: {path}",
                      notes=notes)
    if _lines_needed(programs) is not None:
        history.notes.append("the CSV has no lines: sku/category rules give nothing")
        history.lines = _lines_frame([])
    history.reward_spends = pl.DataFrame(schema={"customer_id": pl.Int64, "occurred_at": pl.Datetime("us", "UTC"),
                                                 "points": pl.Int64})
    _add_member_facts(session, history, programs)
    return history


def _parse_moments(column: pl.Expr, tz: ZoneInfo) -> pl.Expr:
    """ISO times; a time without offset is read in the business zone, as the importer does."""
    text = column.str.strip_chars().str.replace(r"[Zz]$", "+00:00")
    has_offset = text.str.contains(r"[+-]\d\d:?\d\d$")
    aware = text.str.to_datetime(format="%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_zone="UTC", time_unit="us")
    aware_space = text.str.to_datetime(format="%Y-%m-%d %H:%M:%S%.f%z", strict=False, time_zone="UTC",
                                       time_unit="us")
    naive = (pl.coalesce(text.str.to_datetime(format="%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us"),
                         text.str.to_datetime(format="%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us"),
                         text.str.to_datetime(format="%Y-%m-%dT%H:%M", strict=False, time_unit="us"),
                         text.str.to_datetime(format="%Y-%m-%d", strict=False, time_unit="us"))
             .dt.replace_time_zone(str(tz), ambiguous="earliest", non_existent="null")
             .dt.convert_time_zone("UTC"))
    return pl.when(has_offset).then(pl.coalesce(aware, aware_space)).otherwise(naive).alias("occurred_at")


# --- the report -----------------------------------------------------------------------------

class TierCount(BaseModel):
    code: str
    name: str
    members: int


class RewardUnlocked(BaseModel):
    code: str
    name: str
    points_cost: int
    members: int


class ProgramFigures(BaseModel):
    """One program's figures over the history."""

    name: str
    currency: str
    point_value: int
    points_earned: int        # before returns
    points_reversed: int      # taken back by returns
    points_issued: int        # earned - reversed
    points_capped: int        # what per-day caps and budgets held back
    points_redeemed: int
    redemptions: int
    cost: int                 # points_issued x point_value
    redeemed_value: int       # points_redeemed x point_value
    net_liability_points: int
    net_liability_value: int
    members_per_tier: list[TierCount]
    rewards_unlocked: list[RewardUnlocked]
    points_by_rule: dict[str, int]
    contributions: dict[str, dict[str, int]] = {}

    def numbers(self) -> dict[str, int]:
        return {"points_earned": self.points_earned, "points_reversed": self.points_reversed,
                "points_issued": self.points_issued, "points_capped": self.points_capped,
                "points_redeemed": self.points_redeemed, "redemptions": self.redemptions, "cost": self.cost,
                "redeemed_value": self.redeemed_value, "net_liability_points": self.net_liability_points,
                "net_liability_value": self.net_liability_value}


class SimulationReport(BaseModel):
    source: str
    date_from: date | None
    date_to: date | None
    purchases: int
    member_purchases: int
    returns: int
    members: int
    seconds: float
    draft: ProgramFigures
    active: ProgramFigures
    difference: dict[str, int]  # draft - active, for every number of ProgramFigures.numbers()
    notes: list[str]

    def to_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json")

    def rows(self) -> list[tuple[str, int | None, int | None]]:
        """(label, draft, active) for a side-by-side table: numbers, then tiers, rewards, contributions."""
        active = self.active.numbers()
        out: list[tuple[str, int | None, int | None]] = [
            (name.replace("_", " "), value, active[name]) for name, value in self.draft.numbers().items()]
        for label, draft_list, active_list in (
                ("members in tier", self.draft.members_per_tier, self.active.members_per_tier),
                ("members unlocking", self.draft.rewards_unlocked, self.active.rewards_unlocked)):
            active_by = {item.code: item.members for item in active_list}
            draft_codes = {item.code for item in draft_list}
            out.extend((f"{label} {item.code}", item.members, active_by.get(item.code)) for item in draft_list)
            out.extend((f"{label} {item.code}", None, item.members) for item in active_list
                       if item.code not in draft_codes)
        names = dict.fromkeys([*self.draft.contributions, *self.active.contributions])
        for name in names:
            d, a = self.draft.contributions.get(name, {}), self.active.contributions.get(name, {})
            out.extend((f"{name}: {key}", d.get(key), a.get(key)) for key in dict.fromkeys([*d, *a]))
        return out


# --- contributors ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Scored:
    """What the simulator computed for one program, for contributors to build on.

    Arrays are aligned with `purchases` (the history's member purchases, in time order).
    """

    definition: ProgramDefinition
    purchases: pl.DataFrame
    points: I64
    tiers: npt.NDArray[np.str_] | None


class Contributor(Protocol):
    """A feature's own figures (stamp cards, bonuses, goals): `name` and numbers by label."""

    name: str

    def figures(self, history: History, scored: Scored) -> dict[str, int]: ...


CONTRIBUTORS: list[Contributor] = []  # features register themselves here: CONTRIBUTORS.append(...)


# --- scoring --------------------------------------------------------------------------------

def _local_naive(moments: pl.Series, tz: ZoneInfo) -> pl.Series:
    return moments.dt.convert_time_zone(str(tz)).dt.replace_time_zone(None)


def _window_starts(local: pl.Series, tiers: TierProgram) -> pl.Series:
    """The first local midnight of the qualification window that counts at each moment."""
    day = local.dt.truncate("1d")
    months = tiers.qualification.window.rolling_months
    if months is None:
        return day.dt.truncate("1y")
    return day.dt.offset_by(f"-{months}mo").dt.offset_by("1d")


def _window_sums(customers: I64, minutes: I64, values: I64, starts: I64, ends_inclusive: bool) -> I64:
    """Per row, the sum of `values` of the same customer with minutes in [start, own minute),
    or [start, own minute] when `ends_inclusive`. Rows must be sorted by (customer, minutes)."""
    shift = np.int64(1 << 32)
    keys = customers * shift + minutes
    cumulative = np.concatenate(([0], np.cumsum(values)))
    first = np.searchsorted(keys, customers * shift + starts, side="left")
    last = np.searchsorted(keys, keys, side="right" if ends_inclusive else "left")
    return cumulative[last] - cumulative[first]


def _minutes(local: pl.Series) -> I64:
    minutes: I64 = np.asarray(local.dt.epoch("s").to_numpy() // 60, dtype=np.int64)
    return minutes


def _tier_codes(tiers: TierProgram, values: I64) -> npt.NDArray[np.str_]:
    thresholds = np.array([level.threshold for level in tiers.levels], dtype=np.int64)
    codes = np.array([level.code for level in tiers.levels], dtype=np.str_)
    return codes[np.maximum(np.searchsorted(thresholds, values, side="right") - 1, 0)]


def _metric_values(tiers: TierProgram, frame: pl.DataFrame, points: I64 | None) -> I64:
    amount = frame["amount"].to_numpy().astype(np.int64)
    returned = frame["returned"].to_numpy().astype(np.int64)
    metric = tiers.qualification.metric
    if metric == "spend":
        return amount - returned
    if metric == "purchases":
        return (amount > returned).astype(np.int64)
    assert points is not None
    return points - _reversed(points, amount, returned)


def _reversed(points: I64, amount: I64, returned: I64) -> I64:
    safe = np.where(amount > 0, amount, 1)
    kept = np.where(amount > 0, points * (amount - returned) // safe, np.where(returned > 0, 0, points))
    return points - kept


def _cap_running(points: I64, groups: I64 | None, cap: int) -> I64:
    """Caps the running total of `points` (in row order) at `cap`, per group (None: overall)."""
    if len(points) == 0:
        return points
    if groups is None:
        before = np.cumsum(points) - points
    else:
        order = np.lexsort((np.arange(len(points)), groups))
        sorted_points = points[order]
        cumulative = np.cumsum(sorted_points)
        group_sorted = groups[order]
        starts = np.flatnonzero(np.concatenate(([True], group_sorted[1:] != group_sorted[:-1])))
        offsets = np.repeat(cumulative[starts] - sorted_points[starts], np.diff(np.append(starts, len(points))))
        before = np.empty_like(points)
        before[order] = cumulative - sorted_points - offsets
    capped: I64 = np.clip(cap - before, 0, points)
    return capped


@dataclass(slots=True)
class _Scoring:
    points: I64
    per_rule: dict[str, int]
    capped: int
    tiers: npt.NDArray[np.str_] | None


def _score(definition: ProgramDefinition, frame: pl.DataFrame, history: History,
           customers: I64, minutes: I64, local: pl.Series, tiers_at: npt.NDArray[np.str_] | None) -> _Scoring:
    """Points per purchase (rows in time order) and the points each rule gave."""
    engine = RuleEngine(definition)
    n = frame.height
    point_value = definition.redemption.point_value
    amount = frame["amount"].to_numpy().astype(np.int64)
    redeemed = _redeemable(definition, amount, frame["points_redeemed"].to_numpy().astype(np.int64))
    paid = np.maximum(amount - redeemed * point_value, 0)
    birthday = None
    if history.birthdays is not None:
        months = dict(zip(history.birthdays["customer_id"].to_list(), history.birthdays["month"].to_list(),
                          strict=True))
        birthday = np.array([months.get(c, 0) for c in customers.tolist()], dtype=np.int64)
    first = _first_purchases(customers, minutes)
    line_bases = _line_bases(engine, frame, history, amount, paid)
    _, per_rule = engine.evaluate_many(
        amounts=paid, store_kinds=frame["store_kind"].to_numpy().astype(np.str_),
        store_ids=frame["store_id"].to_numpy().astype(np.str_),
        local_times=local.to_numpy().astype("datetime64[m]"), customer_ids=customers,
        birthday_months=birthday, first_purchase=first, tiers=tiers_at, line_bases=line_bases)
    # Tier perks first, from the points before day caps and budgets (as `evaluate` computes them).
    extra = (engine.tier_perks_many(per_rule, tiers_at) if tiers_at is not None and engine.tier_perks
             else np.zeros(n, dtype=np.int64))
    capped_total = 0
    if engine.counted_caps and n:
        days = minutes // (24 * 60)  # local minutes: the business day
        for index, rule in enumerate(engine.rules):
            cap = engine.counted_caps.get(rule.id)
            if cap is None:
                continue
            before = per_rule[index].copy()
            if cap.per_member_per_day is not None:
                per_rule[index] = _cap_running(per_rule[index], customers * np.int64(1 << 24) + days,
                                               cap.per_member_per_day)
            if cap.total is not None:
                per_rule[index] = _cap_running(per_rule[index], None, cap.total)
            capped_total += int((before - per_rule[index]).sum())
    totals = per_rule.sum(axis=0) + extra
    by_rule = {rule.id: int(per_rule[i].sum()) for i, rule in enumerate(engine.rules) if per_rule[i].any()}
    if tiers_at is not None:
        for code in engine.tier_perks:
            given = int(extra[tiers_at == code].sum())
            if given:
                by_rule[f"tier:{code}"] = given
    return _Scoring(totals.astype(np.int64), by_rule, capped_total, tiers_at)


def _first_purchases(customers: I64, minutes: I64) -> npt.NDArray[np.bool_]:
    """Each member's first purchase in the history (rows are in time order, not member order)."""
    order = np.lexsort((minutes, customers))
    sorted_customers = customers[order]
    flags = np.concatenate(([True], sorted_customers[1:] != sorted_customers[:-1]))[:len(order)]
    first = np.empty(len(order), dtype=bool)
    first[order] = flags
    return first


def _redeemable(definition: ProgramDefinition, amount: I64, redeemed: I64) -> I64:
    """Points paid on each purchase, within the program's redemption limits."""
    rules = definition.redemption
    limit = (amount * rules.max_share_percent // 100) // rules.point_value
    if rules.max_points_per_purchase is not None:
        limit = np.minimum(limit, rules.max_points_per_purchase)
    kept = np.minimum(redeemed, limit)
    return np.where(kept >= rules.min_points, kept, 0)


def _line_bases(engine: RuleEngine, frame: pl.DataFrame, history: History, amount: I64,
                paid: I64) -> dict[str, I64] | None:
    line_rules = [rule for rule in engine.rules if rule.lines]
    if not line_rules or history.lines is None:
        return None
    keys = frame.select("key")
    safe = np.where(amount > 0, amount, 1)
    bases: dict[str, I64] = {}
    for rule in line_rules:
        lines = history.lines
        if rule.skus is not None:
            lines = lines.filter(pl.col("sku").is_in(list(rule.skus)))
        if rule.categories is not None:
            lines = lines.filter(pl.col("category").is_in(list(rule.categories)))
        matching = keys.join(lines.group_by("key").agg(pl.col("value").sum()), on="key", how="left",
                             maintain_order="left")["value"]
        found = matching.is_not_null().to_numpy()
        value = matching.fill_null(0).to_numpy().astype(np.int64)
        bases[rule.id] = np.where(found, np.where(amount > 0, value * paid // safe, 0), -1)
    return bases


def _program_figures(definition: ProgramDefinition, history: History, members: pl.DataFrame,
                     period_end: datetime | None,
                     contributors: Sequence[Contributor]) -> ProgramFigures:
    tz = ZoneInfo(definition.timezone)
    local = _local_naive(members["occurred_at"], tz)
    customers = members["customer_id"].to_numpy().astype(np.int64)
    minutes = _minutes(local)
    tiers = definition.tiers
    tiers_at: npt.NDArray[np.str_] | None = None
    order = np.lexsort((minutes, customers))  # (customer, time) order for window sums
    starts = _minutes(_window_starts(local, tiers)) if tiers is not None else None
    scoring: _Scoring | None = None
    if tiers is not None and RuleEngine(definition).needs_tier:
        points_base = None
        if tiers.qualification.metric == "points_earned":
            points_base = _score(definition, members, history, customers, minutes, local, None).points
        values = _metric_values(tiers, members, points_base)
        assert starts is not None
        sums = np.empty(len(values), dtype=np.int64)
        sums[order] = _window_sums(customers[order], minutes[order], values[order], starts[order], False)
        tiers_at = _tier_codes(tiers, sums)
    scoring = _score(definition, members, history, customers, minutes, local, tiers_at)
    points = scoring.points
    amount = members["amount"].to_numpy().astype(np.int64)
    returned = members["returned"].to_numpy().astype(np.int64)
    reversed_ = _reversed(points, amount, returned)
    net = points - reversed_
    point_value = definition.redemption.point_value
    # Redemptions: purchases' points paid and reward vouchers, each kept while the balance covers it.
    redeemed_on_purchase = _redeemable(definition, amount, members["points_redeemed"].to_numpy().astype(np.int64))
    events = [pl.DataFrame({"customer_id": customers, "occurred_at": members["occurred_at"],
                            "points": redeemed_on_purchase}).filter(pl.col("points") > 0)]
    if history.reward_spends is not None and history.reward_spends.height:
        events.append(history.reward_spends.select("customer_id", "occurred_at", "points"))
    spends = pl.concat(events).sort("occurred_at") if events else None
    balance = _balances(customers, minutes, order, net, spends, tz)
    redeemed_total, redemptions, final = balance
    # Members per tier at the end of the period, on the window ending then.
    member_ids = np.unique(customers)
    tier_counts: list[TierCount] = []
    final_tiers: dict[int, str] = {}
    if tiers is not None and len(member_ids):
        end_minute = (int(_minutes(_local_naive(pl.Series([period_end]), tz))[0]) if period_end is not None
                      else int(minutes.max()) + 1)
        window_start = _window_start_minute(tiers, end_minute)
        values = _metric_values(tiers, members, points if tiers.qualification.metric == "points_earned" else None)
        in_window = (minutes >= window_start) & (minutes < end_minute)
        per_member = np.zeros(len(member_ids), dtype=np.int64)
        np.add.at(per_member, np.searchsorted(member_ids, customers[in_window]), values[in_window])
        codes = _tier_codes(tiers, per_member)
        final_tiers = dict(zip(member_ids.tolist(), codes.tolist(), strict=True))
        for level in tiers.levels:
            tier_counts.append(TierCount(code=level.code, name=level.name, members=int((codes == level.code).sum())))
    unlocked = _unlocked(definition, history, final, final_tiers)
    scored = Scored(definition, members, points, tiers_at)
    contributions = {c.name: c.figures(history, scored) for c in contributors}
    issued = int(net.sum())
    return ProgramFigures(
        name=definition.name, currency=definition.currency, point_value=point_value,
        points_earned=int(points.sum()), points_reversed=int(reversed_.sum()), points_issued=issued,
        points_capped=scoring.capped, points_redeemed=redeemed_total, redemptions=redemptions,
        cost=issued * point_value, redeemed_value=redeemed_total * point_value,
        net_liability_points=issued - redeemed_total, net_liability_value=(issued - redeemed_total) * point_value,
        members_per_tier=tier_counts, rewards_unlocked=unlocked, points_by_rule=scoring.per_rule,
        contributions=contributions)


def _window_start_minute(tiers: TierProgram, end_minute: int) -> int:
    end_day = (datetime(1970, 1, 1) + timedelta(minutes=end_minute - 1)).date()  # the period's last day
    months = tiers.qualification.window.rolling_months
    first = date(end_day.year, 1, 1) if months is None else add_months(end_day, -months) + timedelta(days=1)
    return int((datetime.combine(first, datetime.min.time()) - datetime(1970, 1, 1)).total_seconds() // 60)


def _balances(customers: I64, minutes: I64, order: I64, net: I64, spends: pl.DataFrame | None,
              tz: ZoneInfo) -> tuple[int, int, dict[int, int]]:
    """Replays redemptions against the simulated balance: (points redeemed, redemptions kept,
    final balance by member). Balances are the period's own points: earned (net of returns) up
    to the redemption's time, less earlier redemptions."""
    sorted_customers, sorted_minutes = customers[order], minutes[order]
    shift = np.int64(1 << 32)
    keys = sorted_customers * shift + sorted_minutes
    cumulative = np.concatenate(([0], np.cumsum(net[order])))
    final: dict[int, int] = {}
    if len(sorted_customers):
        ends = np.flatnonzero(np.concatenate((sorted_customers[1:] != sorted_customers[:-1], [True])))
        final = dict(zip(sorted_customers[ends].tolist(),
                         (cumulative[ends + 1] - np.concatenate(([0], cumulative[ends + 1][:-1]))).tolist(),
                         strict=True))
    redeemed = kept = 0
    if spends is None or spends.height == 0:
        return 0, 0, final
    spend_minutes = _minutes(_local_naive(spends["occurred_at"], tz))
    spend_customers = spends["customer_id"].to_numpy().astype(np.int64)
    member_start = np.searchsorted(keys, spend_customers * shift, side="left")
    upto = np.searchsorted(keys, spend_customers * shift + spend_minutes, side="right")
    earned_then = cumulative[upto] - cumulative[member_start]
    spent: dict[int, int] = {}
    for customer, points, earned in zip(spend_customers.tolist(), spends["points"].to_list(),
                                        earned_then.tolist(), strict=True):
        already = spent.get(customer, 0)
        if earned - already >= points:
            spent[customer] = already + points
            redeemed += points
            kept += 1
    for customer, points in spent.items():
        final[customer] = final.get(customer, 0) - points
    return redeemed, kept, final


def _unlocked(definition: ProgramDefinition, history: History, final: dict[int, int],
              final_tiers: dict[int, str]) -> list[RewardUnlocked]:
    if definition.rewards is not None:
        catalogue = [CatalogueReward(r.code, r.name, r.points_cost, r.min_tier) for r in definition.rewards]
    else:
        catalogue = history.catalogue
    tiers = definition.tiers
    access = required_tiers(definition)
    balances = np.array(list(final.values()), dtype=np.int64)
    ranks = (np.array([tiers.rank(final_tiers.get(c)) for c in final], dtype=np.int64)
             if tiers is not None else None)
    out = []
    for reward in catalogue:
        reaches = balances >= reward.points_cost
        needed = access.get(reward.code, reward.min_tier)
        if tiers is not None and ranks is not None and needed is not None and reward.min_tier is not None:
            needed = max(needed, reward.min_tier, key=tiers.rank)
        if tiers is not None and ranks is not None and needed is not None:
            reaches &= ranks >= tiers.rank(needed)
        out.append(RewardUnlocked(code=reward.code, name=reward.name, points_cost=reward.points_cost,
                                  members=int(reaches.sum())))
    return out


def required_tiers(definition: ProgramDefinition) -> dict[str, str]:
    """Reward code -> the lowest tier whose perks list it under `reward_access`."""
    found: dict[str, str] = {}
    if definition.tiers is None:
        return found
    for level in definition.tiers.levels:
        for code in level.perks.reward_access:
            found.setdefault(code, level.code)
    return found


def simulate(
    history: History, draft: ProgramDefinition, baseline: ProgramDefinition, *,
    contributors: Sequence[Contributor] | None = None,
) -> SimulationReport:
    """Both programs' figures over the same history; nothing is read or written here."""
    started = time.perf_counter()
    chosen = CONTRIBUTORS if contributors is None else contributors
    purchases = history.purchases.sort("occurred_at", maintain_order=True)
    members = purchases.filter(pl.col("customer_id").is_not_null())
    tz = ZoneInfo(draft.timezone)
    period_end = _bounds(None, history.date_to, tz)[1] if history.date_to else None
    draft_figures = _program_figures(draft, history, members, period_end, chosen)
    active_figures = _program_figures(baseline, history, members, period_end, chosen)
    active_numbers = active_figures.numbers()
    notes = list(history.notes)
    notes.append("expiry is not replayed: liabilities are before any points expire")
    return SimulationReport(
        source=history.source, date_from=history.date_from, date_to=history.date_to,
        purchases=purchases.height, member_purchases=members.height, returns=history.returns,
        members=members["customer_id"].n_unique() if members.height else 0,
        seconds=round(time.perf_counter() - started, 3), draft=draft_figures, active=active_figures,
        difference={name: value - active_numbers[name] for name, value in draft_figures.numbers().items()},
        notes=notes)


def simulate_database(
    session: Session, draft: ProgramDefinition, *, baseline: ProgramDefinition | None = None,
    date_from: date | None = None, date_to: date | None = None, csv: Path | None = None,
) -> SimulationReport:
    """The draft against the program in force (or `baseline`) over the database's history or a CSV.

    Only reads: callers pass a read-only session (see `read_only_session`) and never commit.
    """
    from loyalty.programs.service import program_at

    active = baseline or program_at(session).definition
    if csv is not None:
        history = history_from_csv(session, csv, [draft, active], date_from=date_from, date_to=date_to)
    else:
        history = load_history(session, [draft, active], date_from=date_from, date_to=date_to)
    return simulate(history, draft, active)


@contextmanager
def read_only_session(engine: Engine) -> Iterator[Session]:
    """A session that cannot write: PostgreSQL's READ ONLY transaction, SQLite's deferred read;
    always rolled back."""
    session = session_factory(read_only_engine(engine))()
    try:
        if engine.dialect.name == "postgresql":
            session.connection().exec_driver_sql("SET TRANSACTION READ ONLY")
        yield session
    finally:
        session.rollback()
        session.close()
