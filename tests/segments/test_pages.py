"""The segment pages: list, rule builder and live preview, a segment's report and members, compare, snapshots."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from patron.models import AnalysisRun, CustomerScore, Order, Segment, SegmentMember, SegmentSnapshot
from patron.models.enums import AnalysisStatus, SegmentKind
from patron.segments import service
from patron.users import service as users
from tests.factories import create_customer, create_order
from tests.web.conftest import PASSWORD, WebClient

_seq = itertools.count(1)
MANAGERS = ("admin", "marketer", "analyst")
GB_FEMALE = {
    "all": [{"field": "country", "op": "eq", "value": "GB"}, {"field": "gender", "op": "eq", "value": "female"}]
}


@pytest.fixture
def web(app, session):
    """web(role) -> a client signed in through /login as a new user with that role."""

    def make(role: str = "admin") -> WebClient:
        n = next(_seq)
        user = users.create_user(session, email=f"segpages{n}@patron.example", password=PASSWORD, role=role)
        client = WebClient(app, follow_redirects=False)
        client.refresh_csrf("/login")
        assert client.submit("/login", {"email": user.email, "password": PASSWORD}).status_code == 303
        client.refresh_csrf("/segments")
        return client

    return make


@pytest.fixture
def admin_web(web) -> WebClient:
    return web("admin")


@pytest.fixture
def people(session):
    """Five customers: three in GB (two women), one in FR, one in US; Ada and Grace have orders."""
    made = {
        "ada": create_customer(session, first_name="Ada", last_name="Lovelace", country="GB", gender="female"),
        "mary": create_customer(session, first_name="Mary", last_name="Somerville", country="GB", gender="female"),
        "alan": create_customer(session, first_name="Alan", last_name="Turing", country="GB", gender="male"),
        "marie": create_customer(session, first_name="Marie", last_name="Curie", country="FR", gender="female"),
        "grace": create_customer(session, first_name="Grace", last_name="Hopper", country="US", gender="female"),
    }
    # In this calendar month (the segment report charts the last 12) and already past: the 1st
    # at 09:00 would be in the future, and refused, early on the 1st.
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    create_order(session, made["ada"], placed_at=start + (now - start) / 3)
    create_order(session, made["grace"], placed_at=start + (now - start) * 2 / 3)
    return made


def segment_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Segment))


def members_of(session, segment_id: int) -> set[int]:
    return set(session.scalars(select(SegmentMember.customer_id).where(SegmentMember.segment_id == segment_id)))


def new_segment_id(response) -> int:
    assert response.status_code == 303, response.text
    return int(re.fullmatch(r"/segments/(\d+)", response.headers["location"]).group(1))


def builtin(session, key: str) -> Segment:
    return session.scalars(select(Segment).where(Segment.builtin_key == key)).one()


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("role", ["viewer", "agent", "marketer", "analyst", "admin"])
def test_every_page_renders_for_a_reader(web, session, people, role):
    client = web(role)
    dynamic = service.create_segment(session, name="GB women", rule=GB_FEMALE)
    static = service.create_segment(session, name="Picked", kind=SegmentKind.static, customer_ids=[people["alan"].id])
    service.take_snapshot(session)
    service.take_snapshot(session)
    for path in (
        "/segments",
        f"/segments/{dynamic.id}",
        f"/segments/{static.id}",
        f"/segments/compare?first={dynamic.id}&second={static.id}",
        "/segments/compare",
        "/segments/snapshots",
    ):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert 'aria-current="page"' in r.text
    listing = client.get("/segments").text
    assert f'href="/segments/{dynamic.id}"' in listing and "RFM: Champions" in listing
    row = re.search(rf'data-segment-id="{dynamic.id}".*?data-members>(\d+)<', listing, re.S)
    assert row.group(1) == "2"
    can_manage = role in MANAGERS
    assert ('href="/segments/new"' in listing) is can_manage
    assert ('action="/segments/clusters"' in listing) is can_manage
    detail = client.get(f"/segments/{dynamic.id}").text
    assert ('action="/segments/' in detail and "/delete" in detail) is can_manage


def test_segment_page_shows_rule_report_charts_and_members(admin_web, session, people):
    segment = service.create_segment(session, name="GB women", rule=GB_FEMALE, description="Our British readers.")
    run = AnalysisRun(as_of=date.today(), status=AnalysisStatus.completed, requested_model="auto", model="bgnbd",
                      settings={})  # fmt: skip
    session.add(run)
    session.flush()
    for person, band, rfm, clv in (("ada", "high", "At risk", "120.00"), ("mary", "low", "Champions", "80.00")):
        session.add(CustomerScore(run_id=run.id, customer_id=people[person].id, as_of=run.as_of, orders=1,
                                  frequency=0, revenue=Decimal("10"), churn_band=band, rfm_segment=rfm,
                                  clv=Decimal(clv)))  # fmt: skip
    session.flush()

    page = admin_web.get(f"/segments/{segment.id}").text
    assert "Our British readers." in page
    assert "Country is GB" in page and "Gender is female" in page and "All of these" in page
    assert re.search(r'data-figure="size">2<', page)
    assert re.search(r'data-figure="share">40\.0%<', page)
    assert re.search(r'data-figure="revenue">10\.00<', page)
    assert re.search(r'data-figure="clv">100\.00<', page)
    assert re.search(r'data-figure="churn">50\.0%', page)
    assert "no survey answers yet" in page
    monthly = json.loads(re.search(r'id="chart-monthly-data">([^<]*)<', page).group(1))
    placed = session.scalars(select(Order.placed_at).where(Order.customer_id == people["ada"].id)).one()
    assert monthly["revenue"] == [10.0] and monthly["x"] == [placed.strftime("%Y-%m")]
    churn = json.loads(re.search(r'id="chart-churn-data">([^<]*)<', page).group(1))
    assert dict(zip(churn["x"], churn["y"], strict=True)) == {"Low": 1, "Medium": 0, "High": 1, "Lost": 0}
    rfm = json.loads(re.search(r'id="chart-rfm-data">([^<]*)<', page).group(1))
    assert dict(zip(rfm["labels"], rfm["values"], strict=True)) == {"Champions": 1, "At risk": 1}
    members = re.findall(r'data-customer-id="(\d+)"', page)
    assert members == [str(people["ada"].id), str(people["mary"].id)]
    assert f'href="/customers/{people["ada"].id}"' in page
    assert "/static/vendor/plotly.min.js" in page and "/static/js/segments.js" in page


def test_members_are_paginated_by_cursor(admin_web, session, monkeypatch):
    from patron.segments import pages

    monkeypatch.setattr(pages, "MEMBERS_PER_PAGE", 2)
    made = [create_customer(session, country="NO") for _ in range(5)]
    segment = service.create_segment(session, name="Norway", rule={"field": "country", "op": "eq", "value": "NO"})
    seen: list[str] = []
    url = f"/segments/{segment.id}"
    while url:
        page = admin_web.get(url).text
        seen += re.findall(r'data-customer-id="(\d+)"', page)
        nxt = re.search(r'href="([^"]+)" rel="next"', page)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert seen == [str(c.id) for c in made]


def test_export_csv_streams_the_members(web, session, people):
    segment = service.create_segment(session, name="GB women", rule=GB_FEMALE)
    r = web("viewer").get(f"/segments/{segment.id}/members.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert f'filename="segment-{segment.id}.csv"' in r.headers["content-disposition"]
    lines = r.text.strip().splitlines()
    assert lines[0].startswith("customer_id,first_name,last_name,email")
    assert sorted(line.split(",")[1] for line in lines[1:]) == ["Ada", "Mary"]


def test_unknown_segment_is_a_404_page(admin_web):
    r = admin_web.get("/segments/999999")
    assert r.status_code == 404 and "segment 999999 not found" in r.text


# --------------------------------------------------------------------------- builder and preview


def test_builder_embeds_fields_examples_and_segments(admin_web, session):
    page = admin_web.get("/segments/new")
    assert page.status_code == 200
    data = json.loads(re.search(r'id="builder-data">([^<]*)<', page.text).group(1))
    assert {"name": "country", "label": "Country", "group": "Geographic", "type": "string"}.items() <= {
        k: v for k, v in next(f for f in data["fields"] if f["name"] == "country").items()
    }.items()
    assert "in" in next(f for f in data["fields"] if f["name"] == "age_band")["ops"]
    assert [e["name"] for e in data["examples"]][:2] == ["Young families", "Affluent couples"]
    assert builtin(session, "rfm_champions").id in [s[0] for s in data["segments"]]
    assert data["ops"]["gte"] == "is at least"


def test_preview_counts_and_samples_a_rule(web, session, people):
    client = web("viewer")  # previewing saves nothing, so readers may
    r = client.submit("/segments/preview.json", {"rule": json.dumps(GB_FEMALE)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 2 and body["total"] == 5 and body["text"] == "2 of 5 customers"
    assert sorted(s["name"] for s in body["sample"]) == ["Ada Lovelace", "Mary Somerville"]
    assert body["warnings"] == []

    everyone = client.submit("/segments/preview.json", {"rule": json.dumps({"field": "country", "op": "is_not_empty"})})
    assert everyone.json()["warnings"] and "every customer" in everyone.json()["warnings"][0]


def test_preview_names_the_bad_node(admin_web, people):
    rule = {"all": [{"field": "country", "op": "eq", "value": "GB"}, {"any": [{"field": "agee", "op": "eq"}]}]}
    r = admin_web.submit("/segments/preview.json", {"rule": json.dumps(rule)})
    assert r.status_code == 400
    assert r.json()["path"] == "all[1].any[0]"
    assert r.json()["error"].startswith("all[1].any[0]: unknown field 'agee'")
    assert (
        admin_web.submit("/segments/preview.json", {"rule": "{not json"})
        .json()["error"]
        .startswith("the rule is not valid JSON")
    )


def test_preview_needs_the_csrf_token(admin_web, people):
    r = admin_web.submit("/segments/preview.json", {"rule": json.dumps(GB_FEMALE)}, token="forged")
    assert r.status_code == 403


def test_create_a_dynamic_segment(web, session, people):
    client = web("marketer")
    r = client.submit(
        "/segments/new",
        {
            "name": "GB women",
            "description": "British readers",
            "category": "demographic",
            "rule": json.dumps(GB_FEMALE),
        },
    )
    segment = session.get(Segment, new_segment_id(r))
    assert segment.kind == SegmentKind.dynamic and segment.rule == GB_FEMALE
    assert segment.category == "demographic" and segment.description == "British readers"
    assert segment.created_by.startswith("web:segpages")
    page = client.get(r.headers["location"]).text
    assert "Saved &#39;GB women&#39;." in page and re.search(r'data-figure="size">2<', page)


def test_save_as_static_list_keeps_todays_members(admin_web, session, people):
    r = admin_web.submit("/segments/new", {"name": "GB women today", "rule": json.dumps(GB_FEMALE), "static": "on"})
    segment = session.get(Segment, new_segment_id(r))
    assert segment.kind == SegmentKind.static and segment.rule is None
    assert members_of(session, segment.id) == {people["ada"].id, people["mary"].id}


def test_bad_rule_shows_the_node_and_saves_nothing(admin_web, session, people):
    before = segment_count(session)
    rule = {
        "all": [{"field": "country", "op": "eq", "value": "GB"}, {"not": {"field": "gender", "op": "eq", "value": "x"}}]
    }
    raw = json.dumps(rule)
    r = admin_web.submit("/segments/new", {"name": "Broken", "rule": raw})
    assert r.status_code == 400
    assert "all[1].not.value: &#39;x&#39; is not a gender" in r.text
    assert 'id="rule-error"' in r.text
    # The form keeps what was typed: name and the rule.
    assert 'value="Broken"' in r.text
    assert json.loads(re.search(r'name="rule"[^>]*>([^<]*)<', r.text).group(1).replace("&#34;", '"')) == rule
    assert segment_count(session) == before


def test_empty_rule_and_duplicate_names_are_refused(admin_web, session, people):
    before = segment_count(session)
    r = admin_web.submit("/segments/new", {"name": "Nothing", "rule": ""})
    assert r.status_code == 400 and "add at least one condition" in r.text
    r = admin_web.submit("/segments/new", {"name": "RFM: Champions", "rule": json.dumps(GB_FEMALE)})
    assert r.status_code == 409 and "already exists" in r.text
    assert segment_count(session) == before


@pytest.mark.parametrize("role", ["viewer", "agent"])
def test_write_actions_are_refused_without_manage_segments(web, session, people, role):
    client = web(role)
    segment = service.create_segment(session, name="GB women", rule=GB_FEMALE)
    static = service.create_segment(session, name="Picked", kind=SegmentKind.static, customer_ids=[people["ada"].id])
    before = segment_count(session)
    assert client.get("/segments/new").status_code == 403
    assert client.get(f"/segments/{segment.id}/edit").status_code == 403
    refused = [
        ("/segments/new", {"name": "Mine", "rule": json.dumps(GB_FEMALE)}),
        (f"/segments/{segment.id}/edit", {"name": "Renamed", "rule": json.dumps(GB_FEMALE)}),
        (f"/segments/{segment.id}/delete", {}),
        (f"/segments/{segment.id}/freeze", {"name": "Frozen"}),
        ("/segments/snapshots", {}),
        ("/segments/clusters", {}),
    ]
    for path, data in refused:
        assert client.submit(path, data).status_code == 403, path
    r = client.post(
        f"/segments/{static.id}/import",
        data={"csrf_token": client.csrf},
        files={"file": ("m.csv", f"customer_id\n{people['alan'].id}\n", "text/csv")},
    )
    assert r.status_code == 403
    assert segment_count(session) == before
    assert session.get(Segment, segment.id).name == "GB women"
    assert members_of(session, static.id) == {people["ada"].id}
    assert session.scalar(select(func.count()).select_from(SegmentSnapshot)) == 0


@pytest.mark.parametrize("token", ["", "forged"])
def test_write_actions_need_the_csrf_token(admin_web, session, people, token):
    segment = service.create_segment(session, name="GB women", rule=GB_FEMALE)
    before = segment_count(session)
    for path, data in [
        ("/segments/new", {"name": "Mine", "rule": json.dumps(GB_FEMALE)}),
        (f"/segments/{segment.id}/edit", {"name": "Renamed", "rule": json.dumps(GB_FEMALE)}),
        (f"/segments/{segment.id}/delete", {}),
        (f"/segments/{segment.id}/freeze", {"name": "Frozen"}),
        ("/segments/snapshots", {}),
    ]:
        r = admin_web.submit(path, data, token=token)
        assert r.status_code == 403 and "did not come from this site" in r.text, path
    assert segment_count(session) == before
    assert session.get(Segment, segment.id).name == "GB women"
    assert session.scalar(select(func.count()).select_from(SegmentSnapshot)) == 0


# --------------------------------------------------------------------------- edit, delete, freeze, import


def test_edit_changes_name_and_rule(admin_web, session, people):
    segment = service.create_segment(session, name="GB women", rule=GB_FEMALE)
    form = admin_web.get(f"/segments/{segment.id}/edit").text
    assert json.loads(re.search(r'name="rule"[^>]*>([^<]*)<', form).group(1).replace("&#34;", '"')) == GB_FEMALE
    women = {"field": "gender", "op": "eq", "value": "female"}
    r = admin_web.submit(f"/segments/{segment.id}/edit", {"name": "Women", "rule": json.dumps(women)})
    assert r.status_code == 303 and r.headers["location"] == f"/segments/{segment.id}"
    session.refresh(segment)
    assert segment.name == "Women" and segment.rule == women
    assert service.count_members(session, segment.id) == 4


def test_edit_with_a_bad_rule_keeps_the_old_one(admin_web, session, people):
    segment = service.create_segment(session, name="GB women", rule=GB_FEMALE)
    bad = {"all": [{"field": "orders_count", "op": "gte", "value": "many"}]}
    r = admin_web.submit(f"/segments/{segment.id}/edit", {"name": "Renamed", "rule": json.dumps(bad)})
    assert r.status_code == 400 and "all[0].value: orders_count takes a whole number" in r.text
    session.refresh(segment)
    assert segment.name == "GB women" and segment.rule == GB_FEMALE


def test_built_in_keeps_its_rule_and_cannot_be_deleted(admin_web, session):
    champions = builtin(session, "rfm_champions")
    rule = champions.rule
    form = admin_web.get(f"/segments/{champions.id}/edit").text
    assert 'id="rule-locked"' in form
    r = admin_web.submit(
        f"/segments/{champions.id}/edit",
        {"name": champions.name, "description": "Our best.", "rule": json.dumps(GB_FEMALE)},
    )
    assert r.status_code == 303
    session.refresh(champions)
    assert champions.description == "Our best." and champions.rule == rule

    r = admin_web.submit(f"/segments/{champions.id}/delete")
    assert r.status_code == 409
    assert "is built in and cannot be deleted" in r.text and 'id="page-error"' in r.text
    assert session.get(Segment, champions.id) is not None


def test_delete_a_segment(admin_web, session, people):
    segment = service.create_segment(session, name="GB women", rule=GB_FEMALE)
    user = service.create_segment(session, name="Uses it", rule={"segment": segment.id})
    r = admin_web.submit(f"/segments/{segment.id}/delete")
    assert r.status_code == 409 and "is used by the rule of" in r.text
    assert session.get(Segment, segment.id) is not None
    assert admin_web.submit(f"/segments/{user.id}/delete").status_code == 303
    r = admin_web.submit(f"/segments/{segment.id}/delete")
    assert r.status_code == 303 and r.headers["location"] == "/segments"
    session.expire_all()
    assert session.get(Segment, segment.id) is None


def test_freeze_as_static_list(admin_web, session, people):
    segment = service.create_segment(session, name="GB women", rule=GB_FEMALE)
    r = admin_web.submit(f"/segments/{segment.id}/freeze", {"name": "GB women, frozen"})
    frozen = session.get(Segment, new_segment_id(r))
    assert frozen.kind == SegmentKind.static and frozen.name == "GB women, frozen"
    assert members_of(session, frozen.id) == {people["ada"].id, people["mary"].id}
    r = admin_web.submit(f"/segments/{segment.id}/freeze", {"name": "GB women, frozen"})
    assert r.status_code == 409 and "already exists" in r.text


def test_import_csv_into_a_static_list(admin_web, session, people):
    static = service.create_segment(session, name="Picked", kind=SegmentKind.static, customer_ids=[people["ada"].id])
    page = admin_web.get(f"/segments/{static.id}").text
    assert f'action="/segments/{static.id}/import"' in page

    def upload(text: str, replace: bool = False):
        data = {"csrf_token": admin_web.csrf, **({"replace": "on"} if replace else {})}
        return admin_web.post(f"/segments/{static.id}/import", data=data, files={"file": ("m.csv", text, "text/csv")})

    r = upload(f"customer_id,email\n{people['alan'].id},\n,{people['marie'].email}\n")
    assert r.status_code == 303, r.text
    assert members_of(session, static.id) == {people["ada"].id, people["alan"].id, people["marie"].id}

    r = upload("customer_id\n999999\n")
    assert r.status_code == 400 and "row 2, customer_id &#39;999999&#39;: no such customer" in r.text
    assert len(members_of(session, static.id)) == 3

    assert upload(f"customer_id\n{people['grace'].id}\n", replace=True).status_code == 303
    assert members_of(session, static.id) == {people["grace"].id}

    r = admin_web.post(f"/segments/{static.id}/import", data={"csrf_token": "forged"},
                       files={"file": ("m.csv", f"customer_id\n{people['mary'].id}\n", "text/csv")})  # fmt: skip
    assert r.status_code == 403
    assert members_of(session, static.id) == {people["grace"].id}


def test_import_into_a_dynamic_segment_is_refused(admin_web, session, people):
    segment = service.create_segment(session, name="GB women", rule=GB_FEMALE)
    r = admin_web.post(
        f"/segments/{segment.id}/import",
        data={"csrf_token": admin_web.csrf},
        files={"file": ("m.csv", f"customer_id\n{people['alan'].id}\n", "text/csv")},
    )
    assert r.status_code == 400 and "only static lists take members" in r.text


# --------------------------------------------------------------------------- compare, snapshots, clusters


def test_compare_two_segments(admin_web, session, people):
    gb = service.create_segment(session, name="GB", rule={"field": "country", "op": "eq", "value": "GB"})
    women = service.create_segment(session, name="Women", rule={"field": "gender", "op": "eq", "value": "female"})
    page = admin_web.get(f"/segments/compare?first={gb.id}&second={women.id}").text
    assert re.search(r'data-figure="overlap">2<', page)
    assert re.search(r'id="c1-report">.*?data-figure="size">3<', page, re.S)
    assert re.search(r'id="c2-report">.*?data-figure="size">4<', page, re.S)
    chart = json.loads(re.search(r'id="chart-compare-data">([^<]*)<', page).group(1))
    assert chart["names"] == ["GB", "Women"] and chart["series"] == [[10.0], [20.0]]
    same = admin_web.get(f"/segments/compare?first={gb.id}&second={gb.id}")
    assert same.status_code == 400 and "pick two different segments" in same.text


def _scores(session, run_date: date, **segments_by_customer) -> None:
    run = AnalysisRun(as_of=run_date, status=AnalysisStatus.completed, requested_model="auto", model="bgnbd",
                      settings={})  # fmt: skip
    session.add(run)
    session.flush()
    for customer_id, rfm in segments_by_customer.values():
        session.add(CustomerScore(run_id=run.id, customer_id=customer_id, as_of=run_date, orders=1, frequency=0,
                                  revenue=Decimal("10"), rfm_segment=rfm))  # fmt: skip
    session.flush()


def test_take_snapshots_and_read_the_migration_matrix(web, session, people):
    client = web("analyst")
    page = client.get("/segments/snapshots").text
    assert "needs two snapshots; there are 0" in page
    _scores(session, date(2026, 1, 1), ada=(people["ada"].id, "Champions"), alan=(people["alan"].id, "Lost"))
    assert client.submit("/segments/snapshots").status_code == 303
    _scores(session, date(2026, 2, 1), ada=(people["ada"].id, "At risk"), mary=(people["mary"].id, "Loyal"))
    assert client.submit("/segments/snapshots").status_code == 303
    snaps = session.scalars(select(SegmentSnapshot).order_by(SegmentSnapshot.id)).all()
    assert len(snaps) == 2 and snaps[0].taken_by.startswith("web:segpages")
    page = client.get("/segments/snapshots").text
    assert "Snapshot #" in page  # the notice
    champions, at_risk, loyal, lost = (
        builtin(session, key).id for key in ("rfm_champions", "rfm_at_risk", "rfm_loyal", "rfm_lost")
    )

    def cell(before, after) -> str:
        return re.search(rf'data-from="{before}" data-to="{after}">([^<]*)<', page).group(1)

    assert cell(champions, at_risk) == "1"  # Ada slipped
    assert cell("none", loyal) == "1"  # Mary is new
    assert cell(lost, "none") == "1"  # Alan has no score any more
    assert cell(champions, champions) == "·" and cell("none", "none") == "—"
    assert "3 customers changed segment" in page
    header = re.search(r'id="migration-matrix">\s*<thead>(.*?)</thead>', page, re.S).group(1)
    assert "RFM: Champions" in header and header.endswith('<th scope="col" class="num">Total</th></tr>')
    r = client.get(f"/segments/snapshots?before={snaps[1].id}&after=999999")
    assert r.status_code == 404 and "snapshot 999999 not found" in r.text


def test_clustering_without_scores_says_what_to_do(admin_web, session):
    r = admin_web.submit("/segments/clusters")
    assert r.status_code == 400 and "run `patron analyze` first" in r.text
    assert session.scalar(select(func.count()).where(Segment.kind == SegmentKind.cluster)) == 0


def test_a_rule_referring_back_to_itself_is_refused(admin_web, session, people):
    first = service.create_segment(session, name="GB", rule={"field": "country", "op": "eq", "value": "GB"})
    second = service.create_segment(session, name="GB again", rule={"segment": first.id})
    r = admin_web.submit(f"/segments/{first.id}/edit", {"name": "GB", "rule": json.dumps({"segment": second.id})})
    assert r.status_code == 400 and f"refers back to itself ({first.id} -&gt; {second.id} -&gt; {first.id})" in r.text
    session.refresh(first)
    assert first.rule == {"field": "country", "op": "eq", "value": "GB"}


def test_static_list_edit_has_no_rule(admin_web, session, people):
    static = service.create_segment(session, name="Picked", kind=SegmentKind.static, customer_ids=[people["ada"].id])
    form = admin_web.get(f"/segments/{static.id}/edit").text
    assert 'id="rule-builder"' not in form and "has a fixed list of members" in form
    r = admin_web.submit(f"/segments/{static.id}/edit", {"name": "Picked by hand", "description": "By hand."})
    assert r.status_code == 303
    session.refresh(static)
    assert static.name == "Picked by hand" and static.description == "By hand." and static.kind == SegmentKind.static
    assert members_of(session, static.id) == {people["ada"].id}
