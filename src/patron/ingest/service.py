"""Batch upserts of customers and orders, and the signed order webhook.

Each record is validated on its own and written in its own SAVEPOINT, so a bad record is
reported with its reasons and never spoils the others; the request is one transaction.
A batch's references (external ids, emails, SKUs, stores, existing orders) are resolved up
front with a few IN queries. Records are the single-record API's schemas, so they obey
the same rules; new customers and orders are inserted directly (see repository.py for
why), while updates, email links and stub products go through their domains' services.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from patron import events
from patron.customers import service as customers
from patron.customers.schemas import CustomerCreate, CustomerUpdate
from patron.errors import Conflict, NotAuthenticated, PatronError, ValidationFailed
from patron.ingest import repository
from patron.ingest.schemas import (
    BatchResult,
    BatchSummary,
    CustomerRecord,
    OrderRecord,
    RecordResult,
    RecordStatus,
    Stub,
    Unknown,
)
from patron.models import Order
from patron.models.enums import OrderStatus
from patron.orders import service as orders
from patron.orders.schemas import OrderUpdate
from patron.products import service as products
from patron.products.schemas import ProductCreate
from patron.validation import error_list

M = TypeVar("M", bound=BaseModel)

SIGNATURE_HEADER = "X-Patron-Signature"
SIGNATURE_TOLERANCE = 300  # seconds either side of the server's clock; older signatures are replays
_AMOUNTS = ("currency", "subtotal", "discount", "shipping_fee", "tax", "total")
# The order's own columns, as OrderCreate carries them (customer, store and lines are resolved).
_ORDER_FIELDS = {"external_id", "placed_at", "channel", "status", *_AMOUNTS}
_RETURNED = (OrderStatus.returned, OrderStatus.partially_returned)


class BadSignature(NotAuthenticated):
    """A webhook without a valid signature (401)."""

    challenge = "Patron-Signature"  # the WWW-Authenticate scheme sent with the 401


# --- customers --------------------------------------------------------------------------


def upsert_customers(session: Session, *, records: Sequence[Any], user_id: int | None = None) -> BatchResult:
    """Create or update each customer record; matched by external id (then email)."""
    parsed = [_validate(CustomerRecord, raw) for raw in records]
    known = _KnownCustomers(session, [r for r, _ in parsed if r is not None])
    results = []
    for index, (record, errors) in enumerate(parsed):
        if record is None:
            results.append(_rejected(index, errors))
            continue
        work = partial(_upsert_customer, session, known, record, index, user_id)
        results.append(_one_record(session, known, index, work)[0])
    created = [r.id for r in results if r.status == RecordStatus.created and r.id]
    if created:  # (updates announce themselves through customers.update_customer)
        events.publish(session, events.CustomersCreated(customer_ids=created, via="batch"))
    return _batch(results)


class _Staged:
    """Facts learned from the records written so far; kept only when their record succeeds."""

    _GONE = object()

    def __init__(self) -> None:
        self._staged: list[tuple[dict, Any, Any]] = []

    def stage(self, mapping: dict, key: Any, value: Any = _GONE) -> None:
        self._staged.append((mapping, key, value))

    def commit(self) -> None:
        for mapping, key, value in self._staged:
            if value is self._GONE:
                mapping.pop(key, None)
            else:
                mapping[key] = value
        self._staged.clear()

    def discard(self) -> None:
        self._staged.clear()


class _KnownCustomers(_Staged):
    """The batch's customers: (source, id) and email -> (holder, survivor), and the survivors."""

    def __init__(self, session: Session, records: list[CustomerRecord]):
        super().__init__()
        self.by_external = repository.customers_by_external_id(
            session, [(s, e) for r in records for s, e in r.external_ids.items()]
        )
        self.by_email = repository.customers_by_email(session, [r.email for r in records if r.email])
        survivors = {s for _, s in self.by_external.values()} | {s for _, s in self.by_email.values()}
        self.customers = repository.customers_by_id(session, survivors)

    def learn(
        self, customer_id: int, *, email: str | None, external_ids: dict[str, str], old_email: str | None = None
    ) -> None:
        if old_email and old_email != email:
            self.stage(self.by_email, old_email)
        if email:
            self.stage(self.by_email, email, (customer_id, customer_id))
        for key in external_ids.items():
            self.stage(self.by_external, key, (customer_id, customer_id))


def _upsert_customer(
    session: Session, known: _KnownCustomers, record: CustomerRecord, index: int, user_id: int | None
) -> RecordResult:
    result = RecordResult(index=index, status=RecordStatus.unchanged, id=None)
    hits = [known.by_external[k] for k in record.external_ids.items() if k in known.by_external]
    survivors = sorted({survivor for _, survivor in hits})
    email_hit = known.by_email.get(record.email) if record.email else None
    if len(survivors) > 1:
        raise ValidationFailed(
            [{"field": "external_ids", "message": f"lead to different customers ({', '.join(map(str, survivors))})"}]
        )
    if survivors:
        target = survivors[0]
        if email_hit and email_hit[1] != target:
            raise ValidationFailed(
                [
                    {
                        "field": "email",
                        "message": f"belongs to customer {email_hit[1]}; the external ids lead to {target}",
                    }
                ]
            )
    elif email_hit:
        target = email_hit[1]
    else:
        with session.begin_nested():
            customer_id = _insert_customer(session, record, user_id=user_id)
        known.learn(customer_id, email=record.email, external_ids=record.external_ids)
        result.status, result.id = RecordStatus.created, customer_id
        return result
    result.id = target
    for holder, _ in [*hits, *([email_hit] if email_hit else [])]:
        if holder != target and (note := f"customer {holder} was merged into {target}") not in result.notes:
            result.notes.append(note)

    customer = known.customers.get(target) or customers.get_customer(session, target)
    given = record.model_dump(exclude_unset=True, exclude={"external_ids", "consents"})
    if "email" in given and email_hit and email_hit[0] != target:
        # The address is still held by the merged record (kept for undo); the survivor keeps its own.
        del given["email"]
        result.notes.append(f"email {record.email} stays with merged customer {email_hit[0]}")
    changes = {name: value for name, value in given.items() if getattr(customer, name) != value}

    current_ids = {x.source: x.external_id for x in customer.external_ids}
    new_ids, errors = {}, []
    for source, ext_id in record.external_ids.items():
        if (source, ext_id) in known.by_external:
            continue  # already leads here (perhaps through a merged record)
        if source in current_ids:
            errors.append(
                {
                    "field": f"external_ids.{source}",
                    "message": f"customer {target} already has {source} id {current_ids[source]!r}; "
                    "a batch adds external ids but never replaces one",
                }
            )
        else:
            new_ids[source] = ext_id
    if errors:
        raise ValidationFailed(errors)

    new_consents = []
    if record.consents:
        state = {(c.channel, c.purpose): c.status for c in customers.current_consents(session, target)}
        for change in record.consents:
            if state.get((change.channel, change.purpose)) != change.status:
                new_consents.append(change)
                state[(change.channel, change.purpose)] = change.status

    if not (changes or new_ids or new_consents):
        return result
    old_email = customer.email
    with session.begin_nested():
        if changes or new_ids:
            if new_ids:
                changes["external_ids"] = current_ids | new_ids
            customers.update_customer(session, target, data=CustomerUpdate.model_validate(changes), via="batch")
        for change in new_consents:
            customers.record_consent(session, target, change=change, user_id=user_id)
    known.learn(
        target,
        email=customer.email,
        external_ids={x.source: x.external_id for x in customer.external_ids},
        old_email=old_email,
    )
    result.status = RecordStatus.updated
    return result


def _insert_customer(session: Session, data: CustomerCreate, *, user_id: int | None) -> int:
    """A new customer the batch matched against nobody (the same rows create_customer writes)."""
    return repository.insert_customer(
        session,
        fields=data.model_dump(exclude={"external_ids", "consents"}),
        external_ids=data.external_ids,
        consents=[change.model_dump() | {"user_id": user_id} for change in data.consents],
    )


# --- orders -----------------------------------------------------------------------------


def upsert_orders(
    session: Session,
    *,
    records: Sequence[Any],
    unknown_customers: Unknown = Unknown.reject,
    unknown_products: Unknown = Unknown.reject,
) -> BatchResult:
    """Record each order, keyed by external_id: new ones created, re-sent ones reconciled."""
    written = _upsert_order_records(
        session, records, unknown_customers=unknown_customers, unknown_products=unknown_products, via="batch"
    )
    return _batch([result for result, _ in written])


def _upsert_order_records(
    session: Session, records: Sequence[Any], *, unknown_customers: Unknown, unknown_products: Unknown, via: str
) -> list[tuple[RecordResult, int]]:
    parsed = [_validate(OrderRecord, raw) for raw in records]
    known = _KnownOrders(session, [r for r, _ in parsed if r is not None])
    written = []
    for index, (record, errors) in enumerate(parsed):
        if record is None:
            written.append((_rejected(index, errors), 422))
            continue
        work = partial(
            _upsert_order,
            session,
            known,
            record,
            index,
            stub_customers=unknown_customers == Unknown.stub,
            stub_products=unknown_products == Unknown.stub,
        )
        written.append(_one_record(session, known, index, work))
    # One event per kind for the whole batch (refused records are left out).
    by_kind: dict[type[events.Event], list[int]] = {}
    for (result, _), (record, _) in zip(written, parsed, strict=True):
        if result.id and result.status == RecordStatus.created:
            by_kind.setdefault(events.OrdersRecorded, []).append(result.id)
        elif result.id and result.status == RecordStatus.updated:
            cancelled = record is not None and record.status == OrderStatus.cancelled
            by_kind.setdefault(events.OrdersCancelled if cancelled else events.OrdersUpdated, []).append(result.id)
    for kind, ids in by_kind.items():
        events.publish(session, kind(order_ids=ids, via=via))
    return written


class _KnownOrders(_Staged):
    """The batch's existing orders, customers (by id, shop id and email) and products."""

    def __init__(self, session: Session, records: list[OrderRecord]):
        super().__init__()
        refs = [r.customer for r in records if r.customer is not None]
        lines = [line for r in records for line in r.lines]
        self.orders = repository.orders_by_external_id(session, [r.external_id for r in records])
        self.by_external = repository.customers_by_external_id(session, [(c.source, c.external_id) for c in refs])
        self.by_email = repository.customers_by_email(session, [c.email for c in refs if c.email])
        self.survivors = repository.customer_survivors(
            session,
            [r.customer_id for r in records if r.customer_id is not None]
            + [o.customer_id for o in self.orders.values()],
        )
        self.skus = repository.product_ids_by_sku(session, [ln.sku for ln in lines if ln.sku is not None])
        self.product_ids = repository.existing_product_ids(
            session, [ln.product_id for ln in lines if ln.product_id is not None]
        )
        self.store_codes = repository.store_ids_by_code(session, [r.store_code for r in records if r.store_code])
        self.store_ids = repository.existing_store_ids(session, [r.store_id for r in records if r.store_id])

    def order(self, session: Session, external_id: str) -> Order | None:
        """The order already recorded with this external id (perhaps by an earlier record)."""
        found = self.orders.get(external_id)
        if isinstance(found, int):  # created by this batch: load it only when it is sent again
            found = self.orders[external_id] = orders.get_order(session, found)
        return found

    def customer_of(self, record: OrderRecord) -> tuple[int | None, int | None]:
        """(holder, survivor) of the record's customer, without writing anything."""
        if record.customer_id is not None:
            survivor = self.survivors.get(record.customer_id)
            return (record.customer_id if survivor else None), survivor
        ref = record.customer
        return self.by_external.get((ref.source, ref.external_id), (None, None))


def _upsert_order(
    session: Session,
    known: _KnownOrders,
    record: OrderRecord,
    index: int,
    *,
    stub_customers: bool,
    stub_products: bool,
) -> RecordResult:
    existing = known.order(session, record.external_id)
    if existing is not None:
        return _reconcile_order(session, known, record, existing, index)
    result = RecordResult(index=index, status=RecordStatus.created, id=None)

    # Plan first, so every reason to refuse the record is reported, and nothing is written
    # before the record is known to be acceptable.
    errors: list[dict[str, str]] = []
    holder, customer_id = known.customer_of(record)
    link_to = None
    ref = record.customer
    if customer_id is None and record.customer_id is not None:
        errors.append({"field": "customer_id", "message": f"no customer with id {record.customer_id}"})
    elif customer_id is None and ref.email and ref.email in known.by_email:
        holder, link_to = known.by_email[ref.email]
        have = {x.source: x.external_id for x in customers.get_customer(session, link_to).external_ids}
        if ref.source in have:
            errors.append(
                {
                    "field": "customer.external_id",
                    "message": f"no customer has {ref.source} id {ref.external_id!r}, and customer {link_to} "
                    f"(email {ref.email}) has {ref.source} id {have[ref.source]!r}",
                }
            )
    elif customer_id is None and not stub_customers:
        errors.append(
            {
                "field": "customer.external_id",
                "message": f"no customer with {ref.source} id {ref.external_id!r} "
                "(send unknown_customers=stub to create one)",
            }
        )
    store_id = record.store_id
    if record.store_code is not None:
        store_id = known.store_codes.get(record.store_code)
        if store_id is None:
            errors.append({"field": "store_code", "message": f"no store with code {record.store_code!r}"})
    elif store_id is not None and store_id not in known.store_ids:
        errors.append({"field": "store_id", "message": f"no store with id {store_id}"})
    new_skus: dict[str, tuple[int, Any]] = {}
    for i, line in enumerate(record.lines):
        if line.product_id is not None:
            if line.product_id not in known.product_ids:
                errors.append({"field": f"lines.{i}.product_id", "message": f"no product with id {line.product_id}"})
        elif line.sku not in known.skus and line.sku not in new_skus:
            if stub_products:
                new_skus[line.sku] = (i, line.unit_price)
            else:
                errors.append(
                    {
                        "field": f"lines.{i}.sku",
                        "message": f"no product with sku {line.sku!r} (send unknown_products=stub to create one)",
                    }
                )
    if errors:
        raise ValidationFailed(errors)

    with session.begin_nested():
        return _write_new_order(
            session,
            known,
            record,
            result,
            customer_id=customer_id,
            holder=holder,
            link_to=link_to,
            store_id=store_id,
            new_skus=new_skus,
        )


def _write_new_order(
    session: Session,
    known: _KnownOrders,
    record: OrderRecord,
    result: RecordResult,
    *,
    customer_id: int | None,
    holder: int | None,
    link_to: int | None,
    store_id: int | None,
    new_skus: dict[str, tuple[int, Any]],
) -> RecordResult:
    """Write a planned new order: the email link or stub customer, stub products, the order."""
    ref = record.customer
    if link_to is not None:
        customer_id = link_to
        have = {x.source: x.external_id for x in customers.get_customer(session, link_to).external_ids}
        customers.update_customer(
            session, link_to, data=CustomerUpdate(external_ids=have | {ref.source: ref.external_id})
        )
        known.stage(known.by_external, (ref.source, ref.external_id), (link_to, link_to))
        result.notes.append(f"{ref.source} id {ref.external_id!r} added to customer {link_to}, found by email")
    elif customer_id is None:
        stub = CustomerCreate(
            external_ids={ref.source: ref.external_id},
            email=ref.email,
            first_name=ref.first_name,
            last_name=ref.last_name,
        )
        customer_id = holder = _insert_customer(session, stub, user_id=None)
        known.stage(known.by_external, (ref.source, ref.external_id), (customer_id, customer_id))
        if ref.email:
            known.stage(known.by_email, ref.email, (customer_id, customer_id))
        result.stubs.append(Stub(type="customer", id=customer_id, reference=f"{ref.source}:{ref.external_id}"))
    if holder is not None and holder != customer_id:
        result.notes.append(f"customer {holder} was merged into {customer_id}; the order is recorded on {customer_id}")
    known.stage(known.survivors, customer_id, customer_id)

    stubbed: dict[str, int] = {}
    for sku, (i, price) in new_skus.items():
        try:
            data = ProductCreate(sku=sku, name=sku, price=price)
        except ValidationError as exc:
            reason = "; ".join(e["message"] for e in error_list(exc))
            raise ValidationFailed(
                [{"field": f"lines.{i}.sku", "message": f"cannot create a stub product for it: {reason}"}]
            ) from exc
        stubbed[sku] = products.create_product(session, data=data).id
        known.stage(known.skus, sku, stubbed[sku])
        result.stubs.append(Stub(type="product", id=stubbed[sku], reference=sku))

    product_ids = [
        ln.product_id if ln.product_id is not None else known.skus.get(ln.sku) or stubbed[ln.sku] for ln in record.lines
    ]
    result.id = repository.insert_order(
        session,
        fields=record.model_dump(include=_ORDER_FIELDS) | {"customer_id": customer_id, "store_id": store_id},
        lines=[
            {
                "line_no": n,
                "product_id": product_id,
                "quantity": ln.quantity,
                "unit_price": ln.unit_price,
                "discount": ln.discount,
            }
            for n, (ln, product_id) in enumerate(zip(record.lines, product_ids, strict=True), start=1)
        ],
    )
    known.stage(known.orders, record.external_id, result.id)
    return result


def _reconcile_order(
    session: Session, known: _KnownOrders, record: OrderRecord, existing: Order, index: int
) -> RecordResult:
    """A re-sent order: unchanged, updated in its mutable fields, or refused."""
    result = RecordResult(index=index, status=RecordStatus.unchanged, id=existing.id)
    errors = []
    _, customer_id = known.customer_of(record)
    recorded_for = known.survivors.get(existing.customer_id, existing.customer_id)
    if customer_id != recorded_for:
        errors.append(
            {
                "field": "customer_id" if record.customer_id is not None else "customer",
                "message": f"order {record.external_id} is recorded (id {existing.id}) for customer {recorded_for}; "
                "an order's customer cannot change",
            }
        )
    instead = f"record a return or refund (POST /api/v1/orders/{existing.id}/returns) instead"
    for name in _AMOUNTS:
        recorded, sent = getattr(existing, name), getattr(record, name)
        if recorded != sent:
            errors.append(
                {
                    "field": name,
                    "message": f"is {recorded} on the recorded order {existing.id}, not {sent}: "
                    f"amounts cannot change; {instead}",
                }
            )
    sent_lines = Counter(
        (
            ln.product_id if ln.product_id is not None else known.skus.get(ln.sku),
            ln.quantity,
            ln.unit_price,
            ln.discount,
        )
        for ln in record.lines
    )
    recorded_lines = Counter((ln.product_id, ln.quantity, ln.unit_price, ln.discount) for ln in existing.lines)
    if sent_lines != recorded_lines:
        errors.append(
            {
                "field": "lines",
                "message": f"differ from the recorded order {existing.id}: lines cannot change; {instead}",
            }
        )
    if errors:
        raise ValidationFailed(errors)

    changes: dict[str, Any] = {}
    if "status" in record.model_fields_set and record.status != existing.status:
        if existing.status in _RETURNED:
            result.notes.append(f"status stays {existing.status}: returns are recorded against this order")
        else:
            changes["status"] = record.status
    if record.channel != existing.channel:
        changes["channel"] = record.channel
    if record.placed_at != existing.placed_at:
        changes["placed_at"] = record.placed_at
    store_id = record.store_id if "store_id" in record.model_fields_set else existing.store_id
    if record.store_code is not None:
        store_id = known.store_codes.get(record.store_code)
        if store_id is None:
            raise ValidationFailed([{"field": "store_code", "message": f"no store with code {record.store_code!r}"}])
    if store_id != existing.store_id:
        changes["store_id"] = store_id  # update_order checks that the store exists
    if changes:
        with session.begin_nested():
            orders.update_order(session, existing.id, data=OrderUpdate(**changes), via=None)
        result.status = RecordStatus.updated
    return result


# --- webhook ----------------------------------------------------------------------------


def receive_order(session: Session, *, body: bytes) -> tuple[int, RecordResult]:
    """Record one pushed order like a batch record; unknown customers are stubbed.

    Returns (201, result) when created, (200, result) when updated or unchanged; a refused
    record raises (422, or 409 when it collided with a concurrent write).
    """
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed([{"field": "body", "message": f"is not valid JSON ({exc})"}]) from exc
    [(result, status)] = _upsert_order_records(
        session, [raw], unknown_customers=Unknown.stub, unknown_products=Unknown.reject, via="webhook"
    )
    if result.status is RecordStatus.rejected:
        errors = [e.model_dump() for e in result.errors]
        if status == 409:
            raise Conflict("; ".join(f"{e['field']}: {e['message']}" for e in errors), detail=errors)
        raise ValidationFailed(errors)
    return status, result


def verify_signature(*, secret: str, header: str | None, body: bytes, now: float | None = None) -> None:
    """Check `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`; raise 401 (or 503 when disabled)."""
    if not secret:
        raise PatronError("order webhooks are disabled: set PATRON_WEBHOOK_SECRET to enable them", status=503)
    expected_form = f"expected {SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'>"
    if not header:
        raise BadSignature(f"missing {SIGNATURE_HEADER} header ({expected_form})")
    pairs = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for name, _, value in pairs if name == "t"]
    signatures = [value.strip().lower() for name, _, value in pairs if name == "v1"]
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or len(stamps[0]) > 12 or not signatures:
        raise BadSignature(f"malformed {SIGNATURE_HEADER} header ({expected_form})")
    stamp = stamps[0]
    if abs((time.time() if now is None else now) - int(stamp)) > SIGNATURE_TOLERANCE:
        raise BadSignature(
            f"{SIGNATURE_HEADER} timestamp is more than {SIGNATURE_TOLERANCE // 60} minutes from the server's "
            "clock: sign each delivery when sending it (and check the sender's clock)"
        )
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest().encode()
    if not any(hmac.compare_digest(expected, s.encode("latin-1", "replace")) for s in signatures):
        raise BadSignature(f"{SIGNATURE_HEADER} does not match the body (wrong secret, or the body was altered)")


# --- shared -----------------------------------------------------------------------------


def _validate(model: type[M], raw: Any) -> tuple[M | None, list[dict[str, str]]]:
    if isinstance(raw, model):
        return raw, []
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, _record_fields(error_list(exc))


def _record_fields(errors: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    # error_list names a whole-input error "body"; inside a batch the input is one record.
    return [{**e, "field": "record" if e["field"] == "body" else e["field"]} for e in errors]


def _one_record(
    session: Session, known: _Staged, index: int, work: Callable[[], RecordResult]
) -> tuple[RecordResult, int]:
    """Run one record, turning any refusal into a `rejected` result.

    `work` plans without writing, then does all of the record's writes inside one SAVEPOINT
    (session.begin_nested()), so a refusal while writing rolls back just that record; a
    record refused while planning, or found unchanged, costs no savepoint at all. Facts
    the record taught `known` are kept only when it succeeded.

    Returns the result and the HTTP status it would have on its own: 201 created, 200
    updated or unchanged, 409 when it collided with a concurrent write, else 422.
    """
    try:
        result = work()
    except PatronError as exc:
        known.discard()
        return _rejected(index, _errors_of(exc)), 409 if isinstance(exc, Conflict) else 422
    except ValidationError as exc:
        known.discard()
        return _rejected(index, _record_fields(error_list(exc))), 422
    except (IntegrityError, DataError) as exc:
        known.discard()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else exc.__class__.__name__
        message = f"the database refused it ({reason}); nothing of this record was written"
        return _rejected(index, [{"field": "record", "message": message}]), 409
    known.commit()
    return result, 201 if result.status is RecordStatus.created else 200


def _errors_of(exc: PatronError) -> list[dict[str, str]]:
    if isinstance(exc, ValidationFailed):
        return _record_fields(exc.errors)
    field = exc.detail.get("field") if isinstance(exc.detail, dict) else None
    return [{"field": field or "record", "message": exc.message}]


def _rejected(index: int, errors: list[dict[str, str]]) -> RecordResult:
    return RecordResult(index=index, status=RecordStatus.rejected, id=None, errors=errors)


def _batch(results: list[RecordResult]) -> BatchResult:
    counts = Counter(r.status.value for r in results)
    return BatchResult(results=results, summary=BatchSummary(**counts))
