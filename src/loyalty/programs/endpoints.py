"""The program in force, read-only over HTTP (it is changed with `loyalty program apply`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from loyalty.api.deps import AnyKey, ReadSession
from loyalty.programs.schemas import ProgramDefinition
from loyalty.programs.service import program_at

router = APIRouter(tags=["program"])


class ProgramOut(BaseModel):
    version: int
    effective_from: datetime | None
    definition: ProgramDefinition


@router.get("/program", response_model=ProgramOut)
def get_program(session: ReadSession, _: AnyKey) -> ProgramOut:
    active = program_at(session)
    return ProgramOut(version=active.version, effective_from=active.effective_from, definition=active.definition)
