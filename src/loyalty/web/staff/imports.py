"""Imports (admins): upload a customers or transactions CSV, follow it while it runs in the background, see
what came of it and download its rejected rows; the last imports, from this page or the CLI, stay listed."""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from jinja2.filters import do_filesizeformat
from sqlalchemy import func, select
from starlette.datastructures import UploadFile
from starlette.types import Message

from loyalty.config import get_settings
from loyalty.errors import LoyaltyError, ValidationFailed
from loyalty.imports import history
from loyalty.imports.pipeline import check_file, run_recorded
from loyalty.imports.rows import CsvFileError, CsvHeaderError
from loyalty.models.imports import IMPORT_KINDS, ImportRejection, ImportRun
from loyalty.timeutil import utcnow
from loyalty.web import tasks
from loyalty.web.auth import StaffUser, require
from loyalty.web.staff import router
from loyalty.web.staff.common import engine_of, reading, writing
from loyalty.web.templating import env, render

Importer = Annotated[StaffUser, Depends(require("import"))]
CHUNK = 1 << 20
FORM_ROOM = 64 * 1024  # the form's other fields and multipart boundaries, on top of the file itself
RECENT = 20
SHOWN_REJECTIONS = 20


class FileTooLarge(LoyaltyError):
    status = 413
    type_slug = "file-too-large"
    title = "The file is too large"


class FileRefused(ValidationFailed):
    type_slug = "import-file-refused"
    title = "The file cannot be imported"


def _too_large(limit: int) -> FileTooLarge:
    return FileTooLarge(f"the file is larger than the {do_filesizeformat(limit)} an import may be "
                        "(LOYALTY_IMPORT_MAX_BYTES); nothing was imported: split it, or import it with "
                        "`loyalty import` on the server")


class SizeLimitedRoute(APIRoute):
    """Refuses a request body over LOYALTY_IMPORT_MAX_BYTES (plus room for the other fields) as it arrives:
    by its Content-Length before any of it is read, else once the bytes counted pass the limit. The
    router's CSRF check parses the form before the endpoint runs, so the endpoint could only refuse it
    after all of it was spooled to disk."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            file_limit = get_settings().import_max_bytes
            limit = file_limit + FORM_ROOM
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                raise _too_large(file_limit)
            receive = request.receive
            received = 0

            async def counted() -> Message:
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(file_limit)
                return message

            return await handler(Request(request.scope, counted))

        return limited


# --- pages --------------------------------------------------------------------------------------

def _page(request: Request, *, status: int = 200, error: str | None = None, kind: str = "customers",
          create_customers: bool = False) -> Response:
    with reading(request) as session:
        runs = history.recent_runs(session, RECENT)
    return render(request, "staff/imports.html", status=status, runs=runs, error=error, kind=kind,
                  create_customers=create_customers, limit=get_settings().import_max_bytes)


@router.get("/imports")
def imports_page(request: Request, user: Importer) -> Response:
    return _page(request)


async def upload(request: Request, user: Importer) -> Response:
    form = await request.form()  # parsed already by the CSRF check (or now, for htmx): cached either way
    kind = str(form.get("kind") or "")
    create_customers = form.get("create_customers") in ("on", "true", "1")
    try:
        file = form.get("file")
        if kind not in IMPORT_KINDS:
            raise FileRefused("choose what the file holds: customers or transactions")
        if not isinstance(file, UploadFile) or not file.filename:
            raise FileRefused("choose a CSV file to import")
        run_id = await run_in_threadpool(_accept, request, user, kind, file, create_customers)
    except (FileRefused, FileTooLarge, CsvHeaderError, CsvFileError) as exc:
        return await run_in_threadpool(_page, request, status=exc.status, error=exc.detail,
                                       kind=kind if kind in IMPORT_KINDS else "customers",
                                       create_customers=create_customers)
    finally:
        await form.close()
    return RedirectResponse(f"/staff/imports/{run_id}", status_code=303)


router.add_api_route("/imports", upload, methods=["POST"], route_class_override=SizeLimitedRoute)


def _accept(request: Request, user: StaffUser, kind: str, file: UploadFile, create_customers: bool) -> int:
    """Copies the upload to a file of its own, checks it, records the run and starts it in the background."""
    file_name = Path(file.filename or "upload.csv").name
    path, size = _spool(file.file, get_settings().import_max_bytes)
    try:
        check_file(path, kind)
        run_id = writing(request, lambda session: history.start_run(
            session, kind=kind, file_name=file_name, size_bytes=size, started_by=user.actor,
            create_customers=create_customers).id)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    engine = engine_of(request)

    def work(task: tasks.Task) -> int:
        def on_rows(done: int, total: int) -> None:
            task.progress(done / total if total else 0.0, f"{done:,} of {total:,} rows")

        try:
            task.progress(0.0, "counting the rows")
            run_recorded(engine, run_id, kind, path, create_customers=create_customers, on_rows=on_rows)
            return run_id
        finally:
            path.unlink(missing_ok=True)

    tasks.start(_task_key(run_id), f"import of {file_name}", work, keep=3600)
    return run_id


def _spool(source: IO[bytes], limit: int) -> tuple[Path, int]:
    """Copies the upload to a temporary file chunk by chunk, refusing it once it passes `limit` bytes or
    holds bytes that are not UTF-8 (checked all through, so an import never stops half-way on them)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = lines = 0
    source.seek(0)
    handle = tempfile.NamedTemporaryFile(prefix="loyalty-import-", suffix=".csv", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line = lines + chunk[:max(exc.start, 0)].count(b"\n") + 1
                    raise FileRefused(f"line {line}: the file is not UTF-8 text; save it as “CSV UTF-8” and "
                                      "upload it again (nothing was imported)") from None
                lines += chunk.count(b"\n")
                handle.write(chunk)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise FileRefused(f"line {lines + 1}: the file ends inside a character: it is not UTF-8 text "
                                  "(nothing was imported)") from None
        if size == 0:
            raise FileRefused("the file is empty (nothing was imported)")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size


def who(started_by: str) -> str:
    """"staff:3:lan@shop.vn" → "lan@shop.vn"; "cli" → "the command line"."""
    if started_by == history.CLI:
        return "the command line"
    return started_by.split(":", 2)[-1]


env.globals["import_started_by"] = who


def _task_key(run_id: int) -> str:
    return f"import:{run_id}"


def _load(request: Request, run_id: int) -> tuple[ImportRun, list[history.Rejection], int]:
    with reading(request) as session:
        run = history.get_run(session, run_id)
        shown = list(history.rejections_of(session, run_id, limit=SHOWN_REJECTIONS)) if run.rejected else []
        kept = session.scalar(select(func.count()).select_from(ImportRejection)
                              .where(ImportRejection.run_id == run_id)) if run.rejected else 0
    return run, shown, kept or 0


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _pace(run: ImportRun, now: datetime) -> dict[str, Any]:
    """Rows per second since the run started, and the time left at that pace."""
    elapsed = max((now - run.started_at).total_seconds(), 0.001)
    rate = run.rows_done / elapsed if run.rows_done else None
    left = (run.rows_total - run.rows_done) / rate if rate and run.rows_total >= run.rows_done else None
    return {"elapsed": _duration(elapsed), "rate": rate, "eta": _duration(left) if left is not None else None,
            "percent": 100 * run.rows_done / run.rows_total if run.rows_total else 0.0}


def _status(request: Request, run_id: int, template: str) -> Response:
    run, shown, kept = _load(request, run_id)
    task = tasks.find(_task_key(run.id))
    # Running in the database but not in this process: the server restarted (or another worker has it).
    orphaned = run.status == "running" and task is None
    return render(request, template, run=run, shown=shown, kept=kept, task=task, orphaned=orphaned,
                  columns=history.columns_of(run), pace=_pace(run, utcnow()), duration=_duration)


@router.get("/imports/{run_id}")
def run_page(request: Request, run_id: int, user: Importer) -> Response:
    return _status(request, run_id, "staff/imports_run.html")


@router.get("/imports/{run_id}/status")
def run_status(request: Request, run_id: int, user: Importer) -> Response:
    """Polled by the run page: the progress while it runs, then the result (which stops the polling)."""
    return _status(request, run_id, "staff/_import_status.html")


@router.get("/imports/{run_id}/rejected.csv")
def rejected_csv(request: Request, run_id: int, user: Importer) -> Response:
    with reading(request) as session:
        run = history.get_run(session, run_id)
    columns = history.columns_of(run)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["line", "reason", *columns])
        with reading(request) as session:
            for count, rejection in enumerate(history.rejections_of(session, run_id), start=1):
                writer.writerow([rejection.line, rejection.reason, *(rejection.fields or [])])
                if count % 1000 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    name = f"import-{run.id}-rejected.csv"
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})

