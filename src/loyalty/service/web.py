"""The survey answer page at /s/{token}: a small server-rendered form, Vietnamese or English, phone-first."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy.orm import Session

from loyalty.db import read_only_engine, session_factory
from loyalty.errors import LoyaltyError, ValidationFailed
from loyalty.service import surveys
from loyalty.service.schemas import AnswerIn
from loyalty.timeutil import utcnow

router = APIRouter(include_in_schema=False)
_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(),
                   auto_reload=False)

TEXT: dict[str, dict[str, Any]] = {
    "vi": {
        "title": "Cảm ơn bạn đã mua sắm", "why": "Vì sao bạn chọn điểm này?", "comment": "Góp ý thêm",
        "send": "Gửi", "low": {"nps": "Không bao giờ", "csat": "Rất không hài lòng"},
        "high": {"nps": "Chắc chắn", "csat": "Rất hài lòng"},
        "thanks": ("Cảm ơn bạn!", "Chúng tôi đã nhận được ý kiến của bạn."),
        "detractor": ("Cảm ơn bạn!", "Chúng tôi rất tiếc. Nhân viên chăm sóc khách hàng sẽ liên hệ với bạn "
                                     "trong vòng 24 giờ."),
        "invalid-link": ("Liên kết không hợp lệ", "Vui lòng dùng đúng liên kết trong tin nhắn của bạn."),
        "link-expired": ("Liên kết đã hết hạn", "Khảo sát này đã đóng. Cảm ơn bạn!"),
        "already-answered": ("Bạn đã trả lời rồi", "Khảo sát này đã được trả lời. Cảm ơn bạn!"),
        "score": "Vui lòng chọn một điểm.",
    },
    "en": {
        "title": "Thank you for shopping with us", "why": "Why did you choose this score?",
        "comment": "Anything else?", "send": "Send", "low": {"nps": "Not at all likely", "csat": "Very unsatisfied"},
        "high": {"nps": "Extremely likely", "csat": "Very satisfied"},
        "thanks": ("Thank you!", "We have received your answer."),
        "detractor": ("Thank you!", "We are sorry. Our customer care team will contact you within 24 hours."),
        "invalid-link": ("This link is not valid", "Please use the link from your message."),
        "link-expired": ("This link has expired", "The survey is closed. Thank you all the same!"),
        "already-answered": ("Already answered", "This survey was already answered. Thank you!"),
        "score": "Please choose a score.",
    },
}


def _lang(request: Request, chosen: str | None = None) -> str:
    lang = chosen or request.query_params.get("lang")
    if lang in TEXT:
        return lang
    accept = request.headers.get("accept-language", "").lower()
    first = accept.split(",")[0].strip()
    return "en" if first.startswith("en") else "vi"


def _render(status: int, lang: str, **context: Any) -> HTMLResponse:
    values: dict[str, Any] = {"message": None, "error": None, "comment": "", "chosen": None, **context}
    html = _env.get_template("survey.html").render(lang=lang, t=TEXT[lang], **values)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _message(status: int, lang: str, key: str) -> HTMLResponse:
    title, text = TEXT[lang][key]
    return _render(status, lang, message={"title": title, "text": text})


def _form(status: int, lang: str, survey: Any, **extra: Any) -> HTMLResponse:
    low, high = surveys.SCORE_RANGE.get(survey.kind, (0, -1))
    return _render(status, lang, kind=survey.kind, question=survey.question, scores=list(range(low, high + 1)),
                   fields=surveys.fields_of(survey), **extra)


def _session(request: Request, *, write: bool) -> Session:
    engine = request.app.state.engine
    return session_factory(engine if write else read_only_engine(engine))()


@router.get("/s/{token}", response_class=HTMLResponse)
def survey_page(token: str, request: Request) -> HTMLResponse:
    lang = _lang(request)
    with _session(request, write=False) as session:
        try:
            _, survey = surveys.open_invitation(session, token, utcnow())
        except LoyaltyError as exc:
            return _message(exc.status, lang, exc.type_slug if exc.type_slug in TEXT[lang] else "invalid-link")
        return _form(200, lang, survey)


@router.post("/s/{token}", response_class=HTMLResponse)
async def survey_submit(token: str, request: Request) -> HTMLResponse:
    body = (await request.body())[:20_000].decode("utf-8", "replace")
    form = {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
    # The database work is synchronous: keep it off the event loop.
    return await run_in_threadpool(_submit, request, token, form)


def _submit(request: Request, token: str, form: dict[str, str]) -> HTMLResponse:
    lang = _lang(request, form.get("lang"))
    raw_score = form.get("score", "").strip()
    comment = form.get("comment", "")[:2000]
    try:
        score = int(raw_score) if raw_score else None
    except ValueError:
        score = -1  # not a number: refused below like any score out of range
    try:
        data = AnswerIn.model_validate({
            "token": token, "score": score, "comment": comment, "language": lang,
            "answers": {k[2:]: v for k, v in form.items() if k.startswith("f_")}})
    except ValidationError:
        return _message(404, lang, "invalid-link")
    session = _session(request, write=True)
    try:
        result = surveys.answer(session, data, utcnow())
        session.commit()
    except ValidationFailed as exc:
        session.rollback()
        _, survey = surveys.open_invitation(session, token, utcnow())
        error = TEXT[lang]["score"] if exc.extra.get("field") == "score" else exc.detail
        return _form(422, lang, survey, error=error, comment=comment)
    except LoyaltyError as exc:
        session.rollback()
        return _message(exc.status, lang, exc.type_slug if exc.type_slug in TEXT[lang] else "invalid-link")
    finally:
        session.close()
    return _message(200, lang, "detractor" if result.ticket_id else "thanks")
