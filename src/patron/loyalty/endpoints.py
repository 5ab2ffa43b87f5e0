"""REST API for the loyalty programme: rules, members and cards, the points ledger, rewards, vouchers, reports.

Movements of points (bonuses, adjustments, redemptions, reversals) honour the
`Idempotency-Key` header in the ledger itself: the key becomes the transaction's
idempotency key (scoped to the caller), so a retry returns the stored transaction or
voucher, and a key reused for another request is refused (422).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response

from patron import idempotency
from patron.api.deps import LoyaltyManager, LoyaltyOperator, PathId, Reader, SessionDep
from patron.errors import InvalidInput, NotFound
from patron.loyalty import cards, member_import, service
from patron.loyalty.config import ProgrammeConfig, RewardConfig
from patron.loyalty.schemas import (
    AdjustmentCreate,
    BonusCreate,
    BooksCheck,
    ConfigVersion,
    JobsRun,
    Member,
    MemberCreate,
    MemberDetail,
    MemberImportResult,
    MemberPage,
    ProgrammeReport,
    Redemption,
    RedemptionCreate,
    ReversalCreate,
    Reward,
    RewardList,
    RewardUpdate,
    Statement,
    TierReviewCounts,
    Transaction,
    Voucher,
    VoucherConsume,
)
from patron.models.enums import MemberStatus
from patron.users.schemas import Principal

router = APIRouter(prefix="/loyalty", tags=["loyalty"])
Limit = Annotated[int, Query(ge=1, le=500)]
CardNumber = Annotated[str, Path(min_length=1, max_length=40, description="16 digits; spaces are ignored.")]
VoucherCode = Annotated[str, Path(min_length=1, max_length=40, description="As printed, e.g. K7QD-MX3T-W9AC.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        min_length=1,
        max_length=idempotency.MAX_KEY_LENGTH,
        description="Optional, at most 200 characters. Retrying with the same key and the same body returns the "
        "stored result (the same transaction or voucher) without moving points again; the same key with a "
        "different body is refused with 422. Keys are per caller.",
    ),
]
SVG_RESPONSE = {200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}, "description": "The card"}}


def _by(principal: Principal) -> str:
    return f"api:{principal.email}"[:200]  # the ledger's created_by column holds 200 characters


def _ledger_key(principal: Principal, header: str | None) -> str:
    # Scoped to the caller, so one client's keys never collide with another's or with the
    # keys the programme makes itself ("order:17:earn").
    return f"api:{principal.user_id}:{header if header is not None else 'auto-' + uuid.uuid4().hex}"


def _detail(session, member_id: int) -> MemberDetail:
    s = service.summary(session, member_id=member_id)
    return MemberDetail.of_summary(s, service.customers_of(session, [s.member]))


def _transaction(session, tx) -> Transaction:
    return Transaction.of(tx, service.balance_after(session, tx))


def _voucher(session, voucher, schema=Voucher, **extra):
    tx = service.get_transaction(session, voucher.transaction_id)
    return schema.of(
        voucher,
        service.get_reward(session, voucher.reward_id),
        service.get_member(session, voucher.member_id),
        tx,
        **extra,
    )


# --- configuration ---------------------------------------------------------------------------


@router.get("/config", response_model=ProgrammeConfig, summary="The programme's rules in force")
def get_config(session: SessionDep, _: Reader):
    return service.current_config(session)[1]


@router.put(
    "/config",
    response_model=ProgrammeConfig,
    summary="Replace the rules (stored as a new version; overlapping tiers and other bad rules are refused)",
)
def put_config(body: ProgrammeConfig, session: SessionDep, principal: LoyaltyManager):
    service.configure(session, config=body, by=_by(principal))
    return service.current_config(session)[1]


@router.get(
    "/config/versions", response_model=list[ConfigVersion], summary="Earlier versions of the rules, newest first"
)
def config_versions(session: SessionDep, _: Reader, limit: Annotated[int, Query(ge=1, le=200)] = 20):
    return [
        ConfigVersion(id=v.id, created_at=v.created_at, created_by=v.created_by, config=v.config)
        for v in service.config_history(session, limit=limit)
    ]


# --- members ---------------------------------------------------------------------------------


@router.post("/members", response_model=MemberDetail, status_code=201, summary="Enrol a customer (409 if a member)")
def enrol(body: MemberCreate, session: SessionDep, principal: LoyaltyOperator):
    member = service.enrol(session, customer_id=body.customer_id, via="api", by=_by(principal))
    return _detail(session, member.id)


MAX_CSV_BYTES = 50 * 1024 * 1024


@router.post(
    "/members.csv",
    response_model=MemberImportResult,
    status_code=201,
    summary="Enrol members from a CSV (cards, tiers and opening balances carried over); any bad row refuses the file",
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}},
)
async def import_members(request: Request, session: SessionDep, principal: LoyaltyManager, dry_run: bool = False):
    raw = await request.body()
    if len(raw) > MAX_CSV_BYTES:
        raise InvalidInput(f"the CSV is larger than {MAX_CSV_BYTES // 1024 // 1024} MB", detail={"field": "file"})
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the CSV is not UTF-8 (byte {exc.start})", detail={"field": "file"}) from None
    result = member_import.import_members(session, text=text, by=_by(principal), dry_run=dry_run)
    return MemberImportResult(enrolled=result.enrolled, points=result.points, member_ids=result.member_ids)


@router.get("/members", response_model=MemberPage, summary="List and search members, newest first")
def list_members(
    session: SessionDep,
    _: Reader,
    tier: Annotated[str | None, Query(max_length=50)] = None,
    status: MemberStatus | None = None,
    q: Annotated[str | None, Query(max_length=200, description="A card number, or part of an email or name.")] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
):
    page = service.list_members(session, tier=tier, status=status, q=q, limit=limit, cursor=cursor)
    customers = service.customers_of(session, page.items)
    return MemberPage(items=[Member.of(m, customers) for m in page.items], next_cursor=page.next_cursor)


@router.get(
    "/members/by-card/{card_number}", response_model=MemberDetail, summary="The member holding a card (till lookup)"
)
def member_by_card(card_number: CardNumber, session: SessionDep, _: Reader):
    return _detail(session, service.member_by_card(session, card_number).id)


@router.get("/customers/{customer_id}/member", response_model=MemberDetail, summary="A customer's membership")
def member_of_customer(customer_id: PathId, session: SessionDep, _: Reader):
    member = service.member_for_customer(session, customer_id)
    if member is None:
        raise NotFound(f"customer {customer_id} is not a member", detail={"field": "customer_id"})
    return _detail(session, member.id)


@router.get(
    "/members/{member_id}",
    response_model=MemberDetail,
    summary="A member: balance, tier and benefits, progress to the next tier, points about to expire",
)
def get_member(member_id: PathId, session: SessionDep, _: Reader):
    return _detail(session, member_id)


@router.post(
    "/members/{member_id}/close",
    response_model=MemberDetail,
    summary="Leave the programme: remaining points are forfeited, the statement is kept",
)
def close_member(member_id: PathId, session: SessionDep, principal: LoyaltyManager):
    service.close_member(session, member_id=member_id, by=_by(principal))
    return _detail(session, member_id)


@router.get(
    "/members/{member_id}/statement",
    response_model=Statement,
    summary="The member's transactions, newest first, with the balance after each",
)
def statement(
    member_id: PathId,
    session: SessionDep,
    _: Reader,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
):
    page = service.statement(session, member_id=member_id, limit=limit, cursor=cursor)
    return Statement.of(member_id, page.items, page.next_cursor)


@router.get(
    "/members/{member_id}/card.svg",
    response_class=Response,
    responses=SVG_RESPONSE,
    summary="The card number as a barcode (Code 128) or a QR code, in SVG",
)
def card_image(member_id: PathId, session: SessionDep, _: Reader, kind: Literal["barcode", "qr"] = "barcode"):
    number = service.get_member(session, member_id).card_number
    draw = cards.qr_svg if kind == "qr" else cards.barcode_svg
    return Response(draw(number), media_type="image/svg+xml")


# --- movements -------------------------------------------------------------------------------


@router.post(
    "/members/{member_id}/bonuses",
    response_model=Transaction,
    status_code=201,
    summary="Give a bonus: birthday, review, survey (the programme's amount) or goodwill (the points given)",
)
def award_bonus(
    member_id: PathId,
    body: BonusCreate,
    session: SessionDep,
    principal: LoyaltyOperator,
    idempotency_key: IdempotencyKey = None,
):
    tx = service.award_bonus(
        session,
        member_id=member_id,
        reason=body.reason,
        points=body.points,
        reference=body.reference,
        memo=body.memo,
        key=_ledger_key(principal, idempotency_key),
        by=_by(principal),
    )
    return _transaction(session, tx)


@router.post(
    "/members/{member_id}/adjustments",
    response_model=Transaction,
    status_code=201,
    summary="Correct a balance: credit (points > 0) or debit (points < 0); never below zero",
)
def adjust(
    member_id: PathId,
    body: AdjustmentCreate,
    session: SessionDep,
    principal: LoyaltyManager,
    idempotency_key: IdempotencyKey = None,
):
    tx = service.adjust(
        session,
        member_id=member_id,
        points=body.points,
        reason=body.reason,
        key=_ledger_key(principal, idempotency_key),
        by=_by(principal),
    )
    return _transaction(session, tx)


@router.post(
    "/members/{member_id}/redemptions",
    response_model=Redemption,
    status_code=201,
    summary="Spend points on a reward; returns its voucher (409 with the balance when points are short)",
)
def redeem(
    member_id: PathId,
    body: RedemptionCreate,
    session: SessionDep,
    principal: LoyaltyOperator,
    idempotency_key: IdempotencyKey = None,
):
    reward_id = body.reward_id if body.reward_id is not None else service.reward_by_code(session, body.reward_code).id
    voucher = service.redeem(
        session,
        member_id=member_id,
        reward_id=reward_id,
        key=_ledger_key(principal, idempotency_key),
        by=_by(principal),
    )
    tx = service.get_transaction(session, voucher.transaction_id)
    return _voucher(session, voucher, Redemption, balance=service.balance_after(session, tx))


@router.post(
    "/transactions/{transaction_id}/reversal",
    response_model=Transaction,
    status_code=201,
    summary="Undo a transaction with one whose entries are its entries negated",
)
def reverse(
    transaction_id: PathId,
    body: ReversalCreate,
    session: SessionDep,
    principal: LoyaltyManager,
    idempotency_key: IdempotencyKey = None,
):
    tx = service.reverse(
        session,
        transaction_id=transaction_id,
        reason=body.reason,
        key=_ledger_key(principal, idempotency_key),
        by=_by(principal),
    )
    return _transaction(session, tx)


# --- rewards ---------------------------------------------------------------------------------


@router.get("/rewards", response_model=RewardList, summary="The rewards catalogue")
def list_rewards(session: SessionDep, _: Reader, active_only: bool = False):
    return RewardList(items=service.list_rewards(session, active_only=active_only))


@router.post("/rewards", response_model=Reward, status_code=201, summary="Add a reward (409 if its code is taken)")
def create_reward(body: RewardConfig, session: SessionDep, _: LoyaltyManager):
    return service.create_reward(session, data=body)


@router.get("/rewards/{reward_id}", response_model=Reward, summary="Read a reward")
def get_reward(reward_id: PathId, session: SessionDep, _: Reader):
    return service.get_reward(session, reward_id)


@router.put("/rewards/{reward_id}", response_model=Reward, summary="Replace a reward")
def replace_reward(reward_id: PathId, body: RewardConfig, session: SessionDep, _: LoyaltyManager):
    return service.save_reward(session, data=body, reward_id=reward_id)


@router.patch("/rewards/{reward_id}", response_model=Reward, summary="Change some of a reward's fields")
def update_reward(reward_id: PathId, body: RewardUpdate, session: SessionDep, _: LoyaltyManager):
    return service.update_reward(session, reward_id=reward_id, changes=body.model_dump(exclude_unset=True))


# --- vouchers --------------------------------------------------------------------------------


@router.get("/vouchers/{code}", response_model=Voucher, summary="Check a voucher without using it")
def get_voucher(code: VoucherCode, session: SessionDep, _: Reader):
    return _voucher(session, service.get_voucher(session, code))


@router.post(
    "/vouchers/{code}/consume",
    response_model=Voucher,
    summary="Use a voucher: once, before it expires (409 otherwise)",
)
def consume_voucher(
    code: VoucherCode, session: SessionDep, principal: LoyaltyOperator, body: VoucherConsume | None = None
):
    voucher = service.consume_voucher(session, code=code, by=_by(principal), reference=body.reference if body else None)
    return _voucher(session, voucher)


# --- reports and jobs ------------------------------------------------------------------------


@router.get("/report", response_model=ProgrammeReport, summary="Outstanding points and liability, movements, tiers")
def report(session: SessionDep, _: Reader, months: Annotated[int, Query(ge=1, le=120)] = 12):
    return ProgrammeReport.of(service.report(session, months=months), months)


@router.get("/check", response_model=BooksCheck, summary="Do the books balance? Every problem found")
def check(session: SessionDep, _: Reader):
    problems = service.check_books(session)
    return BooksCheck(balanced=not problems, problems=problems)


@router.post("/jobs/run", response_model=JobsRun, summary="Run the daily jobs now: expiry, tier reviews, birthdays")
def run_jobs(session: SessionDep, _: LoyaltyManager):
    result = service.run_jobs(session)
    return JobsRun(
        expired_members=result.expired.members,
        expired_points=result.expired.points,
        tiers=TierReviewCounts(**vars(result.tiers)),
        birthdays=result.birthdays,
    )
