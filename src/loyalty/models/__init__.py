"""All ORM tables, imported in one place so Alembic and create_all see every one."""

from loyalty.models.auth import ApiKey, IdempotencyRecord
from loyalty.models.base import Base
from loyalty.models.bonuses import MemberBonus  # noqa: F401  (registers the bonus and referral tables)
from loyalty.models.customers import Customer, CustomerIdentity, Store
from loyalty.models.goals import MemberBadge  # noqa: F401  (registers the badges table)
from loyalty.models.imports import ImportRun  # noqa: F401  (registers the import history tables)
from loyalty.models.ledger import Hold, LedgerEntry, LedgerPosting, LotAllocation, MemberBalance, PointLot
from loyalty.models.portal import PortalLoginCode  # noqa: F401  (registers the member portal tables)
from loyalty.models.programs import ProgramVersion
from loyalty.models.rewards import Reward, Voucher  # noqa: F401  (registers the rewards tables)
from loyalty.models.rule_caps import RuleCapCounter  # noqa: F401  (registers the rule cap counters)
from loyalty.models.service import StaffMember  # noqa: F401  (registers the service tables)
from loyalty.models.stamps import MemberStampCard  # noqa: F401  (registers the stamp card tables)
from loyalty.models.tiers import MemberTier  # noqa: F401  (registers the tier tables)
from loyalty.models.transactions import Transaction, TransactionInstantReward, TransactionLine

__all__ = [
    "ApiKey",
    "Base",
    "Customer",
    "CustomerIdentity",
    "Hold",
    "IdempotencyRecord",
    "LedgerEntry",
    "LedgerPosting",
    "LotAllocation",
    "MemberBalance",
    "PointLot",
    "ProgramVersion",
    "Store",
    "Transaction",
    "TransactionInstantReward",
    "TransactionLine",
]
