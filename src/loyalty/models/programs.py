"""Program versions: the rules points were earned under stay in history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.models.base import Base, BigIntPK, UTCDateTime


class ProgramVersion(Base):
    __tablename__ = "program_versions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The validated program as JSON, so a later release of the parser reads what was applied.
    definition: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
