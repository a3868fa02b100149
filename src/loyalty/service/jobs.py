"""The service desk's scheduled work for `loyalty jobs run`: survey invitations (made, e-mailed), SLA breaches."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from loyalty.config import Settings, get_settings
from loyalty.service import mail, surveys, tickets

log = logging.getLogger(__name__)


def send_survey_emails(session: Session, now: datetime, settings: Settings) -> int:
    """E-mails due survey invitations, at most settings.mail_invitations_per_run; returns how many were sent.

    This step is a job boundary and commits as it goes, so that no database transaction (and on
    SQLite no write lock) is held while talking to the SMTP server:

    1. claim the due invitations (a lease, committed) and build their messages;
    2. for each: hand it to the SMTP server; only after the server accepted it, mark it sent and
       commit. A refused recipient or message counts an attempt, keeps the error and releases
       the claim: the next run tries again. A connection failure does the same for the message
       in hand and gives back the claims not tried yet.

    Exactly once, with one honest exception (at least once): if the process dies, or the
    database refuses the commit, after the SMTP server accepted a message and before its sent
    mark is committed, the mark is lost and the invitation is e-mailed again once its claim
    lapses (mail.CLAIM). The same happens when the server's reply to the message times out. The
    repeated message carries the same Message-ID. Never marked sent without being accepted.
    """
    if not settings.smtp_host:
        return 0
    claimed = mail.claim_due(session, now, settings.mail_invitations_per_run)
    outgoing = [mail.compose(session, invitation_id, settings) for invitation_id in claimed]
    session.commit()
    if not outgoing:
        return 0
    sent = failed = 0
    pending = list(outgoing)
    try:
        with mail.smtp(settings) as client:
            while pending:
                item = pending[0]
                try:
                    mail.send(client, item)
                except mail.MessageRefused as exc:
                    pending.pop(0)
                    failed += 1
                    log.warning("survey invitation %s not sent: %s", item.invitation_id, exc)
                    mail.mark_failed(session, item.invitation_id, str(exc))
                    session.commit()
                    continue
                pending.pop(0)
                if mail.mark_sent(session, item, now):
                    sent += 1
                session.commit()
    except mail.ConnectionFailed as exc:
        # The message in hand (or the first one, when no connection was made) counts an attempt.
        failed += 1
        log.warning("survey e-mails stopped: %s", exc)
        if pending:
            mail.mark_failed(session, pending[0].invitation_id, str(exc))
            mail.release(session, [o.invitation_id for o in pending[1:]])
        session.commit()
    if failed:
        log.warning("survey e-mails: %d sent, %d failed (kept for the next run)", sent, failed)
    return sent


def jobs(now: datetime) -> list[tuple[str, str, Callable[[Session], int]]]:
    settings = get_settings()
    steps: list[tuple[str, str, Callable[[Session], int]]] = [
        ("invite buyers to surveys", "invitations", lambda s: surveys.trigger_after_purchase(s, now)),
    ]
    if settings.smtp_host:
        steps.append(("e-mail survey invitations", "e-mails", lambda s: send_survey_emails(s, now, settings)))
    steps.append(("mark SLA breaches", "breaches", lambda s: tickets.mark_breaches(s, now)))
    return steps
