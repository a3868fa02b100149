"""Import history: one row per CSV import (web or CLI) and the rows it rejected, so a result outlives the process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime

IMPORT_KINDS = ("customers", "transactions")
IMPORT_STATUSES = ("running", "done", "failed")


class ImportRun(Base):
    """A CSV import: what was imported, by whom ("cli" or a staff actor), how far it got and what came of it.

    `rows_done` / `rows_total` move after each committed batch, so any web worker can show progress
    (and after a restart, how far an interrupted import got). `columns` is the file's header (JSON
    list), for the rejected rows' CSV.
    """

    __tablename__ = "import_runs"
    __table_args__ = (
        CheckConstraint(f"kind IN {IMPORT_KINDS!r}", name="kind"),
        CheckConstraint(f"status IN {IMPORT_STATUSES!r}", name="status"),
        CheckConstraint("status = 'running' AND finished_at IS NULL OR status <> 'running' AND finished_at IS NOT NULL",
                        name="finished_when_not_running"),
        Index("ix_import_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    file_name: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    create_customers: Mapped[bool] = mapped_column(Boolean, default=False)
    started_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text)
    columns: Mapped[str | None] = mapped_column(Text)
    rows_total: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    imported: Mapped[int] = mapped_column(BigInteger, default=0)
    skipped: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    created_customers: Mapped[int] = mapped_column(BigInteger, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)


class ImportRejection(Base):
    """A rejected row: its line in the file, why, and its original fields (JSON list, in header order)."""

    __tablename__ = "import_rejections"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    fields: Mapped[str | None] = mapped_column(Text)
