"""The program in force, read-only over HTTP (it is changed with `loyalty program apply`), and the
simulator that shows what a draft would cost before it is applied."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from loyalty.api.deps import AdminKey, AnyKey, ReadSession
from loyalty.programs.schemas import ProgramDefinition
from loyalty.programs.service import parse_program_text, program_at
from loyalty.programs.simulate import SimulationReport, simulate_database

router = APIRouter(tags=["program"])


class ProgramOut(BaseModel):
    version: int
    effective_from: datetime | None
    definition: ProgramDefinition


@router.get("/program", response_model=ProgramOut)
def get_program(session: ReadSession, _: AnyKey) -> ProgramOut:
    active = program_at(session)
    return ProgramOut(version=active.version, effective_from=active.effective_from, definition=active.definition)


class SimulateIn(BaseModel):
    program: str = Field(min_length=1, max_length=1_000_000, description="the draft program file (YAML) as text")
    date_from: date | None = Field(default=None, description="first business date replayed (default: all history)")
    date_to: date | None = Field(default=None, description="last business date replayed (inclusive)")


@router.post("/program/simulate", response_model=SimulationReport)
def simulate_program(body: SimulateIn, session: ReadSession, _: AdminKey) -> SimulationReport:
    """Replays the database's purchases under the draft and under the program in force; writes nothing."""
    draft = parse_program_text(body.program)
    return simulate_database(session, draft, date_from=body.date_from, date_to=body.date_to)
