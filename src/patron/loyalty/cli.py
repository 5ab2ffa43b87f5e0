"""`patron loyalty ...`: configure the programme, look after members and vouchers, run the daily jobs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from patron.console import console, fail

loyalty_app = typer.Typer(help="Loyalty programme: rules, members, points, rewards and vouchers.", no_args_is_help=True)

# Orders per transaction in `sync`: each page commits, so a long run keeps what it did.
SYNC_PAGE = 1000


def register(app: typer.Typer) -> None:
    """Add the `loyalty` command group to the root `patron` app."""
    app.add_typer(loyalty_app, name="loyalty")


AsOfOpt = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        help="Run as at the end of this day (UTC) instead of now; a later day shows what will happen.",
    ),
]
MemberArg = Annotated[int, typer.Argument(min=1, max=2**31 - 1, help="The member's id.")]


def _as_of(day: datetime | None) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day.date(), time(23, 59, 59), tzinfo=UTC)


def _when(moment: datetime | date | None) -> str:
    if moment is None:
        return "-"
    return f"{moment:%Y-%m-%d}" if not isinstance(moment, datetime) else f"{moment:%Y-%m-%d %H:%M}"


def _read_config(file: Path):
    """The file parsed and validated as a ConfigFile; ValidationFailed lists every field that is wrong."""
    import yaml
    from pydantic import ValidationError

    from patron.errors import InvalidInput, ValidationFailed
    from patron.loyalty.config import ConfigFile
    from patron.validation import error_list, load_yaml

    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{file} is not UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None
    try:
        data = load_yaml(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1} column {where.column + 1}" if where is not None else ""
        raise InvalidInput(f"{file} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{file} must hold a mapping of settings (earn:, expiry:, tiers:, rewards: ...)")
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(error_list(exc)) from None


@loyalty_app.command("configure")
def configure_command(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="The programme as YAML (or JSON).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file and store nothing.")] = False,
) -> None:
    """Check a programme file and store it as the rules in force, with its rewards (by code)."""
    from patron.db import session_scope
    from patron.errors import PatronError, ValidationFailed
    from patron.loyalty import service

    try:
        data = _read_config(file)
        with session_scope() as session:
            existing = {r.code for r in service.list_rewards(session)}
            version_id, rewards = service.configure_from_file(session, data=data, by="cli")
            created = [r.code for r in rewards if r.code not in existing]
            updated = [r.code for r in rewards if r.code in existing]
            if dry_run:
                # Everything was checked against the database (tiers, product SKUs); keep nothing.
                session.rollback()
    except ValidationFailed as exc:
        for error in exc.errors:
            console.print(f"  [bold]{escape(error['field'])}[/]: {escape(error['message'])}")
        raise fail(f"{file} is not a valid programme ({len(exc.errors)} problem(s)); nothing was stored") from exc
    except PatronError as exc:
        raise fail(f"{exc.message}; nothing was stored") from exc
    if dry_run:
        console.print(
            f"{file} is valid: {len(data.tiers.levels)} tiers, {len(data.rewards)} rewards "
            f"({len(created)} new, {len(updated)} to update). Nothing stored (--dry-run)."
        )
        return
    console.print(f"Programme version {version_id} stored from {file}.")
    console.print(
        f"Rewards: {len(created)} created{' (' + ', '.join(created) + ')' if created else ''}, "
        f"{len(updated)} updated{' (' + ', '.join(updated) + ')' if updated else ''}."
    )


@loyalty_app.command("config")
def config_command() -> None:
    """Print the rules in force as YAML (a file `configure` accepts)."""
    import yaml

    from patron.db import session_scope
    from patron.loyalty import service

    with session_scope() as session:
        version_id, config = service.current_config(session)
    print(f"# Loyalty programme, version {version_id}")
    print(yaml.safe_dump(_plain(config.model_dump()), sort_keys=False, allow_unicode=True), end="")


def _plain(value):
    """Python values YAML writes as a person would: 1.25 and 2 rather than '1.25' and '2'."""
    from decimal import Decimal
    from enum import Enum

    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


@loyalty_app.command("rewards")
def rewards_command(
    all_: Annotated[bool, typer.Option("--all", help="Include withdrawn rewards.")] = False,
) -> None:
    """The rewards catalogue: code, name, kind, points, stock."""
    from patron.db import session_scope
    from patron.loyalty import service

    table = Table("id", "code", "name", "kind", "points", "stock", "min tier", "active")
    with session_scope() as session:
        for r in service.list_rewards(session, active_only=not all_):
            table.add_row(
                str(r.id),
                escape(r.code),
                escape(r.name),
                str(r.kind) + (f" ({r.amount})" if r.amount is not None else ""),
                f"{r.points_cost:,}",
                "unlimited" if r.stock is None else f"{r.stock:,}",
                escape(r.min_tier or "-"),
                "yes" if r.is_active else "no",
            )
    console.print(table)


@loyalty_app.command("enrol")
def enrol_command(
    customer_id: Annotated[int, typer.Argument(min=1, max=2**31 - 1, help="The customer to enrol.")],
) -> None:
    """Enrol a customer: a card number, the first tier and the sign-up bonus."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import service

    try:
        with session_scope() as session:
            member = service.enrol(session, customer_id=customer_id, via="cli", by="cli")
            out = service.summary(session, member_id=member.id)
            line = (
                f"Customer {customer_id} enrolled: member {member.id}, card {member.card_number}, "
                f"tier {out.tier.name}, balance {out.balance:,} points."
            )
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(line)


@loyalty_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A CSV of members (see below).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the whole file, enrol nobody.")] = False,
) -> None:
    """Enrol members from a CSV: customer_id, email or source + external_id per row, and
    optionally card_number (keep printed cards), enrolled_at, tier and points (opening
    balance). Any bad row refuses the whole file; every bad row is listed."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import member_import

    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"{file} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from exc
    try:
        with session_scope() as session:
            result = member_import.import_members(session, text=text, by="cli", dry_run=dry_run)
    except PatronError as exc:
        for error in (exc.detail or {}).get("errors", []) if isinstance(exc.detail, dict) else []:
            console.print(
                f"row {error['row']}, {error['column']} {escape(repr(error['value']))}: {escape(error['reason'])}",
                highlight=False,
            )
        raise fail(exc.message) from exc
    verb = "would enrol" if dry_run else "enrolled"
    console.print(f"{result.enrolled:,} member(s) {verb}, {result.points:,} opening points.")


@loyalty_app.command("member")
def member_command(
    member_id: Annotated[int | None, typer.Argument(min=1, max=2**31 - 1, help="The member's id.")] = None,
    card: Annotated[str | None, typer.Option("--card", help="Find the member by card number instead.")] = None,
) -> None:
    """A member's balance, tier, progress to the next tier and points about to expire."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import service

    if (member_id is None) == (card is None):
        raise fail("give a member id or --card NUMBER (one of them)")
    try:
        with session_scope() as session:
            if card is not None:
                member_id = service.member_by_card(session, card).id
            s = service.summary(session, member_id=member_id)
            customer = service.customers_of(session, [s.member]).get(s.member.customer_id)
            name = f"{customer.first_name} {customer.last_name}".strip() if customer is not None else "(erased)"
            table = Table("", "", title=f"Member {s.member.id}")
            table.add_row("customer", f"{escape(name)} (customer {s.member.customer_id})")
            table.add_row("card", s.member.card_number)
            table.add_row("status", str(s.member.status))
            table.add_row("enrolled", _when(s.member.enrolled_at))
            table.add_row("balance", f"{s.balance:,} points (worth {s.balance * s.point_value:,.2f} {s.currency})")
            table.add_row("tier", f"{escape(s.tier.name)} since {_when(s.member.tier_since)}")
            unit = "points" if s.basis == "points" else s.currency
            table.add_row("qualifying", f"{s.qualifying_value:,} {unit} in the last {s.window_months} months")
            if s.next_tier is not None:
                table.add_row("next tier", f"{escape(s.next_tier.name)}: {s.to_next_tier:,} {unit} to go")
            table.add_row("tier review", _when(s.member.tier_review_at))
            expiring = ", ".join(f"{n:,} on {_when(d.date())}" for d, n in s.expiring) or "none in 90 days"
            table.add_row("expiring", expiring)
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(table)


@loyalty_app.command("statement")
def statement_command(
    member_id: MemberArg,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many movements, newest first.")] = 20,
) -> None:
    """A member's movements of points, newest first, with the balance after each."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import service

    try:
        with session_scope() as session:
            page = service.statement(session, member_id=member_id, limit=limit)
            table = Table("#", "when", "kind", "points", "balance", "memo", title=f"Member {member_id}")
            for line in page.items:
                table.add_row(
                    str(line.id),
                    _when(line.created_at),
                    str(line.kind),
                    f"{line.points:+,}",
                    f"{line.balance:,}",
                    escape(line.memo),
                )
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(table if page.items else f"Member {member_id} has no movements yet.")


@loyalty_app.command("award")
def award_command(
    member_id: MemberArg,
    reason: Annotated[str, typer.Option(help="birthday, review, survey or goodwill.")],
    reference: Annotated[str, typer.Option(help="What it is for, e.g. 'review 812'; awarded once per reference.")],
    points: Annotated[
        int | None, typer.Option(min=1, max=10_000_000, help="Points (default: the programme's bonus).")
    ] = None,
) -> None:
    """Give a member bonus points for an event (once per reason and reference)."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import service

    if not 1 <= len(reference.strip()) <= 100:
        raise fail("--reference must be 1 to 100 characters")
    key = f"cli:bonus:{member_id}:{reason}:{reference.strip()}"
    try:
        with session_scope() as session:
            tx = service.award_bonus(
                session, member_id=member_id, reason=reason, key=key, points=points, reference=reference, by="cli"
            )
            balance = service.summary(session, member_id=member_id).balance
            line = f"{tx.points:,} points awarded to member {member_id} ({escape(tx.memo)}); balance {balance:,}."
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(line)


@loyalty_app.command("redeem")
def redeem_command(
    member_id: MemberArg,
    reward_code: Annotated[str, typer.Argument(help="The reward's code (see `patron loyalty rewards`).")],
) -> None:
    """Spend a member's points on a reward and print the voucher code."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import service

    try:
        with session_scope() as session:
            reward = service.reward_by_code(session, reward_code)
            voucher = service.redeem(
                session, member_id=member_id, reward_id=reward.id, key=f"cli:redeem:{uuid.uuid4()}", by="cli"
            )
            balance = service.summary(session, member_id=member_id).balance
            line = (
                f"Voucher [bold]{voucher.code}[/] for {escape(reward.name)} ({reward.points_cost:,} points), "
                f"valid until {_when(voucher.expires_at.date())}; balance {balance:,}."
            )
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(line)


@loyalty_app.command("consume")
def consume_command(
    voucher_code: Annotated[str, typer.Argument(help="The voucher's code.")],
    reference: Annotated[str | None, typer.Option(help="The till's order or receipt it was used on.")] = None,
) -> None:
    """Use a voucher (at a till or a checkout): exactly once, before it expires."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import service

    if reference is not None and len(reference) > 100:
        raise fail("--reference must be at most 100 characters")
    try:
        with session_scope() as session:
            voucher = service.consume_voucher(session, code=voucher_code, by="cli", reference=reference)
            line = f"Voucher {voucher.code} used" + (f" on {escape(reference)}" if reference else "") + "."
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(line)


@loyalty_app.command("expire")
def expire_command(as_of: AsOfOpt = None) -> None:
    """Expire every lapsed point now (or as at --as-of)."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import service

    try:
        with session_scope() as session:
            result = service.expire(session, now=_as_of(as_of), by="cli")
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(f"{result.points:,} points of {result.members:,} members expired.")


@loyalty_app.command("tiers")
def tiers_command(as_of: AsOfOpt = None) -> None:
    """Review the tiers of members whose qualifying period has ended."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import service

    try:
        with session_scope() as session:
            review = service.review_tiers(session, now=_as_of(as_of))
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(
        f"{review.reviewed:,} members reviewed: {review.upgraded:,} up, {review.kept:,} kept, "
        f"{review.downgraded:,} down."
    )


@loyalty_app.command("run")
def run_command(as_of: AsOfOpt = None) -> None:
    """All the daily jobs: expiry, tier reviews and birthday bonuses (what `patron serve` runs each day)."""
    from patron.db import get_engine
    from patron.errors import PatronError
    from patron.loyalty.tasks import run_daily_jobs

    try:
        result = run_daily_jobs(get_engine(), now=_as_of(as_of))
    except PatronError as exc:
        raise fail(exc.message) from exc
    if result is None:
        raise fail("another process is running the loyalty jobs right now; try again in a minute")
    table = Table("job", "result", title="Loyalty daily jobs")
    table.add_row("expiry", f"{result.expired.points:,} points of {result.expired.members:,} members expired")
    t = result.tiers
    table.add_row("tier reviews", f"{t.reviewed:,} reviewed: {t.upgraded:,} up, {t.kept:,} kept, {t.downgraded:,} down")
    table.add_row("birthday bonuses", f"{result.birthdays:,} given")
    console.print(table)


@loyalty_app.command("sync")
def sync_command(
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Only orders placed on or after this day (default: all orders)."),
    ] = None,
) -> None:
    """Earn points for members' orders, and take them back for returns and cancellations (safe to repeat)."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import service
    from patron.orders import service as orders

    start = datetime.combine(since.date(), time.min, tzinfo=UTC) if since else None
    seen = earned = clawed = unrecovered = 0
    after = 0
    try:
        while True:
            with session_scope() as session:
                ids = orders.order_ids_placed_since(session, since=start, after_id=after, limit=SYNC_PAGE)
                if not ids:
                    break
                result = service.sync_orders(session, order_ids=ids, by="cli")
            seen += len(ids)
            earned += result.earned
            clawed += result.clawed_back
            unrecovered += result.unrecovered
            after = ids[-1]
    except PatronError as exc:
        raise fail(exc.message) from exc
    console.print(
        f"{seen:,} orders checked: {earned:,} points earned, {clawed:,} taken back"
        + (f" ({unrecovered:,} could not be: already spent)" if unrecovered else "")
        + "."
    )


@loyalty_app.command("report")
def report_command(
    months: Annotated[int, typer.Option(min=1, max=120, help="How many months of movements.")] = 12,
    json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Members, points outstanding and their value, monthly movements, breakage and tiers."""
    from patron.db import session_scope
    from patron.errors import PatronError
    from patron.loyalty import service

    try:
        with session_scope() as session:
            r = service.report(session, months=months)
    except PatronError as exc:
        raise fail(exc.message) from exc
    if json_out:
        out = {
            "members": r.members,
            "outstanding_points": r.outstanding_points,
            "liability": str(r.liability),
            "currency": r.currency,
            "earned": r.earned_total,
            "redeemed": r.redeemed_total,
            "expired": r.expired_total,
            "breakage_rate": r.breakage_rate,
            "by_month": r.by_month,
            "tiers": [{"tier": t, "members": n, "points": p} for t, n, p in r.tiers],
            "books_balanced": r.books_balanced,
        }
        print(json.dumps(out, indent=2))
        return
    figures = Table("figure", "value", title=f"Loyalty programme, last {months} months")
    figures.add_row("members", f"{r.members:,}")
    figures.add_row("points outstanding", f"{r.outstanding_points:,}")
    figures.add_row("liability", f"{r.liability:,} {r.currency} (at {r.point_value} per point)")
    figures.add_row("earned (incl. bonuses)", f"{r.earned_total:,}")
    figures.add_row("redeemed", f"{r.redeemed_total:,}")
    figures.add_row("expired", f"{r.expired_total:,}")
    figures.add_row("breakage", "-" if r.breakage_rate is None else f"{r.breakage_rate:.1%}")
    figures.add_row(
        "books", "balanced" if r.books_balanced else "[bold red]NOT balanced[/] (run `patron loyalty check`)"
    )
    console.print(figures)
    columns = ["earned", "bonus", "redeemed", "expired", "clawed_back"]
    monthly = Table("month", *(c.replace("_", " ") for c in columns), title="Points by month")
    for month, row in r.by_month.items():
        monthly.add_row(month, *(f"{row.get(c, 0):,}" for c in columns))
    console.print(monthly)
    tiers = Table("tier", "members", "points held", title="Tiers")
    for name, n, points in r.tiers:
        tiers.add_row(escape(name), f"{n:,}", f"{points:,}")
    console.print(tiers)


@loyalty_app.command("check")
def check_command() -> None:
    """Check that the ledger balances: every transaction sums to zero and every balance matches its entries."""
    from patron.db import session_scope
    from patron.loyalty import service

    with session_scope() as session:
        problems = service.check_books(session)
    if problems:
        for problem in problems:
            console.print(f"  {escape(problem)}")
        raise fail(f"the loyalty books do not balance: {len(problems)} problem(s)")
    console.print("The loyalty books balance.")
