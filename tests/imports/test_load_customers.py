"""Customers import end to end: file -> service -> set-based loader -> database, on both backends."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patron import validation
from patron.db import session_scope
from patron.imports.mapping import Mapping
from patron.models import ConsentEvent, Customer, CustomerExternalId
from patron.models.enums import ImportStatus
from tests.factories import create_customer

CRM = {"source": "crm"}


def crm_mapping(*fields: str, **extra) -> Mapping:
    """A mapping for a file whose headers are the field names, ids from the 'crm' source."""
    return Mapping.model_validate({**CRM, "columns": {f: f for f in fields}, **extra})


def customers(engine) -> dict[str, Customer]:
    """Stored customers by email (or by 'id:<n>' when they have none)."""
    with Session(engine) as s:
        found = s.scalars(select(Customer).order_by(Customer.id)).all()
        for c in found:
            _ = c.external_ids  # load before the session closes
        return {c.email or f"id:{c.id}": c for c in found}


def ext_ids(engine, source: str) -> dict[str, int]:
    with Session(engine) as s:
        rows = s.execute(
            select(CustomerExternalId.external_id, CustomerExternalId.customer_id).where(
                CustomerExternalId.source == source
            )
        )
        return {ext: cid for ext, cid in rows}


def consents(engine) -> list[tuple[int, str, str, str, str]]:
    with Session(engine) as s:
        rows = s.execute(
            select(
                ConsentEvent.customer_id,
                ConsentEvent.channel,
                ConsentEvent.purpose,
                ConsentEvent.status,
                ConsentEvent.source,
            ).order_by(ConsentEvent.id)
        )
        return [(cid, str(ch), str(p), str(st), src) for cid, ch, p, st, src in rows]


def counts(run) -> tuple[int, int, int, int]:
    return run.inserted, run.updated, run.unchanged, run.rejected


BASIC = """customer_id,email,first_name,last_name,phone,city,country,birthday,postal_code
C1,Ann.Lee@Shop.example,Ann,Lee,(212) 555-0187,New York,US,1990-04-01,10001
C2,bob@shop.example,Bob,Stone,,Boston,United States,,02134
C3,,Cem,Kaya,+49 30 901820,Berlin,DE,1985-12-24,
"""


def test_insert_then_same_file_again_is_all_unchanged(loader_harness):
    h = loader_harness
    run = h.run("customers", BASIC, mapping=crm_mapping(*BASIC.splitlines()[0].split(",")))
    assert run.status == ImportStatus.completed, run.message
    assert counts(run) == (3, 0, 0, 0)
    assert run.rows_read == 3

    stored = customers(h.engine)
    ann = stored["ann.lee@shop.example"]
    assert (ann.first_name, ann.last_name, ann.phone, ann.city, ann.country) == (
        "Ann",
        "Lee",
        "+12125550187",
        "New York",
        "US",
    )
    assert ann.birthday == date(1990, 4, 1)
    assert ann.acquired_at is None  # not in the file: stays unknown, not "today"
    assert ann.interests == [] and ann.attributes == {}
    assert stored["bob@shop.example"].country == "US"
    assert stored["bob@shop.example"].postal_code == "02134"
    cem = next(c for c in stored.values() if c.first_name == "Cem")
    assert cem.email is None and cem.phone == "+4930901820"
    assert ext_ids(h.engine, "crm") == {"C1": ann.id, "C2": stored["bob@shop.example"].id, "C3": cem.id}

    again = h.run("customers", BASIC, mapping=crm_mapping(*BASIC.splitlines()[0].split(",")))
    assert counts(again) == (0, 0, 3, 0)
    after = customers(h.engine)
    assert len(after) == 3
    assert {k: c.updated_at for k, c in after.items()} == {k: c.updated_at for k, c in stored.items()}


def test_edited_file_updates_only_changed_rows_and_blank_cells_keep_values(loader_harness):
    h = loader_harness
    fields = BASIC.splitlines()[0].split(",")
    h.run("customers", BASIC, mapping=crm_mapping(*fields))
    before = customers(h.engine)

    edited = """customer_id,email,first_name,last_name,phone,city,country,birthday,postal_code
C1,ann.lee@shop.example,Ann,Lee,(212) 555-0187,Brooklyn,US,1990-04-01,11201
C2,,,,,,,,
C3,cem@kaya.example,Cem,Kaya,+49 30 901820,Berlin,DE,1985-12-24,
"""
    run = h.run("customers", edited, mapping=crm_mapping(*fields))
    assert counts(run) == (0, 2, 1, 0)

    after = customers(h.engine)
    ann = after["ann.lee@shop.example"]
    assert (ann.city, ann.postal_code) == ("Brooklyn", "11201")
    assert ann.updated_at > before["ann.lee@shop.example"].updated_at
    bob = after["bob@shop.example"]  # every cell blank: nothing cleared, nothing touched
    assert (bob.first_name, bob.last_name, bob.city, bob.postal_code) == ("Bob", "Stone", "Boston", "02134")
    assert bob.updated_at == before["bob@shop.example"].updated_at
    cem = after["cem@kaya.example"]  # an email added to a customer found by id
    assert cem.phone == "+4930901820"
    assert len(after) == 3


def test_columns_not_mapped_are_left_alone(loader_harness):
    h = loader_harness
    h.run("customers", BASIC, mapping=crm_mapping(*BASIC.splitlines()[0].split(",")))
    only_city = "customer_id,city\nC1,Queens\nC2,Boston\n"
    run = h.run("customers", only_city, mapping=crm_mapping("customer_id", "city"))
    assert counts(run) == (0, 1, 1, 0)
    ann = customers(h.engine)["ann.lee@shop.example"]
    assert (ann.city, ann.phone, ann.postal_code, ann.first_name) == ("Queens", "+12125550187", "10001", "Ann")


def test_email_match_adds_the_external_id_to_the_existing_customer(loader_harness):
    h = loader_harness
    with session_scope(h.engine) as s:
        dana = create_customer(s, first_name="Dana", last_name="Fox", email="dana@shop.example")
        eve = create_customer(s, first_name="Eve", last_name="Ng", email="eve@shop.example", external_ids={"crm": "E1"})
        dana_id, eve_id = dana.id, eve.id

    content = "customer_id,email,city\nD9,DANA@shop.example,Leeds\nX7,eve@shop.example,York\n"
    run = h.run("customers", content, mapping=crm_mapping("customer_id", "email", "city"))
    assert counts(run) == (0, 1, 0, 1)
    assert ext_ids(h.engine, "crm") == {"D9": dana_id, "E1": eve_id}
    stored = customers(h.engine)
    assert stored["dana@shop.example"].city == "Leeds"
    assert stored["eve@shop.example"].city is None  # the rejected row wrote nothing
    assert len(stored) == 2

    (error,) = h.errors(run.id)
    assert error == {
        "row": "3",
        "column": "email",
        "value": "eve@shop.example",
        "reason": f"email eve@shop.example belongs to customer {eve_id}, whose crm id is E1, not X7",
    }

    # Linked now: the same file finds Dana by her id and changes nothing.
    again = h.run(
        "customers",
        "customer_id,email,city\nD9,dana@shop.example,Leeds\n",
        mapping=crm_mapping("customer_id", "email", "city"),
    )
    assert counts(again) == (0, 0, 1, 0)


def test_merged_customers_resolve_to_the_survivor(loader_harness):
    h = loader_harness
    with session_scope(h.engine) as s:
        survivor = create_customer(s, first_name="Sam", last_name="Ray", email="sam@shop.example")
        merged = create_customer(
            s, first_name="Sammy", last_name="Ray", email="sammy@old.example", external_ids={"crm": "OLD-1"}
        )
        s.flush()
        s.execute(update(Customer).where(Customer.id == merged.id).values(merged_into_id=survivor.id))
        survivor_id, merged_id = survivor.id, merged.id

    by_id = "customer_id,city\nOLD-1,Porto\n"
    run = h.run("customers", by_id, mapping=crm_mapping("customer_id", "city"))
    assert counts(run) == (0, 1, 0, 0)
    stored = {c.id: c for c in customers(h.engine).values()}
    assert stored[survivor_id].city == "Porto"
    assert stored[merged_id].city is None

    # The merged record's email also leads to the survivor, and is not moved onto it.
    by_email = "email,region,sms_marketing\nsammy@old.example,Norte,yes\n"
    run = h.run("customers", by_email, mapping=crm_mapping("email", "region", "sms_marketing"))
    assert counts(run) == (0, 1, 0, 0)
    stored = {c.id: c for c in customers(h.engine).values()}
    assert (stored[survivor_id].region, stored[survivor_id].email) == ("Norte", "sam@shop.example")
    assert stored[merged_id].region is None
    assert consents(h.engine) == [(survivor_id, "sms", "marketing", "granted", "import")]
    assert len(stored) == 2


def test_repeated_id_and_shared_email_within_a_file_are_reported(loader_harness):
    h = loader_harness
    content = """customer_id,email,first_name
A1,first@shop.example,Ada
B2,b@shop.example,Ben
A1,second@shop.example,Ada
C3,b@shop.example,Cy
,nobody-id@shop.example,Dee
,nobody-id@shop.example,Dee2
,,Ghost
"""
    run = h.run("customers", content, mapping=crm_mapping("customer_id", "email", "first_name"))
    assert counts(run) == (3, 0, 0, 4)
    assert run.rows_read == run.inserted + run.updated + run.unchanged + run.rejected

    errors = {int(e["row"]): e for e in h.errors(run.id)}
    assert set(errors) == {2, 5, 6, 8}
    assert errors[2]["column"] == "customer_id"
    assert errors[2]["value"] == "A1"
    assert errors[2]["reason"] == "customer id A1 appears again on row 4; that later row is used"
    assert errors[5]["column"] == "email"
    assert errors[5]["value"] == "b@shop.example"
    assert errors[5]["reason"] == (
        "email b@shop.example is also on row 3 (customer id B2), and customer id C3 is a different customer; "
        "an email belongs to one customer, so the first row keeps it"
    )
    assert "email nobody-id@shop.example appears again on row 7" in errors[6]["reason"]
    assert "neither a customer id nor an email" in errors[8]["reason"]

    stored = customers(h.engine)
    assert set(stored) == {"second@shop.example", "b@shop.example", "nobody-id@shop.example"}
    assert stored["b@shop.example"].first_name == "Ben"
    assert stored["nobody-id@shop.example"].first_name == "Dee2"


def test_email_of_another_customer_is_not_taken_from_them(loader_harness):
    h = loader_harness
    content = "customer_id,email\nK1,kim@shop.example\nL1,lou@shop.example\n"
    h.run("customers", content, mapping=crm_mapping("customer_id", "email"))
    kim_id = ext_ids(h.engine, "crm")["K1"]

    run = h.run("customers", "customer_id,email\nK1,lou@shop.example\n", mapping=crm_mapping("customer_id", "email"))
    assert counts(run) == (0, 0, 0, 1)
    (error,) = h.errors(run.id)
    lou_id = ext_ids(h.engine, "crm")["L1"]
    assert error["column"] == "email"
    assert error["reason"] == f"email lou@shop.example belongs to customer {lou_id}, but crm id K1 is customer {kim_id}"
    assert set(customers(h.engine)) == {"kim@shop.example", "lou@shop.example"}


def test_bad_values_are_reported_with_row_column_value_and_reason(loader_harness):
    h = loader_harness
    content = """customer_id,email,phone,country,birthday
G1,good@shop.example,(212) 555-0187,US,1990-01-31
G2,not-an-email,,,
G3,g3@shop.example,12345,,
G4,g4@shop.example,,Atlantis,
G5,g5@shop.example,,,31/01/1990
"""
    run = h.run("customers", content, mapping=crm_mapping("customer_id", "email", "phone", "country", "birthday"))
    assert counts(run) == (1, 0, 0, 4)
    errors = [(e["row"], e["column"], e["value"], e["reason"]) for e in h.errors(run.id)]
    assert errors == [
        ("3", "email", "not-an-email", "not an email address"),
        ("4", "phone", "12345", "not a valid phone number for its country"),
        ("5", "country", "Atlantis", "not a country code or English country name"),
        ("6", "birthday", "31/01/1990", "not a date (expected %Y-%m-%d)"),
    ]
    assert set(customers(h.engine)) == {"good@shop.example"}


def test_full_name_is_split_into_first_and_last(loader_harness):
    h = loader_harness
    content = """customer_id,name,first_name
N1,Anna Maria Schmidt,
N2,Prince,
N3,Jo  Van Dyke,Joanna
N4,{long} Smith,
"""
    content = content.replace("{long}", "A" * 101)
    run = h.run("customers", content, mapping=crm_mapping("customer_id", "name", "first_name"))
    assert counts(run) == (3, 0, 0, 1)
    (error,) = h.errors(run.id)
    assert (error["row"], error["column"], error["value"]) == ("5", "name", "A" * 101 + " Smith")
    assert error["reason"] == "the first name in this name is longer than 100 characters"
    stored = {c.external_ids[0].external_id: c for c in customers(h.engine).values()}
    assert (stored["N1"].first_name, stored["N1"].last_name) == ("Anna Maria", "Schmidt")
    assert (stored["N2"].first_name, stored["N2"].last_name) == ("Prince", "")
    assert (stored["N3"].first_name, stored["N3"].last_name) == ("Joanna", "Dyke")

    again = h.run("customers", content, mapping=crm_mapping("customer_id", "name", "first_name"))
    assert counts(again) == (0, 0, 3, 1)


def test_names_are_normalised_like_the_customer_form(loader_harness):
    if not hasattr(validation, "normalise_name"):
        pytest.skip("patron.validation.normalise_name is not there in this checkout")
    h = loader_harness
    content = "customer_id,first_name,last_name,name\nU1,ANNE,DE LA CRUZ,\nU2,,,maria mcdonald\n"
    run = h.run("customers", content, mapping=crm_mapping("customer_id", "first_name", "last_name", "name"))
    assert counts(run) == (2, 0, 0, 0)
    stored = {c.external_ids[0].external_id: c for c in customers(h.engine).values()}
    assert (stored["U1"].first_name, stored["U1"].last_name) == (
        validation.normalise_name("ANNE"),
        validation.normalise_name("DE LA CRUZ"),
    )
    assert stored["U1"].first_name == "Anne"
    assert (stored["U2"].first_name, stored["U2"].last_name) == ("Maria", "McDonald")
    assert counts(
        h.run("customers", content, mapping=crm_mapping("customer_id", "first_name", "last_name", "name"))
    ) == (
        0,
        0,
        2,
        0,
    )


SHOPIFY_HEADER = (
    "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Company,"
    "Default Address Address1,Default Address Address2,Default Address City,Default Address Province Code,"
    "Default Address Country Code,Default Address Zip,Default Address Phone,Phone,Accepts SMS Marketing,"
    "Total Spent,Total Orders,Note,Tax Exempt,Tags"
)
SHOPIFY_NEW = (
    SHOPIFY_HEADER
    + """
'7210448301122,Teodoro,Villaseñor,teo.villasenor@example.com,yes,Villaseñor Ranch,HC 31 Box 4500,,Elko,NV,US,'89801,'+17755550154,'+17755550154,no,7790.44,6,Cattle ranch.,yes,"retail, vip"
'7210448301123,Hollis,Pettibone,Hollis.Pettibone@Example.com,no,,3910 Harrison Blvd,,Ogden,UT,US,'84403,,,no,120.00,2,,no,
'7210448301124,Maëlle,Durand,maelle.durand@example.fr,yes,,12 rue des Lilas,,Lyon,,FR,'69003,,'+33 6 12 34 56 78,yes,45.50,1,,no,newsletter
"""  # noqa: E501
)
SHOPIFY_OLD = """First Name,Last Name,Email,Accepts Marketing,Company,Address1,Address2,City,Province,Province Code,Country,Country Code,Zip,Phone,Total Spent,Total Orders,Tags,Note,Tax Exempt
Hollis,Pettibone,hollis.pettibone@example.com,yes,,3910 Harrison Blvd,,Ogden,Utah,UT,United States,US,'84403,+1 801-555-0199,120.00,2,,,no
Priya,Raman,priya.raman@example.com,no,,22 Beacon St,,Boston,Massachusetts,MA,United States,US,'02108,,0.00,0,,,no
"""  # noqa: E501


def test_shopify_customers_export_with_consents(loader_harness):
    h = loader_harness
    run = h.run("customers", SHOPIFY_NEW, preset="shopify", name="customers_export.csv")
    assert run.status == ImportStatus.completed, run.message
    assert counts(run) == (3, 0, 0, 0)

    stored = customers(h.engine)
    teo = stored["teo.villasenor@example.com"]
    assert (teo.first_name, teo.last_name, teo.address_line, teo.city, teo.region, teo.country) == (
        "Teodoro",
        "Villaseñor",
        "HC 31 Box 4500",
        "Elko",
        "NV",
        "US",
    )
    assert (teo.postal_code, teo.phone) == ("89801", "+17755550154")  # Excel's ' guard removed
    maelle = stored["maelle.durand@example.fr"]
    assert (maelle.first_name, maelle.country, maelle.postal_code, maelle.phone) == (
        "Maëlle",
        "FR",
        "69003",
        "+33612345678",
    )
    hollis = stored["hollis.pettibone@example.com"]
    assert ext_ids(h.engine, "shopify") == {
        "7210448301122": teo.id,
        "7210448301123": hollis.id,
        "7210448301124": maelle.id,
    }
    # "yes" records a grant; "no" for someone never asked records nothing.
    assert sorted(consents(h.engine)) == sorted(
        [
            (teo.id, "email", "marketing", "granted", "import"),
            (maelle.id, "email", "marketing", "granted", "import"),
            (maelle.id, "sms", "marketing", "granted", "import"),
        ]
    )

    again = h.run("customers", SHOPIFY_NEW, preset="shopify", name="customers_export.csv")
    assert counts(again) == (0, 0, 3, 0)
    assert len(consents(h.engine)) == 3

    # Teodoro unsubscribes, Hollis subscribes to SMS: one event each, appended to the history.
    flipped = SHOPIFY_NEW.replace("teo.villasenor@example.com,yes", "teo.villasenor@example.com,no").replace(
        "'84403,,,no,", "'84403,,,yes,"
    )
    run = h.run("customers", flipped, preset="shopify", name="customers_export.csv")
    assert counts(run) == (0, 2, 1, 0)
    assert consents(h.engine)[3:] == [
        (teo.id, "email", "marketing", "withdrawn", "import"),
        (hollis.id, "sms", "marketing", "granted", "import"),
    ]


def test_old_shopify_export_without_customer_id_matches_on_email(loader_harness):
    h = loader_harness
    old = h.run("customers", SHOPIFY_OLD, preset="shopify", name="customers_export_2019.csv")
    assert counts(old) == (2, 0, 0, 0)
    stored = customers(h.engine)
    hollis = stored["hollis.pettibone@example.com"]
    assert (hollis.city, hollis.region, hollis.country, hollis.postal_code, hollis.phone) == (
        "Ogden",
        "UT",
        "US",
        "84403",
        "+18015550199",
    )
    assert stored["priya.raman@example.com"].postal_code == "02108"
    assert ext_ids(h.engine, "shopify") == {}
    assert consents(h.engine) == [(hollis.id, "email", "marketing", "granted", "import")]

    # The new export finds Hollis by email and links his Shopify id; his consent changes.
    new = h.run("customers", SHOPIFY_NEW, preset="shopify", name="customers_export.csv")
    assert counts(new) == (2, 1, 0, 0)
    assert ext_ids(h.engine, "shopify")["7210448301123"] == hollis.id
    assert customers(h.engine)["hollis.pettibone@example.com"].phone == "+18015550199"  # blank Phone kept it
    hollis_events = [e for e in consents(h.engine) if e[0] == hollis.id]
    assert hollis_events == [
        (hollis.id, "email", "marketing", "granted", "import"),
        (hollis.id, "email", "marketing", "withdrawn", "import"),
    ]


def test_latin1_file_is_read_with_automatic_encoding(loader_harness):
    h = loader_harness
    content = "customer_id;first_name;last_name;city\nL1;José;Muñoz;Málaga\nL2;Françoise;Müller;Zürich\n"
    raw = content.encode("latin-1")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    run = h.run("customers", raw, mapping=crm_mapping("customer_id", "first_name", "last_name", "city"))
    assert counts(run) == (2, 0, 0, 0)
    names = {(c.first_name, c.last_name, c.city) for c in customers(h.engine).values()}
    assert names == {("José", "Muñoz", "Málaga"), ("Françoise", "Müller", "Zürich")}


def test_batches_see_each_other_and_a_dry_run_saves_nothing(loader_harness):
    h = loader_harness
    content = "customer_id,email,city\n" + "".join(f"B{i},b{i}@shop.example,Town {i}\n" for i in range(5))
    content += "B1,b1@shop.example,Moved\n"  # in a later batch: updates what batch 1 inserted
    mapping = crm_mapping("customer_id", "email", "city")

    dry = h.run("customers", content, mapping=mapping, batch_size=2, dry_run=True)
    assert dry.status == ImportStatus.completed, dry.message
    assert counts(dry) == (5, 1, 0, 0)
    assert customers(h.engine) == {}

    real = h.run("customers", content, mapping=mapping, batch_size=2)
    assert counts(real) == (5, 1, 0, 0)
    assert customers(h.engine)["b1@shop.example"].city == "Moved"
