"""The program file's `referrals:` section and the referral API's shapes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from loyalty.bonuses.schemas import Gift, _Strict


class ReferralProgram(_Strict):
    """The referrer is rewarded when the referred member makes a first purchase of at least
    `min_spend`; over `max_rewards_per_month` (per referrer, business month) the referral is
    recorded as capped, not rewarded. The new member gets `welcome` on that same purchase."""

    min_spend: int = Field(default=0, ge=0, description="the first qualifying purchase's amount")
    referrer: Gift
    welcome: Gift | None = None
    max_rewards_per_month: int = Field(default=10, ge=1, le=10_000)

    def gifts(self) -> list[tuple[str, Gift]]:
        named = [("referrals.referrer", self.referrer), ("referrals.welcome", self.welcome)]
        return [(path, gift) for path, gift in named if gift is not None]


class ReferralCounts(BaseModel):
    referred: int = Field(description="members who enrolled with this member's code")
    pending: int = Field(description="enrolled, no qualifying purchase yet")
    rewarded: int
    capped: int = Field(description="qualified over the monthly cap: recorded, not rewarded")


class ReferralOut(BaseModel):
    customer_id: int
    code: str
    share_link: str
    referred_by: int | None = Field(description="the member who referred this one")
    advocate: bool = Field(description="at least one referral of this member has qualified")
    counts: ReferralCounts


class ReferredByIn(BaseModel):
    model_config = {"extra": "forbid"}
    referral_code: str = Field(min_length=4, max_length=20)
