"""The loyalty programme: enrolment, the points ledger, rewards, tiers and expiry.

The domain's public surface, what other domains, the API, the pages and the CLI call; the
work is done in the modules it re-exports, one per part of the programme:

- rules (the rules in force), configure (new rules), members, ledger (movements on request,
  statements), earning (orders), tiers, jobs (the daily work), merges (customers merged
  and unmerged), rewards, reports,
- clock (the clock postings use, and month arithmetic) and posting (how points move, at
  the bottom: every other module posts through it).
"""

from patron.loyalty.clock import add_months, replaying
from patron.loyalty.configure import configure, configure_from_file
from patron.loyalty.earning import SyncResult, has_active_members, points_for_order, sync_orders
from patron.loyalty.jobs import ExpiryResult, JobsResult, birthday_bonuses, expire, run_jobs
from patron.loyalty.ledger import (
    BONUS_REASONS,
    REVERSIBLE,
    StatementLine,
    adjust,
    award_bonus,
    balance_after,
    check_books,
    consume_voucher,
    get_transaction,
    get_voucher,
    redeem,
    reverse,
    statement,
    transaction_of_member,
)
from patron.loyalty.members import (
    Enrolment,
    MemberSummary,
    balances_of,
    close_member,
    customers_of,
    enrol,
    enrol_many,
    expiring,
    get_member,
    list_members,
    member_by_card,
    member_for_customer,
    member_vouchers,
    summary,
)
from patron.loyalty.merges import on_customers_merged, on_customers_unmerged
from patron.loyalty.posting import Kind
from patron.loyalty.reports import ProgrammeReport, report
from patron.loyalty.rewards import (
    create_reward,
    get_reward,
    list_rewards,
    reward_by_code,
    reward_product_sku,
    save_reward,
    update_reward,
)
from patron.loyalty.rules import config_history, current_config
from patron.loyalty.tiers import TierReview, review_tiers

__all__ = [
    "BONUS_REASONS",
    "REVERSIBLE",
    "Enrolment",
    "ExpiryResult",
    "JobsResult",
    "Kind",
    "MemberSummary",
    "ProgrammeReport",
    "StatementLine",
    "SyncResult",
    "TierReview",
    "add_months",
    "adjust",
    "award_bonus",
    "balance_after",
    "balances_of",
    "birthday_bonuses",
    "check_books",
    "close_member",
    "config_history",
    "configure",
    "configure_from_file",
    "consume_voucher",
    "create_reward",
    "current_config",
    "customers_of",
    "enrol",
    "enrol_many",
    "expire",
    "expiring",
    "get_member",
    "get_reward",
    "get_transaction",
    "get_voucher",
    "has_active_members",
    "list_members",
    "list_rewards",
    "member_by_card",
    "member_for_customer",
    "member_vouchers",
    "on_customers_merged",
    "on_customers_unmerged",
    "points_for_order",
    "redeem",
    "replaying",
    "report",
    "reverse",
    "review_tiers",
    "reward_by_code",
    "reward_product_sku",
    "run_jobs",
    "save_reward",
    "statement",
    "summary",
    "sync_orders",
    "transaction_of_member",
    "update_reward",
]
