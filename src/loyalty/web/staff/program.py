"""The program: tiers with member counts, rules, rewards with stock; upload a draft file, see it validated
(errors with their path in the file), see the simulator's comparison with the program in force, apply it."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, File, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from loyalty.errors import ConfigError, Conflict, NotFound
from loyalty.programs.schemas import ProgramDefinition
from loyalty.programs.service import apply_program, parse_program_text, program_at
from loyalty.programs.simulate import SimulationReport, read_only_session, simulate_database
from loyalty.rewards import repository as rewards_repository
from loyalty.tiers import service as tiers
from loyalty.timeutil import utcnow
from loyalty.web import tasks
from loyalty.web.auth import StaffUser, require
from loyalty.web.staff import router
from loyalty.web.staff.common import engine_of, reading, writing
from loyalty.web.templating import flash, render

Viewer = Annotated[StaffUser, Depends(require("program"))]
Owner = Annotated[StaffUser, Depends(require("change_program"))]
MAX_FILE = 1_000_000
MAX_DRAFTS = 20


@dataclass
class Draft:
    id: str
    filename: str
    source: str
    definition: ProgramDefinition
    uploaded_by: str
    uploaded_at: float


# Drafts wait here between upload and apply (this process; a restart forgets them: upload again).
_drafts: dict[str, Draft] = {}
_lock = threading.Lock()


def _keep(draft: Draft) -> None:
    with _lock:
        _drafts[draft.id] = draft
        for old in sorted(_drafts.values(), key=lambda d: d.uploaded_at)[:-MAX_DRAFTS]:
            _drafts.pop(old.id, None)


def _draft(draft_id: str) -> Draft:
    with _lock:
        draft = _drafts.get(draft_id)
    if draft is None:
        raise NotFound("this draft is no longer here (applied, replaced or the server restarted); upload it again")
    return draft


def _program_view(request: Request) -> dict[str, Any]:
    now = utcnow()
    with reading(request) as session:
        active = program_at(session, now)
        levels = tiers.counts(session, active, now) if active.definition.tiers is not None else []
        rewards = rewards_repository.list_rewards(session, include_inactive=True)
    definition = active.definition
    return {"active": active, "definition": definition, "levels": levels, "rewards": rewards,
            "rules": [rule.model_dump(mode="json", exclude_none=True) for rule in definition.rules],
            "stamp_cards": getattr(definition, "stamp_cards", None) or []}


@router.get("/program")
def program_page(request: Request, user: Viewer) -> Response:
    return render(request, "staff/program.html", errors=None, filename=None, **_program_view(request))


def _simulate(request: Request, draft: Draft) -> tasks.Task:
    engine = engine_of(request)

    def work(task: tasks.Task) -> SimulationReport:
        task.progress(0.1, "replaying the history under the draft and the program in force")
        with read_only_session(engine) as session:
            return simulate_database(session, draft.definition)

    return tasks.start(f"simulate:{draft.id}", "simulation", work, keep=3600)


@router.post("/program/drafts")
async def upload_draft(request: Request, user: Owner, file: Annotated[UploadFile, File()]) -> Response:
    raw = await file.read(MAX_FILE + 1)
    filename = (file.filename or "program.yaml")[:200]
    errors: list[str] | None = None
    definition = None
    if len(raw) > MAX_FILE:
        errors = [f"(file): larger than {MAX_FILE:,} bytes"]
    else:
        try:
            source = raw.decode("utf-8")
            definition = parse_program_text(source)
        except UnicodeDecodeError:
            errors = ["(file): not UTF-8 text"]
        except ConfigError as exc:
            errors = list(exc.extra.get("errors") or [exc.detail])
    if errors is not None or definition is None:
        view = await _in_thread(request)
        return render(request, "staff/program.html", status=422, errors=errors, filename=filename, **view)
    draft = Draft(secrets.token_urlsafe(9), filename, source, definition, user.actor, time.time())
    _keep(draft)
    _simulate(request, draft)
    return RedirectResponse(f"/staff/program/drafts/{draft.id}", status_code=303)


async def _in_thread(request: Request) -> dict[str, Any]:
    from fastapi.concurrency import run_in_threadpool

    return await run_in_threadpool(_program_view, request)


@router.get("/program/drafts/{draft_id}")
def draft_page(request: Request, draft_id: str, user: Owner) -> Response:
    draft = _draft(draft_id)
    return render(request, "staff/draft.html", draft=draft)


@router.get("/program/drafts/{draft_id}/simulation")
def draft_simulation(request: Request, draft_id: str, user: Owner) -> Response:
    draft = _draft(draft_id)
    task = _simulate(request, draft)
    if not task.done or task.failed:
        return render(request, "staff/_progress.html", task=task, poll=f"/staff/program/drafts/{draft.id}/simulation")
    report: SimulationReport = task.result
    rows = [{"label": label, "draft": d, "active": a, "diff": (d - a) if d is not None and a is not None else None}
            for label, d, a in report.rows()]
    return render(request, "staff/_simulation.html", draft=draft, report=report, rows=rows)


@router.post("/program/drafts/{draft_id}/apply")
def apply_draft(request: Request, draft_id: str, user: Owner) -> Response:
    draft = _draft(draft_id)
    task = tasks.find(f"simulate:{draft.id}")
    if task is None or not task.done:
        raise Conflict("wait for the simulation to finish and look at it before applying the draft")

    def work(session: Session) -> int:
        return apply_program(session, draft.definition, draft.source, actor=user.actor)

    with _lock:
        if _drafts.pop(draft.id, None) is None:  # two clicks: the second finds nothing to apply
            raise NotFound("this draft was applied already")
    try:
        version = writing(request, work)
    except Exception:
        _keep(draft)
        raise
    flash(request, f"{draft.definition.name} applied as version {version}")
    return RedirectResponse("/staff/program", status_code=303)
