"""Loyalty pages: the programme's report, members and their cards and statements, the actions
an agent takes for a member (redeem, bonus, adjust, reverse, close), rewards, the rules and
a voucher till."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlencode

import yaml
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from patron.api.deps import PathId, QueryId, SessionDep
from patron.errors import InvalidInput, NotFound, PatronError
from patron.loyalty import cards, member_import, service
from patron.loyalty.config import ProgrammeConfig, RewardConfig
from patron.models import LoyaltyMember, LoyaltyReward
from patron.models.enums import MemberStatus
from patron.users.permissions import Permission
from patron.users.schemas import Principal
from patron.validation import MAX_ID, error_list, load_yaml
from patron.web.auth import PageReader, require_page
from patron.web.forms import FormDep, PageResponse, field_errors, text
from patron.web.templating import SECURITY_HEADERS, render

router = APIRouter(prefix="/loyalty", include_in_schema=False)

PageLoyaltyOperator = Annotated[Principal, Depends(require_page(Permission.operate_loyalty))]
PageLoyaltyManager = Annotated[Principal, Depends(require_page(Permission.manage_loyalty))]
NOTICE_KEY = "loyalty_notice"
MEMBERS_PER_PAGE = 25
MAX_MEMBER_FILE_BYTES = 50 * 1024 * 1024
STATEMENT_PER_PAGE = 25
MAX_POINTS = 10_000_000
RULES_MAX_CHARS = 100_000
KIND_LABELS = {
    "enrol": "Sign-up bonus",
    "earn": "Earned",
    "bonus": "Bonus",
    "adjust": "Adjustment",
    "redeem": "Redeemed",
    "clawback": "Clawback",
    "expire": "Expired",
    "transfer": "Transfer",
    "reversal": "Reversal",
}
REWARD_KINDS = (
    ("voucher", "Voucher (money off)"),
    ("free_product", "Free product"),
    ("free_shipping", "Free shipping"),
)
BONUS_REASONS = (("goodwill", "Goodwill (give the points)"), ("birthday", "Birthday"), ("review", "Review"),
                 ("survey", "Survey"))  # fmt: skip
Q = Annotated[str, Query(max_length=200)]


def _notice(request: Request) -> str | None:
    notice = request.session.pop(NOTICE_KEY, None)
    return notice if isinstance(notice, str) else None


def _by(principal: Principal) -> str:
    return f"web:{principal.email}"


def _key() -> str:
    # Rendered into each action form: a double-submitted form replays, it does not post twice.
    return f"web:{secrets.token_urlsafe(16)}"


def _form_key(form: FormData) -> str:
    key = text(form, "key")
    if not key or len(key) > 100:
        raise InvalidInput("the form has no valid key; reload the page and try again", detail={"field": ""})
    return key if key.startswith("web:") else f"web:{key}"


def _int(form: FormData, name: str, *, low: int, high: int, label: str, required: bool = True) -> int | None:
    raw = text(form, name).replace(",", "").replace(" ", "")
    if not raw:
        if required:
            raise InvalidInput(f"enter the {label}", detail={"field": name})
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"the {label} must be a whole number, not {raw[:30]!r}", detail={"field": name}) from None
    if not low <= value <= high:
        raise InvalidInput(f"the {label} must be between {low:,} and {high:,}", detail={"field": name})
    return value


def _name(customer: Any, member: LoyaltyMember) -> str:
    if customer is None:
        return f"Member {member.id} (customer erased)" if member.customer_id is None else f"Member {member.id}"
    name = f"{customer.first_name or ''} {customer.last_name or ''}".strip()
    return name or customer.email or f"Customer {customer.id}"


# --------------------------------------------------------------------------- overview


@router.get("", response_class=HTMLResponse)
def overview(request: Request, session: SessionDep, _: PageReader) -> HTMLResponse:
    """The programme at a glance: members, points owed and their value, movements, tiers, top earners."""
    rep = service.report(session)
    months = list(rep.by_month)
    return render(
        request,
        "loyalty/overview.html",
        {
            "title": "Loyalty",
            "active": "loyalty",
            "r": rep,
            "chart_monthly": {
                "kind": "monthly",
                "x": months,
                "earned": [rep.by_month[m]["earned"] + rep.by_month[m]["bonus"] for m in months],
                "redeemed": [rep.by_month[m]["redeemed"] for m in months],
                "expired": [rep.by_month[m]["expired"] for m in months],
            },
            "chart_tiers": {"kind": "tiers", "x": [t[0] for t in rep.tiers], "y": [t[1] for t in rep.tiers]},
            "notice": _notice(request),
        },
    )


# --------------------------------------------------------------------------- members


@router.get("/members", response_class=HTMLResponse)
def members(
    request: Request,
    session: SessionDep,
    _: PageReader,
    q: Q = "",
    tier: Annotated[str, Query(max_length=50)] = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
    customer_id: QueryId = None,
) -> HTMLResponse:
    """Members with search and a tier filter, and the enrol form."""
    values = {"customer_id": str(customer_id) if customer_id else ""}
    return _members_page(request, session, q=q, tier=tier, cursor=cursor, enrol=values)


def _members_page(
    request: Request,
    session: Session,
    *,
    q: str = "",
    tier: str = "",
    cursor: str = "",
    enrol: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    import_error: str | None = None,
    import_rows: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> HTMLResponse:
    _, config = service.current_config(session)
    error = None
    try:
        page = service.list_members(
            session, q=q.strip() or None, tier=tier or None, limit=MEMBERS_PER_PAGE, cursor=cursor or None
        )
    except PatronError as exc:  # a tampered cursor
        page, error, status = service.list_members(session, limit=MEMBERS_PER_PAGE), exc.message, exc.status
    people = service.customers_of(session, page.items)
    balances = service.balances_of(session, page.items)
    rows = [(m, people.get(m.customer_id), _name(people.get(m.customer_id), m), balances[m.id]) for m in page.items]
    query = {k: v for k, v in (("q", q), ("tier", tier)) if v}
    return render(
        request,
        "loyalty/members.html",
        {
            "title": "Loyalty members",
            "active": "loyalty",
            "rows": rows,
            "q": q,
            "tier": tier,
            "tiers": [t.name for t in config.tiers.levels],
            "next_url": f"/loyalty/members?{urlencode({**query, 'cursor': page.next_cursor})}"
            if page.next_cursor
            else None,
            "first_url": f"/loyalty/members?{urlencode(query)}" if cursor else None,
            "enrol": enrol or {"customer_id": ""},
            "errors": errors or {},
            "import_error": import_error,
            "import_rows": import_rows or [],
            "error": error,
            "notice": _notice(request),
        },
        status_code=status,
    )


@router.post("/members")
def enrol(request: Request, session: SessionDep, principal: PageLoyaltyOperator, form: FormDep) -> Response:
    """Enrol a customer: a card, the first tier and the sign-up bonus."""
    values = {"customer_id": text(form, "customer_id")}
    try:
        customer_id = _int(form, "customer_id", low=1, high=MAX_ID, label="customer id")
        member = service.enrol(session, customer_id=customer_id, via="web", by=_by(principal))
    except PatronError as exc:
        errors = {"customer_id": exc.message}
        raise PageResponse(_members_page(request, session, enrol=values, errors=errors, status=exc.status)) from None
    request.session[NOTICE_KEY] = f"Enrolled with card {member.card_number}."
    return RedirectResponse(f"/loyalty/members/{member.id}", status_code=303)


@router.post("/members/import")
async def import_members(
    request: Request, session: SessionDep, principal: PageLoyaltyManager, form: FormDep
) -> Response:
    """Enrol the members of an uploaded CSV (cards, tiers, opening balances); any bad row refuses it."""
    upload = form.get("file")
    dry_run = bool(form.get("dry_run"))
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput("choose a CSV file of members", detail={"field": "file"})
        raw = await upload.read(MAX_MEMBER_FILE_BYTES + 1)
        if len(raw) > MAX_MEMBER_FILE_BYTES:
            raise InvalidInput(
                f"the file is larger than {MAX_MEMBER_FILE_BYTES // 1024 // 1024} MB", detail={"field": "file"}
            )
        try:
            csv_text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the file is not UTF-8 text (byte {exc.start})", detail={"field": "file"}) from None
        result = member_import.import_members(session, text=csv_text, by=_by(principal), dry_run=dry_run)
    except PatronError as exc:
        rows = exc.detail.get("errors", []) if isinstance(exc.detail, dict) else []
        page = _members_page(request, session, import_error=exc.message, import_rows=rows, status=exc.status)
        raise PageResponse(page) from None
    verb = "The file is fine: it would enrol" if dry_run else "Enrolled"
    request.session[NOTICE_KEY] = f"{verb} {result.enrolled:,} member(s) with {result.points:,} opening points."
    return RedirectResponse("/loyalty/members", status_code=303)


@router.get("/customers/{customer_id}")
def customer_membership(session: SessionDep, _: PageReader, customer_id: PathId) -> Response:
    """The customer's member page, or the enrol form for them when they are not a member."""
    member = service.member_for_customer(session, customer_id)
    if member is None:
        return RedirectResponse(f"/loyalty/members?customer_id={customer_id}#enrol", status_code=303)
    return RedirectResponse(f"/loyalty/members/{member.id}", status_code=303)


# --------------------------------------------------------------------------- one member


@router.get("/members/{member_id}", response_class=HTMLResponse)
def member_page(
    request: Request,
    session: SessionDep,
    _: PageReader,
    member_id: PathId,
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> HTMLResponse:
    """The card, balance, tier and progress, points about to expire, statement, vouchers and actions."""
    return _member_page(request, session, member_id, cursor=cursor)


def _member_page(
    request: Request,
    session: Session,
    member_id: int,
    *,
    cursor: str = "",
    form: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    info = service.summary(session, member_id=member_id)
    member = info.member
    customer = service.customers_of(session, [member]).get(member.customer_id)
    page_error = None
    try:
        statement = service.statement(session, member_id=member_id, limit=STATEMENT_PER_PAGE, cursor=cursor or None)
    except PatronError as exc:
        statement = service.statement(session, member_id=member_id, limit=STATEMENT_PER_PAGE)
        page_error, status = exc.message, exc.status
    _, config = service.current_config(session)
    rank = config.tier_rank(member.tier)
    today = datetime.now(UTC).date()
    catalogue = service.list_rewards(session)
    rewards = [
        r
        for r in catalogue
        if r.is_active
        and (r.valid_from is None or r.valid_from <= today)
        and (r.valid_until is None or today <= r.valid_until)
        and (r.stock is None or r.stock > 0)
        and (not r.min_tier or rank >= config.tier_rank(r.min_tier))
    ]
    progress = None
    if info.next_tier is not None and info.next_tier.threshold > 0:
        progress = min(100, int(info.qualifying_value * 100 / info.next_tier.threshold))
    # Each form keeps its own values and errors; the one that was refused shows them.
    forms = {name: {"data": {}, "errors": {}} for name in ("redeem", "bonus", "adjust", "reverse", "close")}
    if form:
        forms[form] = {"data": values or {}, "errors": errors or {}}
    return render(
        request,
        "loyalty/member.html",
        {
            "title": _name(customer, member),
            "active": "loyalty",
            "m": member,
            "customer": customer,
            "s": info,
            "progress": progress,
            "statement": statement.items,
            "kind_labels": KIND_LABELS,
            "next_url": f"/loyalty/members/{member.id}?{urlencode({'cursor': statement.next_cursor})}#statement"
            if statement.next_cursor
            else None,
            "first_url": f"/loyalty/members/{member.id}#statement" if cursor else None,
            "vouchers": service.member_vouchers(session, member_id=member.id),
            "reward_names": {r.id: r.name for r in catalogue},
            "affordable": [r for r in rewards if r.points_cost <= info.balance],
            "unaffordable": [r for r in rewards if r.points_cost > info.balance],
            "bonus_reasons": BONUS_REASONS,
            "forms": forms,
            "key": _key(),
            "active_member": member.status == MemberStatus.active,
            "notice": _notice(request),
            "voucher_code": request.session.pop("loyalty_voucher", None),
            "error": page_error,
        },
        status_code=status,
    )


@router.get("/members/{member_id}/barcode.svg")
def barcode(session: SessionDep, _: PageReader, member_id: PathId) -> Response:
    """The card number as a Code 128 barcode."""
    member = service.get_member(session, member_id)
    return Response(cards.barcode_svg(member.card_number), media_type="image/svg+xml", headers=SECURITY_HEADERS)


@router.get("/members/{member_id}/qr.svg")
def qr(session: SessionDep, _: PageReader, member_id: PathId) -> Response:
    """The card number as a QR code."""
    member = service.get_member(session, member_id)
    return Response(cards.qr_svg(member.card_number), media_type="image/svg+xml", headers=SECURITY_HEADERS)


def _refused(request: Request, session: Session, member_id: int, form: str, values: dict, exc: PatronError):
    errors = field_errors(exc)
    # An error of no field of this form is shown at the top of the form.
    message = "; ".join(v for v in errors.values()) if errors else exc.message
    page = _member_page(request, session, member_id, form=form, values=values, errors={"": message}, status=exc.status)
    raise PageResponse(page) from None


@router.post("/members/{member_id}/redeem")
def redeem(
    request: Request, session: SessionDep, principal: PageLoyaltyOperator, form: FormDep, member_id: PathId
) -> Response:
    """Spend points on a reward; the voucher code is shown on the member page."""
    values = {"reward_id": text(form, "reward_id"), "key": text(form, "key")}
    try:
        reward_id = _int(form, "reward_id", low=1, high=MAX_ID, label="reward")
        voucher = service.redeem(
            session, member_id=member_id, reward_id=reward_id, key=_form_key(form), by=_by(principal)
        )
    except PatronError as exc:
        _refused(request, session, member_id, "redeem", values, exc)
    reward = service.get_reward(session, voucher.reward_id)
    request.session[NOTICE_KEY] = (
        f"Redeemed {reward.name} for {reward.points_cost:,} points. "
        f"Voucher {voucher.code}, valid until {voucher.expires_at:%d %b %Y}."
    )
    request.session["loyalty_voucher"] = voucher.code
    return RedirectResponse(f"/loyalty/members/{member_id}", status_code=303)


@router.post("/members/{member_id}/bonus")
def bonus(
    request: Request, session: SessionDep, principal: PageLoyaltyOperator, form: FormDep, member_id: PathId
) -> Response:
    """Points for a birthday, a review, a survey, or as goodwill."""
    values = {n: text(form, n) for n in ("reason", "points", "memo", "key")}
    try:
        points = _int(form, "points", low=1, high=MAX_POINTS, label="points", required=False)
        if len(values["memo"]) > 500:
            raise InvalidInput("the note is longer than 500 characters", detail={"field": "memo"})
        tx = service.award_bonus(
            session,
            member_id=member_id,
            reason=values["reason"] or "goodwill",
            points=points,
            memo=values["memo"],
            key=_form_key(form),
            by=_by(principal),
        )
    except PatronError as exc:
        _refused(request, session, member_id, "bonus", values, exc)
    request.session[NOTICE_KEY] = f"Gave {tx.points:,} bonus points ({tx.memo})."
    return RedirectResponse(f"/loyalty/members/{member_id}", status_code=303)


@router.post("/members/{member_id}/adjust")
def adjust(
    request: Request, session: SessionDep, principal: PageLoyaltyManager, form: FormDep, member_id: PathId
) -> Response:
    """A manager's correction: credit (positive) or debit (negative) points, with the reason."""
    values = {n: text(form, n) for n in ("points", "reason", "key")}
    try:
        points = _int(form, "points", low=-MAX_POINTS, high=MAX_POINTS, label="points")
        if len(values["reason"]) > 500:
            raise InvalidInput("the reason is longer than 500 characters", detail={"field": "reason"})
        tx = service.adjust(
            session, member_id=member_id, points=points, reason=values["reason"], key=_form_key(form), by=_by(principal)
        )
    except PatronError as exc:
        _refused(request, session, member_id, "adjust", values, exc)
    sign = "+" if tx.direction > 0 else "−"
    request.session[NOTICE_KEY] = f"Adjusted the balance by {sign}{tx.points:,} points."
    return RedirectResponse(f"/loyalty/members/{member_id}", status_code=303)


@router.post("/members/{member_id}/reverse")
def reverse(
    request: Request, session: SessionDep, principal: PageLoyaltyManager, form: FormDep, member_id: PathId
) -> Response:
    """Undo one of the member's transactions with a new one that negates it."""
    values = {n: text(form, n) for n in ("transaction_id", "reason", "key")}
    try:
        transaction_id = _int(form, "transaction_id", low=1, high=MAX_ID, label="transaction number")
        if len(values["reason"]) > 500:
            raise InvalidInput("the reason is longer than 500 characters", detail={"field": "reason"})
        if not service.transaction_of_member(session, transaction_id=transaction_id, member_id=member_id):
            raise NotFound(
                f"transaction {transaction_id} is not on this member's statement", detail={"field": "transaction_id"}
            )
        tx = service.reverse(
            session, transaction_id=transaction_id, reason=values["reason"], key=_form_key(form), by=_by(principal)
        )
    except PatronError as exc:
        _refused(request, session, member_id, "reverse", values, exc)
    request.session[NOTICE_KEY] = f"Reversed transaction #{transaction_id} (transaction #{tx.id})."
    return RedirectResponse(f"/loyalty/members/{member_id}", status_code=303)


@router.post("/members/{member_id}/close")
def close(
    request: Request, session: SessionDep, principal: PageLoyaltyManager, form: FormDep, member_id: PathId
) -> Response:
    """End the membership: the remaining points are forfeited, the statement is kept."""
    values = {"confirm": text(form, "confirm")}
    try:
        if values["confirm"] != "yes":
            raise InvalidInput("tick the box to confirm that the points are forfeited", detail={"field": "confirm"})
        service.close_member(session, member_id=member_id, by=_by(principal))
    except PatronError as exc:
        _refused(request, session, member_id, "close", values, exc)
    request.session[NOTICE_KEY] = "The membership is closed; its remaining points were forfeited."
    return RedirectResponse(f"/loyalty/members/{member_id}", status_code=303)


# --------------------------------------------------------------------------- rewards

REWARD_FIELDS = ("code", "name", "description", "kind", "points_cost", "amount", "product_sku", "stock",
                 "valid_from", "valid_until", "voucher_valid_days", "min_tier")  # fmt: skip


@router.get("/rewards", response_class=HTMLResponse)
def rewards(request: Request, session: SessionDep, _: PageReader, edit: QueryId = None) -> HTMLResponse:
    """The rewards catalogue, and the form to add one (or edit one: ?edit=ID)."""
    reward = service.get_reward(session, edit) if edit else None
    return _rewards_page(request, session, reward=reward, values=_reward_values(session, reward))


def _reward_values(session: Session, reward: LoyaltyReward | None) -> dict[str, str]:
    if reward is None:
        return {"kind": "voucher", "voucher_valid_days": "90", "is_active": "on"}
    sku = service.reward_product_sku(session, reward)
    return {
        "code": reward.code,
        "name": reward.name,
        "description": reward.description,
        "kind": reward.kind.value,
        "points_cost": str(reward.points_cost),
        "amount": "" if reward.amount is None else str(reward.amount),
        "product_sku": sku or "",
        "stock": "" if reward.stock is None else str(reward.stock),
        "valid_from": reward.valid_from.isoformat() if reward.valid_from else "",
        "valid_until": reward.valid_until.isoformat() if reward.valid_until else "",
        "voucher_valid_days": str(reward.voucher_valid_days),
        "min_tier": reward.min_tier or "",
        "is_active": "on" if reward.is_active else "",
    }


def _rewards_page(
    request: Request,
    session: Session,
    *,
    reward: LoyaltyReward | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    _, config = service.current_config(session)
    return render(
        request,
        "loyalty/rewards.html",
        {
            "title": "Rewards",
            "active": "loyalty",
            "rewards": service.list_rewards(session),
            "reward": reward,
            "values": values,
            "errors": errors or {},
            "kinds": REWARD_KINDS,
            "tiers": [(t.name, t.name) for t in config.tiers.levels],
            "currency": config.currency,
            "action": f"/loyalty/rewards/{reward.id}" if reward else "/loyalty/rewards",
            "notice": _notice(request),
        },
        status_code=status,
    )


def _reward_data(values: dict[str, str]) -> RewardConfig:
    raw: dict[str, Any] = {k: (v or None) for k, v in values.items() if k in REWARD_FIELDS}
    raw["description"] = values.get("description", "")
    raw["is_active"] = values.get("is_active") == "on"
    if raw.get("voucher_valid_days") is None:
        raw.pop("voucher_valid_days")
    return RewardConfig.model_validate(raw)


def _save_reward(request: Request, session: Session, form: FormData, reward: LoyaltyReward | None) -> Response:
    values = {name: text(form, name) for name in REWARD_FIELDS}
    values["description"] = (form.get("description") or "").strip() if isinstance(form.get("description"), str) else ""
    values["is_active"] = "on" if form.get("is_active") else ""
    try:
        data = _reward_data(values)
        saved = service.save_reward(session, data=data, reward_id=reward.id if reward else None)
    except (ValidationError, PatronError) as exc:
        errors = field_errors(exc)
        errors = {(k if k in REWARD_FIELDS else ""): v for k, v in errors.items()}
        status = exc.status if isinstance(exc, PatronError) else 422
        page = _rewards_page(request, session, reward=reward, values=values, errors=errors, status=status)
        raise PageResponse(page) from None
    request.session[NOTICE_KEY] = f"Saved the reward {saved.name} ({saved.code})."
    return RedirectResponse("/loyalty/rewards", status_code=303)


@router.post("/rewards")
def create_reward(request: Request, session: SessionDep, _: PageLoyaltyManager, form: FormDep) -> Response:
    """Add a reward to the catalogue."""
    return _save_reward(request, session, form, None)


@router.post("/rewards/{reward_id}")
def update_reward(
    request: Request, session: SessionDep, _: PageLoyaltyManager, form: FormDep, reward_id: PathId
) -> Response:
    """Change a reward (withdraw it by unticking Active)."""
    return _save_reward(request, session, form, service.get_reward(session, reward_id))


# --------------------------------------------------------------------------- rules


def config_yaml(config: ProgrammeConfig) -> str:
    """The rules as the YAML a person edits (the same shape `patron loyalty configure` reads)."""
    return yaml.safe_dump(_plain(config.model_dump()), sort_keys=False, allow_unicode=True, width=100)


def _plain(value: Any) -> Any:
    # Numbers as numbers (500, 1.5), not the quoted strings of a JSON dump; enums as their values.
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


@router.get("/rules", response_class=HTMLResponse)
def rules(request: Request, session: SessionDep, _: PageReader) -> HTMLResponse:
    """The rules in force, readably; the editor; earlier versions."""
    _, config = service.current_config(session)
    return _rules_page(request, session, source=config_yaml(config))


def _rules_page(
    request: Request, session: Session, *, source: str, errors: list[dict] | None = None, status: int = 200
) -> HTMLResponse:
    version_id, config = service.current_config(session)
    return render(
        request,
        "loyalty/rules.html",
        {
            "title": "Programme rules",
            "active": "loyalty",
            "c": config,
            "version_id": version_id,
            "history": service.config_history(session, limit=20),
            "source": source,
            "errors": errors or [],
            "notice": _notice(request),
        },
        status_code=status,
    )


@router.post("/rules")
def save_rules(request: Request, session: SessionDep, principal: PageLoyaltyManager, form: FormDep) -> Response:
    """Store the edited rules as a new version, after checking every field."""
    source = form.get("config") if isinstance(form.get("config"), str) else ""
    try:
        if len(source) > RULES_MAX_CHARS:
            raise InvalidInput(f"the rules are longer than {RULES_MAX_CHARS:,} characters", detail={"field": "config"})
        try:
            data = load_yaml(source)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or "cannot be read"
            raise InvalidInput(f"the rules are not valid YAML{where}: {problem}", detail={"field": "config"}) from None
        if not isinstance(data, dict):
            raise InvalidInput("the rules must be a mapping of sections (earn, expiry, tiers…)", detail={"field": ""})
        data.pop("rewards", None)  # rewards are edited on the rewards page
        try:
            config = ProgrammeConfig.model_validate(data)
        except ValidationError as exc:
            page = _rules_page(request, session, source=source, errors=error_list(exc), status=422)
            raise PageResponse(page) from None
        version = service.configure(session, config=config, by=_by(principal))
    except PatronError as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {}
        errors = [{"field": str(detail.get("field") or ""), "message": exc.message}]
        raise PageResponse(_rules_page(request, session, source=source, errors=errors, status=exc.status)) from None
    request.session[NOTICE_KEY] = f"Saved the rules as version {version}."
    return RedirectResponse("/loyalty/rules", status_code=303)


# --------------------------------------------------------------------------- vouchers


@router.get("/vouchers", response_class=HTMLResponse)
def vouchers(request: Request, session: SessionDep, _: PageReader, code: Annotated[str, Query(max_length=40)] = ""):
    """Look up a voucher code (a till operator's page)."""
    return _voucher_page(request, session, code=code)


def _voucher_page(
    request: Request,
    session: Session,
    *,
    code: str,
    reference: str = "",
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    voucher = reward = member = customer = None
    lookup_error = None
    if code.strip():
        try:
            voucher = service.get_voucher(session, code)
        except PatronError as exc:
            lookup_error, status = exc.message, exc.status if status == 200 else status
    if voucher is not None:
        reward = service.get_reward(session, voucher.reward_id)
        member = service.get_member(session, voucher.member_id)
        customer = service.customers_of(session, [member]).get(member.customer_id)
    now = datetime.now(UTC)
    return render(
        request,
        "loyalty/vouchers.html",
        {
            "title": "Vouchers",
            "active": "loyalty",
            "code": code,
            "reference": reference,
            "v": voucher,
            "reward": reward,
            "member": member,
            "member_name": _name(customer, member) if member else "",
            "usable": voucher is not None and voucher.status.value == "issued" and voucher.expires_at > now,
            "expired": voucher is not None and voucher.status.value == "issued" and voucher.expires_at <= now,
            "lookup_error": lookup_error,
            "error": error,
            "notice": _notice(request),
        },
        status_code=status,
    )


@router.post("/vouchers/consume")
def consume(request: Request, session: SessionDep, principal: PageLoyaltyOperator, form: FormDep) -> Response:
    """Use a voucher once, noting the till's receipt or order."""
    code, reference = text(form, "code")[:40], text(form, "reference")
    try:
        if not code:
            raise InvalidInput("enter the voucher code", detail={"field": "code"})
        if len(reference) > 100:
            raise InvalidInput("the reference is longer than 100 characters", detail={"field": "reference"})
        voucher = service.consume_voucher(session, code=code, by=_by(principal), reference=reference or None)
    except PatronError as exc:
        page = _voucher_page(request, session, code=code, reference=reference, error=exc.message, status=exc.status)
        raise PageResponse(page) from None
    request.session[NOTICE_KEY] = f"Voucher {voucher.code} is used: give the reward."
    return RedirectResponse(f"/loyalty/vouchers?{urlencode({'code': voucher.code})}", status_code=303)
