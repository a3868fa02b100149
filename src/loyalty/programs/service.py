"""Program versions: load and validate a file, apply it from a time, find the one in force."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from loyalty.db import database_key
from loyalty.errors import ConfigError
from loyalty.models import ProgramVersion
from loyalty.programs.rules import RuleEngine
from loyalty.programs.schemas import ProgramDefinition, parse_program
from loyalty.rewards.catalogue import sync_catalogue
from loyalty.timeutil import add_months, business_date, start_of_business_day, utcnow

DEFAULT_PROGRAM_FILE = Path(__file__).with_name("default.yaml")
_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ActiveProgram:
    version: int
    definition: ProgramDefinition
    earn: RuleEngine
    effective_from: datetime | None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.definition.timezone)

    def expires_at(self, earned_at: datetime) -> datetime | None:
        """End of the business day N months after earning, or of next calendar year."""
        expiry = self.definition.expiry
        if not expiry.end_of_next_calendar_year and expiry.months_after_earning is None:
            return None
        tz = self.tz
        return _expiry_for_day(business_date(earned_at, tz), tz, expiry.months_after_earning,
                               expiry.end_of_next_calendar_year)

    def available_at(self, earned_at: datetime) -> datetime:
        return earned_at + timedelta(days=self.definition.pending_days)

    def max_redeemable(self, amount: int) -> int:
        """Points that may pay for a purchase of `amount`: capped by share and per-purchase maximum."""
        rules = self.definition.redemption
        by_share = (amount * rules.max_share_percent // 100) // rules.point_value
        if rules.max_points_per_purchase is not None:
            return min(by_share, rules.max_points_per_purchase)
        return by_share


@lru_cache(maxsize=4096)
def _expiry_for_day(earned_on: date, tz: ZoneInfo, months: int | None, end_of_next_year: bool) -> datetime:
    """A lot's expiry depends on its business day alone: an import computes it once per day, not per lot."""
    if end_of_next_year:
        return start_of_business_day(date(earned_on.year + 2, 1, 1), tz)
    assert months is not None
    return start_of_business_day(add_months(earned_on, months) + timedelta(days=1), tz)


def load_program_file(path: Path) -> tuple[ProgramDefinition, str]:
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from exc
    return parse_program_text(source), source


def parse_program_text(source: str) -> ProgramDefinition:
    """A program file's text (YAML) validated; errors carry their line or path in the file."""
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    return parse_program(data)


def _build(version: int, definition: ProgramDefinition, effective_from: datetime | None) -> ActiveProgram:
    return ActiveProgram(version, definition, RuleEngine(definition), effective_from)


@lru_cache(maxsize=1)
def default_program() -> ActiveProgram:
    definition, _ = load_program_file(DEFAULT_PROGRAM_FILE)
    return _build(0, definition, None)


def apply_program(
    session: Session, definition: ProgramDefinition, source: str, *, actor: str,
    effective_from: datetime | None = None,
) -> int:
    """Adds a new version; earlier versions keep governing what happened before `effective_from`."""
    latest = session.scalar(select(func.max(ProgramVersion.version))) or 0
    now = utcnow()
    _sync_rewards(session, definition, latest, now)
    session.execute(insert(ProgramVersion).values(
        version=latest + 1, name=definition.name, definition=definition.model_dump_json(), source=source,
        effective_from=effective_from or now, created_at=now, created_by=actor,
    ))
    ProgramCache.clear()
    return latest + 1


def _sync_rewards(session: Session, definition: ProgramDefinition, latest: int, now: datetime) -> None:
    """Rewards catalogue (L7): the file's `rewards:` list goes into the rewards table at once."""
    previous = session.scalar(select(ProgramVersion.definition).where(ProgramVersion.version == latest))
    before = ProgramDefinition.model_validate(json.loads(previous)).rewards if previous else None
    sync_catalogue(session, definition.rewards, before, now)


class ProgramCache:
    """Program versions change rarely; each process re-reads them at most every few seconds."""

    _lock = threading.Lock()
    _loaded_at = -1e18
    _versions: list[ActiveProgram] = []  # noqa: RUF012 - class-level cache on purpose
    _key: str = ""

    @classmethod
    def clear(cls) -> None:
        with cls._lock:
            cls._loaded_at = -1e18

    @classmethod
    def versions(cls, session: Session) -> list[ActiveProgram]:
        key = database_key(session)
        with cls._lock:
            if key == cls._key and time.monotonic() - cls._loaded_at < _CACHE_SECONDS:
                return cls._versions
        rows = session.execute(
            select(ProgramVersion.version, ProgramVersion.definition, ProgramVersion.effective_from)
            .order_by(ProgramVersion.effective_from, ProgramVersion.version)
        ).all()
        versions = [_build(v, ProgramDefinition.model_validate(json.loads(d)), f) for v, d, f in rows]
        with cls._lock:
            cls._versions, cls._loaded_at, cls._key = versions, time.monotonic(), key
        return versions


def program_at(session: Session, moment: datetime | None = None) -> ActiveProgram:
    """The version in force at `moment` (now by default); the bundled default before any is applied."""
    moment = moment or utcnow()
    chosen: ActiveProgram | None = None
    versions = ProgramCache.versions(session)
    for candidate in versions:
        if candidate.effective_from is not None and candidate.effective_from <= moment:
            chosen = candidate
    if chosen is None:
        # Purchases dated before the first version still follow the earliest one.
        return versions[0] if versions else default_program()
    return chosen
