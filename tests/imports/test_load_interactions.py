"""Interactions import end to end: file -> service -> set-based loader -> database, on both backends."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patron.db import session_scope
from patron.imports.mapping import Mapping
from patron.models import Customer, CustomerExternalId, Interaction
from patron.models.enums import ImportStatus
from tests.factories import create_customer

FIELDS = ("customer_id", "occurred_at", "kind", "channel", "direction", "subject", "body")


def helpdesk(*fields: str, **extra) -> Mapping:
    """Headers named like the fields; customer ids from the 'helpdesk' source."""
    return Mapping.model_validate({"source": "helpdesk", "columns": {f: f for f in fields}, **extra})


def interactions(engine) -> list[Interaction]:
    with Session(engine) as s:
        return list(s.scalars(select(Interaction).order_by(Interaction.id)))


def counts(run) -> tuple[int, int, int, int]:
    return run.inserted, run.updated, run.unchanged, run.rejected


def add_customers(engine, *ids: str) -> dict[str, int]:
    """Customers known by their helpdesk id."""
    with session_scope(engine) as s:
        made = {ext: create_customer(s, external_ids={"helpdesk": ext}) for ext in ids}
        s.flush()
        return {ext: c.id for ext, c in made.items()}


def expected_key(customer_id, occurred_at: str, kind, channel, direction, subject, body) -> str:
    """The documented content hash, computed independently of the loader."""
    text = "|".join([customer_id, occurred_at, kind, channel, direction, subject, body])
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()


LOG = """customer_id,occurred_at,kind,channel,direction,subject,body
H1,2026-03-02 09:15:00,call,phone,,Delivery late,"Parcel stuck in depot, promised callback"
H1,2026-03-02T10:00:00+01:00,email_out,email,outbound,Re: Delivery late,
H2,2026-03-05 17:45:30,store_visit,in_store,,,
"""


def test_rows_without_an_id_are_keyed_by_a_content_hash(loader_harness):
    h = loader_harness
    ids = add_customers(h.engine, "H1", "H2")
    run = h.run("interactions", LOG, mapping=helpdesk(*FIELDS))
    assert run.status == ImportStatus.completed, run.message
    assert counts(run) == (3, 0, 0, 0)

    call, mail, visit = interactions(h.engine)
    assert (call.customer_id, str(call.kind), str(call.channel), str(call.direction)) == (
        ids["H1"],
        "call",
        "phone",
        "inbound",  # the default when the cell is blank
    )
    assert call.occurred_at == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
    assert call.body == "Parcel stuck in depot, promised callback"
    assert mail.occurred_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert str(mail.direction) == "outbound"
    assert (visit.customer_id, visit.subject, visit.body, visit.payload) == (ids["H2"], None, None, {})
    assert call.external_id == expected_key(
        "H1",
        "2026-03-02T09:15:00.000000+00:00",
        "call",
        "phone",
        "inbound",
        "Delivery late",
        "Parcel stuck in depot, promised callback",
    )
    assert visit.external_id == expected_key(
        "H2", "2026-03-05T17:45:30.000000+00:00", "store_visit", "in_store", "inbound", "", ""
    )

    again = h.run("interactions", LOG, mapping=helpdesk(*FIELDS))
    assert counts(again) == (0, 0, 3, 0)
    # The same rows without the direction column hash the same: inbound is the default.
    no_direction = "customer_id,occurred_at,kind,channel,subject,body\nH2,2026-03-05 17:45:30,store_visit,in_store,,\n"
    run = h.run("interactions", no_direction, mapping=helpdesk(*(f for f in FIELDS if f != "direction")))
    assert counts(run) == (0, 0, 1, 0)
    assert len(interactions(h.engine)) == 3


def test_source_ids_update_changed_fields_and_keep_blank_ones(loader_harness):
    h = loader_harness
    ids = add_customers(h.engine, "H1", "H2")
    fields = ("interaction_id", *FIELDS)
    first = """interaction_id,customer_id,occurred_at,kind,channel,direction,subject,body
T-1,H1,2026-04-01 08:00:00,complaint,email,inbound,Broken lid,The lid cracked on day one
T-2,H2,2026-04-02 08:00:00,chat,chat,inbound,Sizes,Do you have it in XL?
"""
    assert counts(h.run("interactions", first, mapping=helpdesk(*fields))) == (2, 0, 0, 0)
    assert [i.external_id for i in interactions(h.engine)] == ["T-1", "T-2"]

    edited = """interaction_id,customer_id,occurred_at,kind,channel,direction,subject,body
T-1,H1,2026-04-01 08:00:00,complaint,email,,Broken lid (replaced),
T-2,H2,2026-04-02 08:00:00,chat,chat,inbound,Sizes,Do you have it in XL?
T-3,H2,2026-04-03 12:30:00,note,internal,internal,,Prefers phone calls
"""
    run = h.run("interactions", edited, mapping=helpdesk(*fields))
    assert counts(run) == (1, 1, 1, 0)
    t1, _, t3 = interactions(h.engine)
    assert (t1.subject, t1.body, str(t1.direction)) == (
        "Broken lid (replaced)",
        "The lid cracked on day one",
        "inbound",
    )
    assert (t3.external_id, t3.customer_id, str(t3.direction)) == ("T-3", ids["H2"], "internal")

    moved = "interaction_id,customer_id,occurred_at,kind,channel\nT-2,H1,2026-04-02 08:00:00,chat,chat\n"
    run = h.run("interactions", moved, mapping=helpdesk("interaction_id", *FIELDS[:4]))
    assert counts(run) == (0, 1, 0, 0)
    assert interactions(h.engine)[1].customer_id == ids["H1"]


def test_unknown_customers_are_rejected_by_default(loader_harness):
    h = loader_harness
    add_customers(h.engine, "H1")
    content = (
        "customer_id,occurred_at,kind,channel\nH1,2026-01-10 09:00,call,phone\nZZ-404,2026-01-10 10:00,call,phone\n"
    )
    run = h.run("interactions", content, mapping=helpdesk(*FIELDS[:4]))
    assert counts(run) == (1, 0, 0, 1)
    (error,) = h.errors(run.id)
    assert (error["row"], error["column"], error["value"]) == ("3", "customer_id", "ZZ-404")
    assert error["reason"].startswith("no customer has helpdesk id ZZ-404")
    assert len(interactions(h.engine)) == 1


def test_unknown_customers_become_stubs_when_the_mapping_says_so(loader_harness):
    h = loader_harness
    add_customers(h.engine, "H1")
    content = """customer_id,occurred_at,kind,channel
H1,2026-01-10 09:00,call,phone
N-1,2026-01-10 10:00,call,phone
N-1,2026-01-11 10:00,email_in,email
N-2,2026-01-12 10:00,chat,chat
"""
    run = h.run("interactions", content, mapping=helpdesk(*FIELDS[:4], unknown_customers="stub"))
    assert counts(run) == (4, 0, 0, 0)
    assert run.options["stubs"] == {"customers": 2}
    assert "2 new customers" in run.message
    with Session(h.engine) as s:
        stubs = dict(
            s.execute(
                select(CustomerExternalId.external_id, Customer.first_name)
                .join(Customer, Customer.id == CustomerExternalId.customer_id)
                .where(CustomerExternalId.external_id.in_(["N-1", "N-2"]))
            ).all()
        )
    assert stubs == {"N-1": "", "N-2": ""}
    by_customer = {}
    for i in interactions(h.engine):
        by_customer.setdefault(i.customer_id, []).append(str(i.kind))
    assert sorted(map(len, by_customer.values())) == [1, 1, 2]

    # Known now: a second run makes no more stubs.
    again = h.run("interactions", content, mapping=helpdesk(*FIELDS[:4], unknown_customers="stub"))
    assert counts(again) == (0, 0, 4, 0)
    assert again.options["stubs"] == {}


def test_interactions_of_a_merged_customer_go_to_the_survivor(loader_harness):
    h = loader_harness
    ids = add_customers(h.engine, "KEEP", "GONE")
    with session_scope(h.engine) as s:
        s.execute(update(Customer).where(Customer.id == ids["GONE"]).values(merged_into_id=ids["KEEP"]))
    run = h.run(
        "interactions",
        "customer_id,occurred_at,kind,channel\nGONE,2026-02-01,note,internal\n",
        mapping=helpdesk(*FIELDS[:4]),
    )
    assert counts(run) == (1, 0, 0, 0)
    assert interactions(h.engine)[0].customer_id == ids["KEEP"]


def test_repeated_rows_missing_fields_and_bad_values_are_reported(loader_harness):
    h = loader_harness
    add_customers(h.engine, "H1")
    content = """customer_id,occurred_at,kind,channel,subject
H1,2026-01-10 09:00,call,phone,Same call
H1,2026-01-10 09:00,call,phone,Same call
,2026-01-10 09:00,call,phone,
H1,,call,phone,
H1,2026-01-10 09:00,telepathy,phone,
H1,10/01/2026,call,phone,
"""
    run = h.run("interactions", content, mapping=helpdesk(*FIELDS[:4], "subject"))
    assert counts(run) == (1, 0, 0, 5)
    errors = [(e["row"], e["column"], e["value"], e["reason"]) for e in h.errors(run.id)]
    assert errors[0][0] == "2" and "appears again on row 3" in errors[0][3]
    assert errors[1:3] == [
        ("4", "customer_id", "", "customer_id is empty; every interaction needs one"),
        ("5", "occurred_at", "", "occurred_at is empty; every interaction needs one"),
    ]
    assert errors[3][:3] == ("6", "kind", "telepathy")
    assert errors[3][3].startswith("must be one of store_visit, web_visit, call")
    assert errors[4][:3] == ("7", "occurred_at", "10/01/2026")
    assert errors[4][3].startswith("not a date and time")
    assert len(interactions(h.engine)) == 1


def test_the_web_channel_is_accepted(loader_harness):
    h = loader_harness
    add_customers(h.engine, "H1")
    run = h.run(
        "interactions",
        "customer_id,occurred_at,kind,channel\nH1,2026-01-10,web_visit,web\n",
        mapping=helpdesk(*FIELDS[:4]),
    )
    assert counts(run) == (1, 0, 0, 0)
    assert str(interactions(h.engine)[0].channel) == "web"
