"""Customer pages: list and search, the 360 view, notes, and the create/edit forms."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from html import unescape

import pytest

from patron.customer360 import service as customer360
from patron.customers import service as customers
from patron.customers.schemas import ConsentChange
from tests.factories import create_customer, create_interaction, create_order, create_product


def rows(html: str) -> list[str]:
    """Customer names in the list table, in order."""
    return [unescape(m) for m in re.findall(r'class="row-link" href="/customers/\d+">([^<]+)</a>', html)]


def next_link(html: str) -> str | None:
    match = re.search(r'href="([^"]+)" rel="next"', html)
    return unescape(match.group(1)) if match else None


def timeline_titles(html: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'<span class="tl-title">([^<]*)</span>', html)]


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    return unescape(match.group(1)) if match else None


def input_value(html: str, field: str) -> str:
    match = re.search(rf'id="f-{field}" name="{field}"[^>]*value="([^"]*)"', html)
    assert match, f"no input {field}"
    return unescape(match.group(1))


# --- list ---------------------------------------------------------------------------------


def test_search_by_name_email_and_phone(session, admin_web):
    create_customer(session, first_name="Ada", last_name="Lovelace", email="ada@engine.example", phone="+442079460000")
    create_customer(session, first_name="Charles", last_name="Babbage", email="charles@engine.example")
    assert rows(admin_web.get("/customers?q=lovel").text) == ["Ada Lovelace"]
    assert rows(admin_web.get("/customers?q=Ada Love").text) == ["Ada Lovelace"]
    assert rows(admin_web.get("/customers?q=charles@").text) == ["Charles Babbage"]
    assert rows(admin_web.get("/customers?q=020 7946 0000").text) == ["Ada Lovelace"]
    page = admin_web.get("/customers?q=nobody-like-this").text
    assert rows(page) == [] and "No customers match these filters." in page


def test_filters_and_sort(session, admin_web):
    create_customer(session, first_name="Ann", last_name="Zed", country="GB", city="Leeds", gender="female")
    create_customer(session, first_name="Bob", last_name="Young", country="GB", city="York", gender="male")
    create_customer(session, first_name="Cat", last_name="Xu", country="FR", city="Paris", gender="female")
    assert rows(admin_web.get("/customers?country=gb&sort=last_name").text) == ["Bob Young", "Ann Zed"]
    assert rows(admin_web.get("/customers?city=leeds").text) == ["Ann Zed"]
    assert rows(admin_web.get("/customers?gender=female&sort=-last_name").text) == ["Ann Zed", "Cat Xu"]
    page = admin_web.get("/customers?country=GB&gender=&sort=last_name").text
    assert 'value="GB"' in page and '<option value="last_name" selected>' in page
    assert admin_web.get("/customers?gender=robot").status_code == 422


def test_each_row_links_to_the_360(session, admin_web):
    customer = create_customer(session, first_name="Grace", last_name="Hopper")
    assert f'href="/customers/{customer.id}">Grace Hopper</a>' in admin_web.get("/customers").text


def test_cursor_pagination_keeps_the_filters(session, admin_web):
    for i in range(30):
        create_customer(session, first_name=f"P{i:02d}", last_name="Paged", city="Ghent")
    create_customer(session, first_name="Other", last_name="Town", city="Bruges")
    first = admin_web.get("/customers?city=Ghent&sort=last_name")
    names = rows(first.text)
    assert len(names) == 25 and "Other Town" not in names
    link = next_link(first.text)
    assert link and "city=Ghent" in link and "sort=last_name" in link and "cursor=" in link
    second = admin_web.get(link)
    more = rows(second.text)
    assert len(more) == 5 and not set(more) & set(names)
    assert next_link(second.text) is None
    assert "First page" in second.text


# --- 360 ----------------------------------------------------------------------------------


@pytest.fixture
def shopper(session):
    customer = create_customer(
        session,
        first_name="Ada",
        last_name="Lovelace",
        email="ada@engine.example",
        phone="+442079460000",
        city="London",
        country="GB",
        address_line="12 St James's Square",
        gender="female",
        age_band="35-44",
        interests=["maths", "poetry"],
        acquisition_channel="referral",
        external_ids={"shop": "A-1001"},
        consents=[ConsentChange(channel="email", status="granted", source="web")],
    )
    customers.record_consent(session, customer.id, change=ConsentChange(channel="sms", status="withdrawn"))
    book = create_product(session, category_path="Books/Science", brand="Analytical Press")
    pen = create_product(session, category_path="Stationery", brand="Quill & Co")
    create_order(session, customer, [(book, 2, Decimal("30.00"))], placed_at=datetime(2026, 3, 1, 10, tzinfo=UTC))
    create_order(
        session,
        customer,
        [(pen, 1, Decimal("15.50"))],
        placed_at=datetime(2026, 5, 2, 10, tzinfo=UTC),
        channel="in_store",
    )
    create_interaction(
        session, customer, "call", subject="Asked about delivery", occurred_at=datetime(2026, 4, 1, tzinfo=UTC)
    )
    return customer


def test_360_shows_profile_kpis_consents_and_timeline(admin_web, shopper):
    page = admin_web.get(f"/customers/{shopper.id}")
    assert page.status_code == 200
    html = unescape(page.text)
    for text in ("Ada Lovelace", "ada@engine.example", "+442079460000", "12 St James's Square", "London",
                 "35-44", "maths", "poetry", "A-1001", "Referral", "Books/Science", "Analytical Press",
                 "Quill & Co", "In store"):  # fmt: skip
        assert text in html, text
    assert re.search(r'data-kpi="orders">2<', html)
    assert re.search(r'data-kpi="spend">75\.50<', html)
    assert re.search(r'data-kpi="aov">37\.75<', html)
    assert re.search(r'data-kpi="first">01 Mar 2026<', html)
    assert re.search(r'data-kpi="last">02 May 2026<', html)
    consents = html.split('id="consents"', 1)[1].split("</table>", 1)[0]
    assert "Email" in consents and "Granted" in consents and "SMS" in consents and "Withdrawn" in consents
    titles = timeline_titles(page.text)
    assert len(titles) == 3
    assert titles[0].startswith("Order") and "15.50" in titles[0]
    assert titles[1] == "Asked about delivery"
    assert "60.00" in titles[2]


def test_360_timeline_older_pages(session, admin_web):
    customer = create_customer(session)
    for day in range(1, 26):
        create_interaction(
            session, customer, "note", body=f"note {day}", occurred_at=datetime(2026, 1, day, tzinfo=UTC)
        )
    first = admin_web.get(f"/customers/{customer.id}")
    titles = timeline_titles(first.text)
    assert len(titles) == 20
    link = next_link(first.text)
    assert link and "cursor=" in link
    second = admin_web.get(link.split("#", 1)[0])
    bodies = re.findall(r'<p class="tl-text">note (\d+)</p>', second.text)
    assert bodies == ["5", "4", "3", "2", "1"]
    assert next_link(second.text) is None


def test_add_note_shows_on_top_of_the_timeline(session, admin_web, shopper):
    r = admin_web.submit(f"/customers/{shopper.id}/notes", {"body": "Called back <b>about</b> the refund"})
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"/customers/{shopper.id}")
    page = admin_web.get(f"/customers/{shopper.id}").text
    first_item = page.split('<li class="tl-item', 2)[1]
    assert 'data-kind="note"' in first_item
    assert "Called back &lt;b&gt;about&lt;/b&gt; the refund" in first_item  # escaped, not markup
    assert f"by {admin_web.user.name}" in first_item
    notes = [e for e in customer360.timeline(session, shopper.id)[0] if e.kind == "note"]
    assert len(notes) == 1


def test_empty_note_is_refused_with_a_message(session, admin_web, shopper):
    r = admin_web.submit(f"/customers/{shopper.id}/notes", {"body": "   "})
    assert r.status_code == 422
    assert field_error(r.text, "body") == "a note needs a body"
    assert not [e for e in customer360.timeline(session, shopper.id)[0] if e.kind == "note"]


def test_note_for_unknown_customer_is_404(admin_web):
    assert admin_web.submit("/customers/2000000/notes", {"body": "hello"}).status_code == 404


# --- create -------------------------------------------------------------------------------


def test_create_customer_and_land_on_the_360(session, admin_web):
    r = admin_web.submit(
        "/customers/new",
        {
            "first_name": "Mary",
            "last_name": "Somerville",
            "email": "Mary@Science.example",
            "phone": "",
            "birthday": "1980-12-26",
            "gender": "female",
            "country": "gb",
            "city": "Jedburgh",
            "age_band": "45-54",
            "household_size": "4",
            "children": "2",
            "interests": "astronomy, Maths, , astronomy",
            "preferred_channel": "email",
            "language": "en-GB",
            "time_zone": "Europe/London",
        },
    )
    assert r.status_code == 303, r.text
    customer_id = int(r.headers["location"].rsplit("/", 1)[1])
    stored = customers.get_customer(session, customer_id)
    assert stored.email == "mary@science.example"
    assert stored.phone is None
    assert stored.birthday == date(1980, 12, 26)
    assert stored.country == "GB"
    assert stored.household_size == 4 and stored.children == 2
    assert stored.interests == ["astronomy", "maths"]
    assert stored.time_zone == "Europe/London"
    page = admin_web.get(r.headers["location"])
    assert "<h1>Mary Somerville</h1>" in page.text


def test_form_errors_are_shown_next_to_their_fields_with_the_entered_values(session, admin_web):
    before = customers.count_customers(session)
    r = admin_web.submit(
        "/customers/new",
        {
            "first_name": "Ada",
            "email": "not-an-email",
            "phone": "12",
            "country": "XX",
            "household_size": "2",
            "children": "3",
            "time_zone": "Mars/Olympus",
            "birthday": "2999-01-01",
        },
    )
    assert r.status_code == 422
    assert "not a valid email address" in field_error(r.text, "email")
    assert field_error(r.text, "phone").startswith("not a")
    assert "not an ISO 3166-1" in field_error(r.text, "country")
    assert "IANA time zone" in field_error(r.text, "time_zone")
    assert field_error(r.text, "birthday") == "must not be in the future"
    assert field_error(r.text, "first_name") is None
    # What was typed is kept, so nothing has to be entered twice.
    assert input_value(r.text, "email") == "not-an-email"
    assert input_value(r.text, "first_name") == "Ada"
    assert customers.count_customers(session) == before


def test_cross_field_error_lands_on_its_field(admin_web):
    r = admin_web.submit("/customers/new", {"first_name": "Ada", "household_size": "2", "children": "3"})
    assert r.status_code == 422
    assert field_error(r.text, "children") == "must be fewer than household_size"


def test_an_empty_form_says_what_is_needed(admin_web):
    r = admin_web.submit("/customers/new", {"first_name": "", "email": ""})
    assert r.status_code == 422
    assert "give at least a name, an email, a phone or an external id" in r.text


def test_duplicate_email_is_shown_on_the_email_field(session, admin_web):
    existing = create_customer(session, email="taken@shop.example")
    before = customers.count_customers(session)
    r = admin_web.submit("/customers/new", {"first_name": "Copy", "email": "TAKEN@shop.example"})
    assert r.status_code == 409
    assert field_error(r.text, "email") == f"another customer (id {existing.id}) already has email taken@shop.example"
    assert customers.count_customers(session) == before


def test_nul_characters_are_refused(session, admin_web):
    before = customers.count_customers(session)
    r = admin_web.submit("/customers/new", {"first_name": "Nul\x00l"})
    assert r.status_code == 422
    assert customers.count_customers(session) == before


# --- edit ---------------------------------------------------------------------------------


def test_edit_form_is_filled_with_the_stored_values(admin_web, shopper):
    page = admin_web.get(f"/customers/{shopper.id}/edit").text
    assert input_value(page, "email") == "ada@engine.example"
    assert input_value(page, "interests") == "maths, poetry"
    assert '<option value="female" selected>' in page


def test_edit_changes_only_the_submitted_fields(session, admin_web, shopper):
    r = admin_web.submit(f"/customers/{shopper.id}/edit", {"city": "Bath", "interests": "maths, chess"})
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{shopper.id}"
    session.expire_all()
    stored = customers.get_customer(session, shopper.id)
    assert stored.city == "Bath"
    assert stored.interests == ["maths", "chess"]
    assert stored.email == "ada@engine.example"
    assert stored.phone == "+442079460000"
    assert stored.country == "GB"
    assert stored.gender == "female"
    assert stored.address_line == "12 St James's Square"
    assert stored.external_ids[0].external_id == "A-1001"


def test_edit_with_a_blank_input_clears_that_field(session, admin_web, shopper):
    r = admin_web.submit(f"/customers/{shopper.id}/edit", {"phone": "", "age_band": ""})
    assert r.status_code == 303
    session.expire_all()
    stored = customers.get_customer(session, shopper.id)
    assert stored.phone is None and stored.age_band is None
    assert stored.email == "ada@engine.example"


def test_edit_errors_rerender_and_change_nothing(session, admin_web, shopper):
    other = create_customer(session, email="other@shop.example")
    r = admin_web.submit(f"/customers/{shopper.id}/edit", {"city": "Bath", "email": other.email})
    assert r.status_code == 409
    assert "already has email other@shop.example" in field_error(r.text, "email")
    r = admin_web.submit(f"/customers/{shopper.id}/edit", {"city": "Bath", "children": "-1"})
    assert r.status_code == 422
    assert field_error(r.text, "children")
    session.expire_all()
    assert customers.get_customer(session, shopper.id).city == "London"


def test_edit_unknown_customer_is_404(admin_web):
    assert admin_web.get("/customers/2000000/edit").status_code == 404
    assert admin_web.submit("/customers/2000000/edit", {"city": "Bath"}).status_code == 404
