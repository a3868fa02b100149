"""The demo business's service desk: staff, surveys and answers, complaints (some breached), calls, departures.

Generated from a fixed seed on top of the loaded purchases and written with bulk inserts;
recent tickets are placed relative to the time the demo is built, so queues, breaches and
this week's review have something to show.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from loyalty.bulk import allocate_ids, insert_rows
from loyalty.db import run_in_transaction
from loyalty.ledger import service as ledger
from loyalty.models import Store, Transaction
from loyalty.models.service import (
    Departure,
    Interaction,
    StaffMember,
    StaffStore,
    StoreHours,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    Ticket,
    TicketEvent,
)
from loyalty.programs.service import program_at
from loyalty.service import tickets as ticket_service
from loyalty.service.sla import DEFAULT_SLA
from loyalty.service.text import fold

AGENTS = ("Nguyễn Thị Lan", "Trần Văn Minh", "Lê Thị Hoa", "Phạm Quốc Huy", "Hoàng Thu Trang", "Vũ Đức Anh",
          "Đặng Ngọc Mai", "Bùi Thanh Tùng", "Đỗ Thị Hương", "Ngô Văn Nam", "Dương Thị Thảo", "Lý Minh Khoa",
          "Phan Thị Yến", "Võ Hoàng Long", "Trịnh Thị Ngân", "Hồ Văn Phúc", "Mai Thị Loan", "Tạ Quang Vinh")
MANAGERS = {"Hà Nội": "Nguyễn Văn Tuấn", "TP. Hồ Chí Minh": "Trần Thị Bích", "Đà Nẵng": "Lê Văn Hải"}

# Per store: (share of promoters, share of detractors) in NPS answers.
QUALITY = {"HN01": (0.62, 0.10), "HN02": (0.52, 0.14), "HCM01": (0.58, 0.12), "HCM02": (0.47, 0.18),
           "HCM03": (0.50, 0.16), "DN01": (0.38, 0.27), "OUT01": (0.44, 0.20), "OUT02": (0.35, 0.30),
           "WEB": (0.45, 0.22)}
TOPICS: dict[str, tuple[str, list[str]]] = {
    "delivery": ("delivery", ["Giao hàng chậm quá, chờ 5 ngày mới nhận được", "Đơn hàng giao trễ, không ai báo trước",
                              "Giao hàng chậm và hộp bị móp", "Shipper giao sai địa chỉ, phải gọi nhiều lần"]),
    "staff": ("staff", ["Nhân viên thu ngân thái độ không tốt", "Nhân viên không nhiệt tình tư vấn",
                        "Gọi tổng đài không ai nghe máy", "Nhân viên thu ngân phục vụ chậm"]),
    "waiting": ("service", ["Xếp hàng thanh toán quá lâu, chỉ mở một quầy", "Chờ thanh toán lâu vào cuối tuần",
                            "Quầy thanh toán đông, phục vụ chậm"]),
    "price": ("price", ["Giá cao hơn cửa hàng khác", "Giá trên kệ khác giá khi thanh toán",
                        "Khuyến mãi không được áp dụng khi thanh toán"]),
    "product": ("product", ["Sản phẩm hết hàng liên tục", "Hàng bị lỗi, đổi trả rất phức tạp",
                            "Sản phẩm gần hết hạn sử dụng vẫn bày bán"]),
    "points": ("points", ["Không được cộng điểm cho đơn hàng", "Điểm thưởng bị trừ mà không rõ lý do",
                          "Không dùng được điểm khi thanh toán"]),
}
PRAISE = ["Nhân viên thân thiện, nhiệt tình", "Cửa hàng sạch sẽ, dễ tìm hàng", "Giao hàng nhanh, đóng gói cẩn thận",
          "Giá hợp lý, nhiều khuyến mãi", "Rất hài lòng, sẽ quay lại", "Tích điểm tiện lợi"]
PASSIVE = ["Bình thường, không có gì đặc biệt", "Tạm được, giá hơi cao", "Ổn nhưng nên có thêm quầy thanh toán",
           "Hàng ổn, giao hàng hơi chậm"]
CALL_NOTES = ["Hỏi số điểm hiện có", "Hỏi về chương trình khuyến mãi", "Cập nhật số điện thoại",
              "Hỏi giờ mở cửa", "Gọi lại sau khiếu nại, khách hài lòng", "Xác nhận đơn hàng trực tuyến",
              "Khách hỏi cách dùng điểm khi thanh toán", "Hướng dẫn đổi trả hàng"]
DEPARTURE_REASONS = (("price", 0.3), ("service", 0.2), ("competitor", 0.18), ("moved", 0.12), ("no_need", 0.1),
                     ("product", 0.06), ("points", 0.04))
WIN_BACK_REASONS = (("points", 0.45), ("price", 0.3), ("service", 0.25))


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    staff: int
    answers: int
    tickets: int
    breached: int
    open_tickets: int

    def row(self) -> tuple[str, str]:
        return ("service desk", f"{self.staff} staff, {self.answers:,} survey answers, {self.tickets:,} tickets "
                                f"({self.open_tickets} open, {self.breached} breached)")


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _maybe_unaccented(rng: np.random.Generator, text: str) -> str:
    """About a third of customers type without diacritics ("giao hang cham")."""
    return fold(text) if rng.random() < 0.3 else text


def _staff(session: Session, stores: list[tuple[str, str | None]], now: datetime) -> tuple[dict[str, list[int]],
                                                                                           dict[str, int], int]:
    agents: dict[str, list[int]] = {}
    managers: dict[str, int] = {}
    names = iter(AGENTS)
    staff_rows: list[StaffMember] = []
    links: list[dict[str, Any]] = []
    by_city: dict[str, int] = {}
    for city, name in MANAGERS.items():
        member = StaffMember(name=name, email=f"quanly.{fold(city).replace(' ', '').replace('.', '')}@demo.vn",
                             role="manager", active=True, created_at=now)
        session.add(member)
        staff_rows.append(member)
        session.flush()
        by_city[city] = member.id
    for store_id, store_city in stores:
        agents[store_id] = []
        for _ in range(2):
            name = next(names, f"Nhân viên {store_id}")
            member = StaffMember(name=name, email=f"cskh{len(staff_rows) + 1}@demo.vn", role="agent", active=True,
                                 created_at=now)
            session.add(member)
            session.flush()
            staff_rows.append(member)
            agents[store_id].append(member.id)
            links.append({"staff_id": member.id, "store_id": store_id, "last_assigned_at": None})
        manager = by_city.get(store_city or "", by_city["TP. Hồ Chí Minh"])
        managers[store_id] = manager
        links.append({"staff_id": manager, "store_id": store_id, "last_assigned_at": None})
    insert_rows(session, StaffStore, links)
    insert_rows(session, StoreHours, [{"store_id": s, "timezone": "Asia/Ho_Chi_Minh", "opens_minute": 8 * 60,
                                       "closes_minute": 21 * 60, "weekdays": "1234567"} for s, _ in stores])
    return agents, managers, len(staff_rows)


def _surveys(session: Session, now: datetime) -> tuple[int, int]:
    nps = Survey(name="Sau mua hàng (NPS)", kind="nps", question="Bạn có sẵn lòng giới thiệu cửa hàng với bạn bè "
                 "không?", fields="[]", channel="email", after_purchase=True, delay_hours=24, sample_percent=20,
                 cooldown_days=60, link_days=14, active=True, created_at=now - timedelta(days=760))
    csat = Survey(name="Hài lòng sau giao hàng (CSAT)", kind="csat", question="Bạn hài lòng thế nào với lần mua "
                  "hàng này?", fields="[]", channel="sms", after_purchase=True, delay_hours=2, sample_percent=10,
                  cooldown_days=30, link_days=7, active=True, created_at=now - timedelta(days=760))
    custom = Survey(name="Góp ý cửa hàng", kind="custom", question="Giúp chúng tôi phục vụ tốt hơn",
                    fields=json.dumps([{"name": "visit", "label": "Bạn đến để", "type": "choice",
                                        "choices": ["mua sắm", "đổi trả", "xem hàng"], "required": True},
                                       {"name": "idea", "label": "Ý kiến", "type": "text", "required": False}],
                                      ensure_ascii=False),
                    channel="email", after_purchase=False, delay_hours=0, sample_percent=0, cooldown_days=30,
                    link_days=14, active=True, created_at=now - timedelta(days=400))
    session.add_all([nps, csat, custom])
    session.flush()
    return nps.id, csat.id


def build_service_data(engine: Engine, *, seed: int, now: datetime) -> ServiceSummary:
    return run_in_transaction(engine, lambda session: _build(session, seed=seed, now=now))


def _build(session: Session, *, seed: int, now: datetime) -> ServiceSummary:
    rng = np.random.Generator(np.random.PCG64(seed + 5))
    stores = [(s, c) for s, c in session.execute(select(Store.id, Store.city).order_by(Store.id)).all()]
    agents, managers, staff_count = _staff(session, stores, now)
    nps_id, csat_id = _surveys(session, now)

    purchases: list[tuple[int, int, str, datetime]] = [
        (int(t), c, str(s), o) for t, c, s, o in session.execute(
            select(Transaction.id, Transaction.customer_id, Transaction.store_id, Transaction.occurred_at)
            .where(Transaction.kind == "purchase", Transaction.customer_id.is_not(None)).order_by(Transaction.id))
        if c is not None]
    if not purchases:
        return ServiceSummary(staff_count, 0, 0, 0, 0)
    last_purchase = max(p[3] for p in purchases)

    # --- invitations and answers ------------------------------------------------------------
    invited = [p for p in purchases if rng.random() < 0.07]
    invitation_ids = allocate_ids(session, SurveyInvitation, len(invited))
    invitations: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    detractors: list[tuple[int, int, str, datetime, str, str]] = []  # response id, customer, store, at, topic, text
    answered = [rng.random() < 0.35 for _ in invited]
    response_ids = iter(allocate_ids(session, SurveyResponse, sum(answered)))
    for (tid, customer, store, occurred), iid, answers_it in zip(invited, invitation_ids, answered, strict=True):
        is_nps = rng.random() < 0.7
        channel = "email" if is_nps else "sms"
        created = occurred + timedelta(days=1 if is_nps else 0, hours=2)
        invitations.append({"id": iid, "survey_id": nps_id if is_nps else csat_id, "customer_id": customer,
                            "transaction_id": tid, "store_id": store, "channel": channel, "created_at": created,
                            "send_after": created, "expires_at": created + timedelta(days=14 if is_nps else 7),
                            "created_by": "job:surveys"})
        if not answers_it:
            continue
        at = created + timedelta(hours=float(rng.exponential(20)))
        promoter_share, detractor_share = QUALITY.get(store, (0.5, 0.18))
        if store == "WEB" and occurred > last_purchase - timedelta(days=60):
            promoter_share, detractor_share = 0.3, 0.38  # delivery trouble in the last two months
        draw = rng.random()
        klass = "promoter" if draw < promoter_share else "detractor" if draw > 1 - detractor_share else "passive"
        if is_nps:
            score = int(rng.integers(9, 11)) if klass == "promoter" else int(rng.integers(0, 7)) \
                if klass == "detractor" else int(rng.integers(7, 9))
        else:
            score = int(rng.integers(4, 6)) if klass == "promoter" else int(rng.integers(1, 3)) \
                if klass == "detractor" else 3
        topic = _pick(rng, ["delivery", "delivery", "staff", "waiting", "price", "product", "points"]
                      if store == "WEB" else ["staff", "waiting", "waiting", "price", "product", "points"])
        comment = ""
        if rng.random() < (0.8 if klass == "detractor" else 0.4):
            pool = PRAISE if klass == "promoter" else PASSIVE if klass == "passive" else TOPICS[topic][1]
            comment = _maybe_unaccented(rng, _pick(rng, pool))
        rid = next(response_ids)
        answers.append({"id": rid, "invitation_id": iid, "survey_id": nps_id if is_nps else csat_id,
                        "kind": "nps" if is_nps else "csat", "customer_id": customer, "store_id": store,
                        "channel": channel, "score": score, "comment": comment, "answers": "{}",
                        "language": "vi" if rng.random() < 0.9 else "en", "created_at": at})
        if (is_nps and score <= 6) or (not is_nps and score <= 2):
            detractors.append((rid, customer, store, at, topic, comment or f"Điểm {score}, không có góp ý"))
    insert_rows(session, SurveyInvitation, invitations)
    insert_rows(session, SurveyResponse, answers)

    # --- tickets --------------------------------------------------------------------------------
    specs: list[tuple[int | None, int, str, datetime, str, str, str]] = [
        (rid, customer, store, at, topic, text, "survey") for rid, customer, store, at, topic, text in detractors]
    for _ in range(900):  # complaints by phone, in store, by e-mail, on social media
        _, customer, store, occurred = purchases[int(rng.integers(len(purchases)))]
        topic = _pick(rng, list(TOPICS))
        specs.append((None, customer, store, occurred + timedelta(hours=float(rng.exponential(30))), topic,
                      _maybe_unaccented(rng, _pick(rng, TOPICS[topic][1])),
                      _pick(rng, ["phone", "phone", "store", "email", "social", "web"])))
    # The last nine weeks before the build, with a delivery spike at the web shop this week.
    recent_customers = [p[1] for p in purchases[-3000:]]
    week_start = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    for week in range(9, -1, -1):
        count = 9 if week else 6
        for _ in range(count):
            store = _pick(rng, [s for s, _ in stores])
            topic = _pick(rng, list(TOPICS))
            start = week_start - timedelta(weeks=week)
            at = start + timedelta(seconds=float(rng.uniform(0, min(7 * 86400, (now - start).total_seconds()))))
            specs.append((None, recent_customers[int(rng.integers(len(recent_customers)))], store, at, topic,
                          _maybe_unaccented(rng, _pick(rng, TOPICS[topic][1])), _pick(rng, ["phone", "store", "web"])))
    for _ in range(14):
        at = week_start + timedelta(seconds=float(rng.uniform(0, max((now - week_start).total_seconds(), 3600))))
        specs.append((None, recent_customers[int(rng.integers(len(recent_customers)))], "WEB", min(at, now),
                      "delivery", _maybe_unaccented(rng, _pick(rng, TOPICS["delivery"][1])),
                      _pick(rng, ["phone", "web", "social"])))

    ticket_ids = allocate_ids(session, Ticket, len(specs))
    ticket_rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    open_count = 0
    for tid, (answer_id, customer, store, created, topic, text, channel) in zip(ticket_ids, specs, strict=True):
        created = min(created, now - timedelta(minutes=5))
        category = TOPICS[topic][0]
        priority = _pick(rng, ["normal"] * 6 + ["high"] * 2 + ["low", "urgent"])
        first_hours, resolution_hours = DEFAULT_SLA[priority]
        due = created + timedelta(hours=first_hours)
        owner = agents[store][int(rng.integers(len(agents[store])))] if store in agents else None
        age_hours = (now - created).total_seconds() / 3600
        # Most answers come within hours; one in ten takes longer than the promise.
        response_after = float(rng.lognormal(np.log(first_hours * 0.25), 0.9))
        responded_at = created + timedelta(hours=response_after) if response_after < age_hours else None
        resolved_after = response_after + float(rng.lognormal(np.log(resolution_hours * 0.3), 0.8))
        resolved_at = created + timedelta(hours=resolved_after) \
            if responded_at is not None and resolved_after < age_hours else None
        closed_at = resolved_at + timedelta(days=3) if resolved_at is not None and \
            resolved_at + timedelta(days=3) < now else None
        status = "closed" if closed_at else "resolved" if resolved_at else \
            ("waiting" if rng.random() < 0.3 else "assigned") if responded_at else "assigned"
        if owner is None and status == "assigned":
            status = "new"
        late = responded_at is not None and responded_at > due
        # Open and unanswered past the due time: the breach job (run below) marks and escalates them.
        breached_at = due if late else None
        open_count += status in ticket_service.OPEN
        ticket_rows.append({
            "id": tid, "customer_id": customer, "store_id": store, "channel": channel, "category": category,
            "priority": priority, "subject": text[:60], "description": text, "status": status, "owner_id": owner,
            "survey_response_id": answer_id, "created_at": created, "created_by": "survey" if answer_id else "demo",
            "first_response_due_at": due, "resolution_due_at": created + timedelta(hours=resolution_hours),
            "first_response_at": responded_at, "resolved_at": resolved_at, "closed_at": closed_at,
            "breached_at": breached_at, "escalated_to_id": managers.get(store) if late else None,
            "updated_at": closed_at or resolved_at or responded_at or created})

        def event(kind: str, at: datetime, actor: str, note: str = "", before: str | None = None,
                  after: str | None = None, owner_id: int | None = None, ticket: int = tid) -> None:
            events.append({"ticket_id": ticket, "kind": kind, "from_status": before, "to_status": after,
                           "owner_id": owner_id, "points": None, "ledger_entry_id": None, "note": note,
                           "actor": actor, "created_at": at})
        event("created", created, "survey" if answer_id else "demo", text[:60], None, "new")
        if owner is not None:
            event("assigned", created, "rule:round-robin", "", "new", "assigned", owner)
        if late:
            event("breached", due, "job:sla", "no first response by the due time; escalated", None, None,
                  managers.get(store))
        if responded_at is not None:
            event("response", responded_at, f"staff:{owner}", "Xin lỗi quý khách, chúng tôi đã kiểm tra và xử lý.",
                  "assigned", "waiting" if status == "waiting" else "assigned")
        if resolved_at is not None:
            event("status", resolved_at, f"staff:{owner}", "", "assigned", "resolved")
        if closed_at is not None:
            event("status", closed_at, f"staff:{owner}", "", "resolved", "closed")
    insert_rows(session, Ticket, ticket_rows)
    insert_rows(session, TicketEvent, events)
    ticket_service.mark_breaches(session, now)
    # Tickets breached either way (late first response, or open past the resolution time): the job
    # counts breaches, and one ticket can have both.
    breached_count = session.scalar(select(func.count()).select_from(Ticket).where(
        Ticket.id.in_(ticket_ids),
        or_(Ticket.breached_at.is_not(None), Ticket.resolution_breached_at.is_not(None)))) or 0

    # Goodwill points on some resolved complaints, through the ledger like any other grant.
    program = program_at(session, now)
    for row in [r for r in ticket_rows if r["resolved_at"] is not None][:: 40][:25]:
        points = int(rng.choice([20, 50, 100]))
        entry = ledger.credit(session, program, customer_id=row["customer_id"], points=points, kind="adjust",
                              from_account="adjusted", source_type="ticket", source_id=str(row["id"]),
                              event="goodwill", reason=f"goodwill for ticket #{row['id']}: xin lỗi quý khách",
                              actor=f"staff:{row['owner_id']}", earned_at=now, now=now, counts_as_earned=False)
        insert_rows(session, TicketEvent, [{"ticket_id": row["id"], "kind": "goodwill", "from_status": None,
                                            "to_status": None, "owner_id": None, "points": points,
                                            "ledger_entry_id": entry.entry_id, "note": "xin lỗi quý khách",
                                            "actor": f"staff:{row['owner_id']}", "created_at": now}])

    # --- calls, e-mails, visits; departures ----------------------------------------------------
    interactions: list[dict[str, Any]] = []
    for _ in range(4000):
        _, customer, store, occurred = purchases[int(rng.integers(len(purchases)))]
        kind, channel = [("call", "phone"), ("call", "phone"), ("email", "email"), ("visit", "store"),
                         ("social", "social"), ("message", "zalo")][int(rng.integers(6))]
        interactions.append({"customer_id": customer, "kind": kind, "channel": channel,
                             "direction": "inbound" if rng.random() < 0.7 else "outbound",
                             "occurred_at": occurred + timedelta(days=float(rng.uniform(0, 20))),
                             "store_id": store, "staff_id": agents[store][int(rng.integers(2))] if store in agents
                             else None, "note": _pick(rng, CALL_NOTES), "actor": "demo", "created_at": now})
    for row in interactions:
        row["occurred_at"] = min(row["occurred_at"], now)
    insert_rows(session, Interaction, interactions)
    departures: list[dict[str, Any]] = []
    for kind, count, reasons in (("cancelled", 140, DEPARTURE_REASONS), ("won_back", 45, WIN_BACK_REASONS)):
        names, weights = zip(*reasons, strict=True)
        for _ in range(count):
            _, customer, _, occurred = purchases[int(rng.integers(len(purchases)))]
            departures.append({"customer_id": customer, "kind": kind,
                               "reason": names[int(rng.choice(len(names), p=np.array(weights) / sum(weights)))],
                               "note": "", "actor": "demo",
                               "created_at": min(occurred + timedelta(days=float(rng.uniform(30, 200))), now)})
    insert_rows(session, Departure, departures)
    return ServiceSummary(staff_count, len(answers), len(ticket_rows), breached_count, open_count)

