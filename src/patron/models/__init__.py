"""Every ORM table; importing this module registers them all on Base.metadata."""

from patron.models.analytics import AnalysisRun, CustomerInsight, CustomerScore
from patron.models.base import Base
from patron.models.consent import ConsentEvent
from patron.models.customer import Customer, CustomerExternalId, CustomerMerge
from patron.models.imports import IdempotencyKey, ImportRowError, ImportRun
from patron.models.interaction import Interaction
from patron.models.loyalty import (
    LoyaltyAccount,
    LoyaltyConfigVersion,
    LoyaltyEntry,
    LoyaltyMember,
    LoyaltyMergeMove,
    LoyaltyReward,
    LoyaltyTierChange,
    LoyaltyTransaction,
    LoyaltyVoucher,
)
from patron.models.order import Order, OrderLine, OrderReturn
from patron.models.outbox import OutboxTask, ScheduledJob
from patron.models.product import Product
from patron.models.segment import Segment, SegmentMember, SegmentSnapshot, SegmentSnapshotMember
from patron.models.store import Store
from patron.models.user import ApiToken, User
from patron.models.webhooks import WebhookDelivery, WebhookSubscription

__all__ = [
    "AnalysisRun",
    "ApiToken",
    "Base",
    "ConsentEvent",
    "Customer",
    "CustomerExternalId",
    "CustomerInsight",
    "CustomerMerge",
    "CustomerScore",
    "IdempotencyKey",
    "ImportRowError",
    "ImportRun",
    "Interaction",
    "LoyaltyAccount",
    "LoyaltyConfigVersion",
    "LoyaltyEntry",
    "LoyaltyMember",
    "LoyaltyMergeMove",
    "LoyaltyReward",
    "LoyaltyTierChange",
    "LoyaltyTransaction",
    "LoyaltyVoucher",
    "Order",
    "OrderLine",
    "OrderReturn",
    "OutboxTask",
    "Product",
    "ScheduledJob",
    "Segment",
    "SegmentMember",
    "SegmentSnapshot",
    "SegmentSnapshotMember",
    "Store",
    "User",
    "WebhookDelivery",
    "WebhookSubscription",
]
