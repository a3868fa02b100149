"""Tiers as stories: upgrades on crossing, no downgrade but at review after grace, overrides, progress."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from loyalty.errors import Conflict, NotFound, ValidationFailed
from loyalty.models.tiers import MemberTier, TierHistory
from loyalty.programs.service import program_at
from loyalty.tiers import service
from loyalty.tiers.service import end_override, member_tier, on_purchase, progress, review, set_override
from tests.factories import make_customer, make_store
from tests.tiers.helpers import add_purchase, history, tier_row, use_tiers, vn


@pytest.fixture
def customer_id(session: Session) -> int:
    make_store(session)
    return make_customer(session).id


def buy(session: Session, customer_id: int, amount: int, at: datetime, **extra: int) -> service.TierChange | None:
    add_purchase(session, customer_id, amount, at, **extra)
    change = on_purchase(session, program_at(session, at), customer_id, at)
    session.commit()
    return change


class TestUpgradeOnPurchase:
    def test_spend_crossing_a_threshold_exactly_upgrades_at_once(self, session: Session, customer_id: int) -> None:
        use_tiers(session)
        assert buy(session, customer_id, 3_000_000, vn(2026, 3, 1)) is None
        row = tier_row(session, customer_id)
        assert row is not None and row.tier == "MEMBER" and row.qualified_value == 3_000_000
        change = buy(session, customer_id, 2_000_000, vn(2026, 4, 1))  # exactly 5,000,000
        assert change is not None and (change.from_tier, change.to_tier, change.reason) == ("MEMBER", "SILVER",
                                                                                          "upgrade")
        row = tier_row(session, customer_id)
        assert row is not None and row.tier == "SILVER" and row.since == vn(2026, 4, 1)
        assert history(session, customer_id) == [("MEMBER", "SILVER", "upgrade")]
        assert member_tier(session, customer_id, vn(2026, 4, 2)) == "SILVER"

    def test_one_big_purchase_skips_a_level(self, session: Session, customer_id: int) -> None:
        use_tiers(session)
        buy(session, customer_id, 25_000_000, vn(2026, 3, 1))
        assert history(session, customer_id) == [("MEMBER", "GOLD", "upgrade")]

    def test_points_earned_net_of_reversals(self, session: Session, customer_id: int) -> None:
        use_tiers(session, metric="points_earned")
        buy(session, customer_id, 1, vn(2026, 3, 1), points=600, reversed_points=200)
        assert member_tier(session, customer_id, vn(2026, 3, 2)) == "MEMBER"  # 400 of 500
        buy(session, customer_id, 1, vn(2026, 3, 2), points=100)
        assert member_tier(session, customer_id, vn(2026, 3, 3)) == "SILVER"  # exactly 500

    def test_purchases_count_unless_fully_returned_or_free(self, session: Session, customer_id: int) -> None:
        use_tiers(session, metric="purchases")
        for day in range(1, 5):
            buy(session, customer_id, 100_000, vn(2026, 3, day))
        buy(session, customer_id, 100_000, vn(2026, 3, 5), returned=100_000)
        buy(session, customer_id, 0, vn(2026, 3, 6))
        assert member_tier(session, customer_id, vn(2026, 3, 7)) == "MEMBER"
        buy(session, customer_id, 100_000, vn(2026, 3, 7), returned=50_000)  # partly returned: counts
        assert member_tier(session, customer_id, vn(2026, 3, 8)) == "SILVER"

    def test_calendar_year_starts_on_january_first_in_business_time(self, session: Session,
                                                                    customer_id: int) -> None:
        use_tiers(session)
        # Both are on 31 December in UTC; the second is already 2026 in Hà Nội.
        buy(session, customer_id, 4_000_000, vn(2025, 12, 31, 23, 30))
        buy(session, customer_id, 2_000_000, vn(2026, 1, 1, 0, 30))
        assert member_tier(session, customer_id, vn(2026, 1, 2)) == "MEMBER"
        assert progress(session, program_at(session), customer_id, vn(2026, 1, 1, 1)).value == 2_000_000

    @pytest.mark.parametrize(("second", "tier"), [((2026, 5, 9), "SILVER"), ((2026, 5, 10), "MEMBER")])
    def test_rolling_window_counts_a_purchase_through_the_day_before_n_months_later(
        self, session: Session, customer_id: int, second: tuple[int, int, int], tier: str,
    ) -> None:
        use_tiers(session, window={"rolling_months": 12})
        buy(session, customer_id, 3_000_000, vn(2025, 5, 10, 9))
        buy(session, customer_id, 2_000_000, vn(*second, 20))
        assert member_tier(session, customer_id, vn(*second, 21)) == tier

    def test_never_downgrades_on_a_purchase(self, session: Session, customer_id: int) -> None:
        use_tiers(session)
        buy(session, customer_id, 25_000_000, vn(2025, 6, 1))
        assert buy(session, customer_id, 100_000, vn(2026, 6, 1)) is None  # 2026 has only 100,000
        row = tier_row(session, customer_id)
        assert row is not None and row.tier == "GOLD" and row.qualified_value == 100_000

    def test_one_aggregate_over_transactions(self, session: Session, customer_id: int, engine: Engine) -> None:
        program = use_tiers(session)
        add_purchase(session, customer_id, 3_000_000, vn(2026, 3, 1))
        session.commit()
        seen: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            on_purchase(session, program, customer_id, vn(2026, 3, 1))
            first = [s for s in seen if s != "BEGIN"]
            seen.clear()
            add_purchase(session, customer_id, 100_000, vn(2026, 3, 2))
            seen.clear()
            on_purchase(session, program, customer_id, vn(2026, 3, 2))
            later = [s for s in seen if s != "BEGIN"]
        finally:
            event.remove(engine, "before_cursor_execute", count)
        # The first purchase under tiers: the UPDATE finds no tier row, then the aggregate and its insert.
        assert len(first) == 3 and first[0].startswith("UPDATE member_tiers")
        # Every later one: one UPDATE that recomputes the metric (one aggregate) and returns the tier.
        assert len(later) == 1 and later[0].startswith("UPDATE member_tiers") and "FROM transactions" in later[0]

    def test_a_row_inserted_concurrently_is_upgraded_not_duplicated(
        self, session: Session, customer_id: int, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        program = use_tiers(session)
        add_purchase(session, customer_id, 6_000_000, vn(2026, 3, 1))
        session.add(MemberTier(customer_id=customer_id, tier="MEMBER", since=vn(2026, 2, 1), qualified_value=0))
        session.flush()
        # The first look misses the row (as if another purchase inserted it just after), the insert then
        # finds it taken, and the second look carries on from it.
        looks = iter([None])
        real = service.repository.note_metric
        monkeypatch.setattr(service.repository, "note_metric",
                            lambda *args: next(looks, None) or real(*args))
        change = on_purchase(session, program, customer_id, vn(2026, 3, 1))
        assert change is not None and (change.from_tier, change.to_tier) == ("MEMBER", "SILVER")
        session.commit()
        assert history(session, customer_id) == [("MEMBER", "SILVER", "upgrade")]

    def test_without_tiers_nothing_happens(self, session: Session, customer_id: int) -> None:
        add_purchase(session, customer_id, 25_000_000, vn(2026, 3, 1))
        assert on_purchase(session, program_at(session), customer_id, vn(2026, 3, 1)) is None
        assert member_tier(session, customer_id) is None
        assert session.scalar(select(func.count()).select_from(MemberTier)) == 0


class TestReturns:
    def test_a_return_lowers_progress_but_downgrades_only_at_the_review(self, session: Session,
                                                                        customer_id: int) -> None:
        from loyalty.transactions.schemas import ReturnIn
        from loyalty.transactions.service import record_return
        from tests.factories import make_purchase

        use_tiers(session, every="month", grace_days=10)
        when = datetime.now(UTC) - timedelta(hours=1)
        make_purchase(session, customer_id, 6_000_000, occurred_at=when)
        on_purchase(session, program_at(session), customer_id, when)
        session.commit()
        assert member_tier(session, customer_id) == "SILVER"
        purchase_id = session.scalar(select(func.max(service.repository.T.id)))
        assert purchase_id is not None
        record_return(session, purchase_id, ReturnIn(transaction_id="R-1", occurred_at=when + timedelta(minutes=5),
                                                     amount=2_000_000), actor="test")
        session.commit()
        assert member_tier(session, customer_id) == "SILVER"
        now = datetime.now(UTC)
        mine = progress(session, program_at(session), customer_id, now)
        assert (mine.tier, mine.value, mine.keeps_tier, mine.missing) == ("SILVER", 4_000_000, False, 16_000_000)
        # The next monthly review after grace sees it.
        review_day = mine.next_review
        later = datetime(review_day.year, review_day.month, review_day.day, tzinfo=UTC) + timedelta(days=11)
        assert review(session, later) == 1
        session.commit()
        assert member_tier(session, customer_id, later) == "MEMBER"
        assert history(session, customer_id)[-1] == ("SILVER", "MEMBER", "review_downgrade")


class TestReview:
    def test_downgrade_only_after_grace_then_never_twice(self, session: Session, customer_id: int) -> None:
        use_tiers(session, grace_days=30)
        buy(session, customer_id, 25_000_000, vn(2025, 3, 1))
        buy(session, customer_id, 6_000_000, vn(2026, 3, 1))  # 2026 qualifies for SILVER only
        assert review(session, vn(2026, 6, 1)) == 0  # the 2026 review looked at 2025: GOLD
        assert review(session, vn(2027, 1, 30, 23, 59)) == 0  # within grace
        session.commit()
        assert member_tier(session, customer_id, vn(2027, 1, 30, 23, 59)) == "GOLD"
        assert review(session, vn(2027, 1, 31, 0, 0)) == 1
        session.commit()
        row = tier_row(session, customer_id)
        assert row is not None and row.tier == "SILVER" and row.qualified_value == 6_000_000
        assert row.reviewed_at == vn(2027, 1, 1, 0, 0)
        assert review(session, vn(2027, 2, 15)) == 0
        session.commit()
        assert history(session, customer_id) == [("MEMBER", "GOLD", "upgrade"), ("GOLD", "SILVER", "review_downgrade")]

    def test_qualifying_again_during_grace_keeps_the_tier(self, session: Session, customer_id: int) -> None:
        use_tiers(session, grace_days=30)
        buy(session, customer_id, 6_000_000, vn(2025, 3, 1))
        buy(session, customer_id, 5_000_000, vn(2027, 1, 20))
        assert review(session, vn(2027, 2, 1)) == 0
        assert tier_row(session, customer_id).tier == "SILVER"  # type: ignore[union-attr]

    def test_rolling_window_monthly_review(self, session: Session, customer_id: int) -> None:
        use_tiers(session, window={"rolling_months": 12}, every="month", grace_days=0)
        buy(session, customer_id, 5_000_000, vn(2026, 1, 10))
        assert review(session, vn(2027, 1, 1, 0, 0)) == 0  # window [2026-01-01, 2027-01-01) has it
        assert review(session, vn(2027, 2, 1, 0, 0)) == 1  # [2026-02-01, 2027-02-01) does not
        assert tier_row(session, customer_id).tier == "MEMBER"  # type: ignore[union-attr]

    def test_grace_longer_than_a_month_still_downgrades(self, session: Session, customer_id: int) -> None:
        use_tiers(session, window={"rolling_months": 1}, every="month", grace_days=30)
        buy(session, customer_id, 5_000_000, vn(2026, 9, 10))
        assert review(session, vn(2026, 11, 5)) == 0  # the 1 Oct review (grace over) saw September: kept
        assert review(session, vn(2026, 11, 30, 23)) == 0  # the 1 Nov review is still in its grace
        assert review(session, vn(2026, 12, 1, 0, 0)) == 1  # now it is not: October had nothing
        session.commit()
        assert history(session, customer_id)[-1] == ("SILVER", "MEMBER", "review_downgrade")

    def test_a_tier_reached_after_the_review_day_waits_for_the_next_review(self, session: Session,
                                                                           customer_id: int) -> None:
        use_tiers(session, window={"rolling_months": 1}, every="year", grace_days=30)
        buy(session, customer_id, 5_000_000, vn(2027, 1, 5))
        assert review(session, vn(2027, 3, 1)) == 0  # current window is empty, but SILVER came after 1 Jan
        assert tier_row(session, customer_id).tier == "SILVER"  # type: ignore[union-attr]


class TestOverride:
    def test_override_wins_until_its_end_then_ends_in_the_history(self, session: Session, customer_id: int) -> None:
        use_tiers(session)
        buy(session, customer_id, 6_000_000, vn(2026, 3, 1))
        set_override(session, customer_id, tier="GOLD", reason="VIP guest of the owner", until=vn(2026, 6, 1),
                     actor="admin:1", now=vn(2026, 4, 1))
        session.commit()
        assert member_tier(session, customer_id, vn(2026, 5, 31)) == "GOLD"
        assert member_tier(session, customer_id, vn(2026, 6, 1)) == "SILVER"  # ended, even before the job
        assert review(session, vn(2026, 5, 31)) == 0
        assert review(session, vn(2026, 6, 2)) == 1
        assert review(session, vn(2026, 6, 3)) == 0
        session.commit()
        assert history(session, customer_id) == [("MEMBER", "SILVER", "upgrade"), ("SILVER", "GOLD", "override"),
                                                 ("GOLD", "SILVER", "override_end")]
        notes = list(session.scalars(select(TierHistory.note).where(TierHistory.customer_id == customer_id)))
        assert notes[1] is not None and notes[1].startswith("VIP guest of the owner (until 2026-06-01")

    def test_an_admin_ends_it_early_once(self, session: Session, customer_id: int) -> None:
        use_tiers(session)
        set_override(session, customer_id, tier="SILVER", reason="complaint goodwill", until=vn(2026, 12, 31),
                     actor="admin:1", now=vn(2026, 4, 1))
        end_override(session, customer_id, actor="admin:1", now=vn(2026, 4, 2))
        session.commit()
        assert member_tier(session, customer_id, vn(2026, 4, 3)) == "MEMBER"
        with pytest.raises(Conflict):
            end_override(session, customer_id, actor="admin:1", now=vn(2026, 4, 3))
        assert history(session, customer_id) == [("MEMBER", "SILVER", "override"), ("SILVER", "MEMBER", "override_end")]

    @pytest.mark.parametrize(("tier", "reason", "until", "error"), [
        ("PLATINUM", "x", vn(2026, 12, 1), ValidationFailed),
        ("GOLD", "  ", vn(2026, 12, 1), ValidationFailed),
        ("GOLD", "x", vn(2026, 4, 1), ValidationFailed),
    ])
    def test_bad_input_writes_nothing(self, session: Session, customer_id: int, tier: str, reason: str,
                                      until: datetime, error: type[Exception]) -> None:
        use_tiers(session)
        with pytest.raises(error):
            set_override(session, customer_id, tier=tier, reason=reason, until=until, actor="a", now=vn(2026, 4, 1))
        assert session.scalar(select(func.count()).select_from(MemberTier)) == 0
        assert session.scalar(select(func.count()).select_from(TierHistory)) == 0

    def test_unknown_customer_and_no_tiers(self, session: Session, customer_id: int) -> None:
        with pytest.raises(NotFound, match="no tiers"):
            set_override(session, customer_id, tier="GOLD", reason="x", until=vn(2026, 12, 1), actor="a",
                         now=vn(2026, 4, 1))
        use_tiers(session)
        with pytest.raises(NotFound, match="customer"):
            set_override(session, 999_999, tier="GOLD", reason="x", until=vn(2026, 12, 1), actor="a",
                         now=vn(2026, 4, 1))


class TestProgress:
    def test_calendar_year_missing_amount_by_december_31(self, session: Session, customer_id: int) -> None:
        program = use_tiers(session)
        buy(session, customer_id, 2_500_000, vn(2026, 2, 1))
        buy(session, customer_id, 1_250_000, vn(2026, 8, 1))
        mine = progress(session, program, customer_id, vn(2026, 11, 23))
        assert (mine.tier, mine.value, mine.missing, mine.deadline) == ("MEMBER", 3_750_000, 1_250_000,
                                                                        date(2026, 12, 31))
        assert mine.next_tier is not None and mine.next_tier.code == "SILVER"
        assert (mine.window_start, mine.next_review, mine.keeps_tier) == (date(2026, 1, 1), date(2027, 1, 1), True)

    def test_rolling_deadline_is_the_day_before_the_oldest_purchase_leaves(self, session: Session,
                                                                         customer_id: int) -> None:
        program = use_tiers(session, window={"rolling_months": 12}, every="quarter")
        buy(session, customer_id, 100_000, vn(2025, 11, 1), returned=100_000)  # fully returned: not counted
        buy(session, customer_id, 2_000_000, vn(2026, 2, 15))
        buy(session, customer_id, 1_000_000, vn(2026, 6, 1))
        mine = progress(session, program, customer_id, vn(2026, 11, 23))
        assert (mine.value, mine.missing, mine.deadline) == (3_000_000, 2_000_000, date(2027, 2, 14))
        assert (mine.window_start, mine.next_review) == (date(2025, 11, 24), date(2027, 1, 1))

    def test_nothing_counted_yet_and_the_top_tier(self, session: Session, customer_id: int) -> None:
        program = use_tiers(session, window={"rolling_months": 12})
        mine = progress(session, program, customer_id, vn(2026, 11, 23))
        assert (mine.tier, mine.value, mine.missing, mine.deadline, mine.since) == ("MEMBER", 0, 5_000_000, None,
                                                                                    None)
        buy(session, customer_id, 30_000_000, vn(2026, 11, 1))
        mine = progress(session, program, customer_id, vn(2026, 11, 23))
        assert (mine.tier, mine.next_tier, mine.missing) == ("GOLD", None, 0)

    def test_points_and_override(self, session: Session, customer_id: int) -> None:
        program = use_tiers(session, metric="points_earned")
        buy(session, customer_id, 1, vn(2026, 3, 1), points=1_200)
        set_override(session, customer_id, tier="GOLD", reason="press", until=vn(2026, 12, 1), actor="a",
                     now=vn(2026, 4, 1))
        mine = progress(session, program, customer_id, vn(2026, 4, 2))
        assert (mine.tier, mine.earned_tier, mine.override_tier, mine.value) == ("GOLD", "SILVER", "GOLD", 1_200)
        assert mine.next_tier is None


class TestCounts:
    def test_every_customer_counts_in_the_tier_in_force(self, session: Session, customer_id: int) -> None:
        program = use_tiers(session)
        silver, gold, overridden = (make_customer(session).id for _ in range(3))
        buy(session, silver, 5_000_000, vn(2026, 3, 1))
        buy(session, gold, 20_000_000, vn(2026, 3, 1))
        set_override(session, overridden, tier="GOLD", reason="x", until=vn(2026, 5, 1), actor="a",
                     now=vn(2026, 4, 1))
        counted = {level.code: n for level, n in service.counts(session, program, vn(2026, 4, 2))}
        assert counted == {"MEMBER": 1, "SILVER": 1, "GOLD": 2}
        counted = {level.code: n for level, n in service.counts(session, program, vn(2026, 5, 2))}
        assert counted == {"MEMBER": 2, "SILVER": 1, "GOLD": 1}
