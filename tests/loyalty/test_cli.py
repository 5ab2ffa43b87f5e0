"""`patron loyalty ...` against a real database on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from patron import migrate
from patron.cli import app
from patron.db import get_engine, make_engine, session_scope
from patron.settings import get_settings
from tests.factories import create_customer, create_order, create_product

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "loyalty.yaml"


@pytest.fixture
def db_url(database_factory, monkeypatch) -> str:
    """A fresh migrated database of the backend under test, as PATRON_DATABASE_URL."""
    url = database_factory.new_url()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("PATRON_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")  # Rich tables unwrapped
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield url
    get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def invoke(*args):
    return runner.invoke(app, ["loyalty", *[str(a) for a in args]])


def flat(output: str) -> str:
    return " ".join(output.split())


def scalar(sql: str, **params):
    with get_engine().connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def setup(make):
    """Run make(session) in a committed transaction on the test database; its result."""
    with session_scope(get_engine()) as session:
        return make(session)


def configured(db_url) -> None:
    """The example programme in force (its free product needs the SKU to exist)."""
    setup(lambda s: create_product(s, sku="FOO-42000", name="House blend", price=Decimal("12.00")))
    r = invoke("configure", EXAMPLE)
    assert r.exit_code == 0, r.output


def test_configure_stores_the_example_and_its_rewards(db_url):
    setup(lambda s: create_product(s, sku="FOO-42000", name="House blend", price=Decimal("12.00")))
    r = invoke("configure", EXAMPLE, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "Nothing stored" in flat(r.output)
    assert scalar("SELECT COUNT(*) FROM loyalty_config_versions") == 1  # the migration's
    assert scalar("SELECT COUNT(*) FROM loyalty_rewards") == 0

    r = invoke("configure", EXAMPLE)
    assert r.exit_code == 0, r.output
    # The id of the version in force (PostgreSQL's sequence also moved for the dry run).
    version = int(re.search(r"Programme version (\d+) stored", r.output).group(1))
    assert version == scalar("SELECT MAX(id) FROM loyalty_config_versions")
    assert scalar("SELECT COUNT(*) FROM loyalty_config_versions") == 2
    assert "5 created" in flat(r.output) and "0 updated" in flat(r.output)
    assert scalar("SELECT COUNT(*) FROM loyalty_rewards") == 5
    assert scalar("SELECT points_cost FROM loyalty_rewards WHERE code = 'FREE-HOUSE-BLEND'") == 2000

    r = invoke("config")
    assert r.exit_code == 0
    assert r.output.startswith(f"# Loyalty programme, version {version}\ncurrency: USD\n")
    assert "months: 18" in r.output and "name: VIP" in r.output and "mobile: 1.25" in r.output

    r = invoke("configure", EXAMPLE)  # again: a new version, the same rewards updated
    assert f"Programme version {version + 1} stored" in flat(r.output) and "0 created, 5 updated" in flat(r.output)
    assert scalar("SELECT COUNT(*) FROM loyalty_rewards") == 5


def test_configure_refuses_overlapping_tiers_and_stores_nothing(db_url, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "tiers:\n"
        "  levels:\n"
        "    - {name: Member, threshold: 0}\n"
        "    - {name: Silver, threshold: 500}\n"
        "    - {name: Gold, threshold: 400}\n"
        "rewards:\n"
        "  - {code: V5, name: Five off, kind: voucher, amount: 5, points_cost: 500}\n"
    )
    r = invoke("configure", bad)
    assert r.exit_code == 1
    out = flat(r.output)
    assert "tiers.levels.2.threshold" in out and "overlaps 'Silver'" in out
    assert "nothing was stored" in out
    assert scalar("SELECT COUNT(*) FROM loyalty_config_versions") == 1
    assert scalar("SELECT COUNT(*) FROM loyalty_rewards") == 0


def test_configure_refuses_yaml_aliases_and_unknown_currencies(db_url, tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("earn: &e {points_per_unit: 1}\nrewards: [*e, *e, *e]\n")
    r = invoke("configure", bomb)
    assert r.exit_code == 1 and "aliases (*e) are not allowed" in flat(r.output), r.output
    zzz = tmp_path / "zzz.yaml"
    zzz.write_text("currency: zzz\n")
    r = invoke("configure", zzz)
    assert r.exit_code == 1 and "currency" in flat(r.output) and "not an ISO 4217 currency code" in flat(r.output)
    assert scalar("SELECT COUNT(*) FROM loyalty_config_versions") == 1


def test_configure_names_every_wrong_field_and_unknown_skus(db_url, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "expiry": {"policy": "rolling", "months": 0},
                "earn": {"points_per_unit": -1},
                "rewards": [{"code": "V", "name": "V", "kind": "voucher", "points_cost": 10}],
            }
        )
    )
    r = invoke("configure", bad)
    assert r.exit_code == 1
    out = flat(r.output)
    for field in ("expiry.months", "earn.points_per_unit", "rewards.0.amount"):
        assert field in out, out
    assert "3 problem(s)" in out

    good_rules = tmp_path / "sku.yaml"
    good_rules.write_text(
        "rewards:\n  - {code: F, name: Free, kind: free_product, product_sku: NOPE, points_cost: 5}\n"
    )
    r = invoke("configure", good_rules)
    assert r.exit_code == 1 and "no product with sku 'NOPE'" in flat(r.output)
    assert scalar("SELECT COUNT(*) FROM loyalty_config_versions") == 1  # the rules were not kept either

    r = invoke("configure", tmp_path / "missing.yaml")
    assert r.exit_code == 1 and "cannot read" in flat(r.output)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    r = invoke("configure", tmp_path / "list.yaml")
    assert r.exit_code == 1 and "must hold a mapping" in flat(r.output)


def test_enrol_award_redeem_consume(db_url):
    configured(db_url)
    customer_id = setup(lambda s: create_customer(s).id)

    r = invoke("enrol", customer_id)
    assert r.exit_code == 0, r.output
    m = re.search(r"member (\d+), card (\d{16}), tier Member, balance 100 points", flat(r.output))
    assert m, r.output
    member_id, card = int(m.group(1)), m.group(2)
    r = invoke("enrol", customer_id)
    assert r.exit_code == 1 and f"already a member (member {member_id}" in flat(r.output)
    assert invoke("enrol", 999_999).exit_code == 1

    r = invoke("award", member_id, "--reason", "review", "--reference", "review 812")
    assert r.exit_code == 0, r.output
    assert "50 points awarded" in r.output and "balance 150" in r.output
    # The same review again: awarded once.
    r = invoke("award", member_id, "--reason", "review", "--reference", "review 812")
    assert r.exit_code == 0 and "balance 150" in r.output
    r = invoke("award", member_id, "--reason", "goodwill", "--reference", "late parcel")
    assert r.exit_code == 1 and "needs the number of points" in flat(r.output)
    r = invoke("award", member_id, "--reason", "goodwill", "--reference", "late parcel", "--points", "400")
    assert r.exit_code == 0 and "balance 550" in r.output
    r = invoke("award", member_id, "--reason", "lottery", "--reference", "x", "--points", "5")
    assert r.exit_code == 1 and "unknown bonus reason" in flat(r.output)

    r = invoke("redeem", member_id, "VOUCHER-10")
    assert r.exit_code == 1
    assert "the balance is 550 and this needs 1000" in flat(r.output)
    r = invoke("redeem", member_id, "NO-SUCH")
    assert r.exit_code == 1 and "no reward with code" in flat(r.output)
    r = invoke("redeem", member_id, "VOUCHER-5")
    assert r.exit_code == 0, r.output
    assert "balance 50" in r.output
    code = re.search(r"Voucher (\S+) for \$5 off", r.output).group(1)
    assert scalar("SELECT balance FROM loyalty_accounts a JOIN loyalty_members m ON m.account_id = a.id") == 50

    r = invoke("consume", code, "--reference", "till 3 receipt 77")
    assert r.exit_code == 0 and f"Voucher {code} used on till 3 receipt 77." in flat(r.output)
    r = invoke("consume", code)
    assert r.exit_code == 1
    assert f"voucher {code} was already used on" in flat(r.output) and "(till 3 receipt 77)" in flat(r.output)
    assert invoke("consume", "NOPE-NOPE").exit_code == 1

    r = invoke("member", member_id)
    assert r.exit_code == 0
    assert "50 points (worth 0.50 USD)" in flat(r.output) and card in r.output
    r = invoke("member", "--card", card)
    assert r.exit_code == 0 and f"Member {member_id}" in r.output
    assert invoke("member").exit_code == 1
    r = invoke("member", "--card", "1234")
    assert r.exit_code == 1 and "not a card number" in flat(r.output)

    r = invoke("statement", member_id, "--limit", "2")
    assert r.exit_code == 0
    rows = [line for line in r.output.splitlines() if re.match(r"│ \d+ ", line)]
    assert len(rows) == 2
    assert "redeem" in rows[0] and "-500" in rows[0] and "│ 50 " in rows[0]
    assert "bonus" in rows[1] and "+400" in rows[1] and "│ 550 " in rows[1]


def test_sync_earns_for_orders_placed_after_enrolment(db_url):
    from patron.loyalty import service

    configured(db_url)
    # A fixed day, not the clock: orders "10 days ago" would fall in examples/loyalty.yaml's
    # Black Friday double points on some days. Mid-June 2026 is in no bonus period.
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

    def make(s):
        c = create_customer(s)
        p = create_product(s, sku="BEA-1", category_path="Beauty/Skincare", price=Decimal("20.00"))
        # Orders that arrived before the customer joined (so nothing was earned on arrival);
        # the membership then dates from between them, as when a till enrols offline.
        create_order(s, c, lines=[(p, 2, Decimal("20.00"))], placed_at=now - timedelta(days=10), channel="online")
        create_order(s, c, lines=[(p, 1, Decimal("20.00"))], placed_at=now - timedelta(days=40), channel="online")
        service.enrol(s, customer_id=c.id, by="test", now=now - timedelta(days=20))

    setup(make)
    assert scalar("SELECT COUNT(*) FROM loyalty_transactions WHERE kind = 'earn'") == 0
    r = invoke("sync", "--since", (now - timedelta(days=60)).date().isoformat())
    assert r.exit_code == 0, r.output
    # $40 of Beauty at 2x; the older order was placed before the enrolment.
    assert "2 orders checked: 80 points earned, 0 taken back." in flat(r.output)
    r = invoke("sync")
    assert r.exit_code == 0 and "2 orders checked: 0 points earned" in flat(r.output)
    r = invoke("sync", "--since", (now - timedelta(days=5)).date().isoformat())
    assert "0 orders checked" in flat(r.output)
    assert invoke("check").exit_code == 0


def test_expire_as_of_a_later_day_expires_the_unspent_points(db_url):
    configured(db_url)
    customer_id = setup(lambda s: create_customer(s).id)
    member_id = int(re.search(r"member (\d+)", invoke("enrol", customer_id).output).group(1))
    invoke("award", member_id, "--reason", "goodwill", "--reference", "sorry", "--points", "450")
    assert invoke("redeem", member_id, "VOUCHER-5").exit_code == 0  # 550 - 500: 50 left

    today = datetime.now(UTC).date()
    r = invoke("expire", "--as-of", (today + timedelta(days=30)).isoformat())
    assert r.exit_code == 0 and "0 points of 0 members expired." in flat(r.output)
    # The rolling expiry is 18 months: after that, the 50 points not spent lapse.
    later = today + timedelta(days=19 * 31)
    r = invoke("expire", "--as-of", later.isoformat())
    assert r.exit_code == 0
    assert "50 points of 1 members expired." in flat(r.output)
    assert "0 points of 0 members expired." in flat(invoke("expire", "--as-of", later.isoformat()).output)
    assert scalar("SELECT balance FROM loyalty_accounts a JOIN loyalty_members m ON m.account_id = a.id") == 0
    assert invoke("check").exit_code == 0


def test_run_gives_birthday_bonuses_and_reviews_tiers(db_url):
    configured(db_url)
    # A day after the first tier review (12 months) and before the sign-up bonus expires (18).
    day = datetime.now(UTC).date() + timedelta(days=400)
    if (day.month, day.day) == (2, 29):
        day += timedelta(days=1)
    customer_id = setup(lambda s: create_customer(s, birthday=date(1990, day.month, day.day)).id)
    member_id = int(re.search(r"member (\d+)", invoke("enrol", customer_id).output).group(1))
    r = invoke("run", "--as-of", day.isoformat())
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    assert "birthday bonuses │ 1 given" in out
    assert "0 points of 0 members expired" in out
    assert "tier reviews │ 1 reviewed: 0 up, 1 kept, 0 down" in out
    r = invoke("run", "--as-of", day.isoformat())
    out = flat(r.output)
    assert "birthday bonuses │ 0 given" in out and "tier reviews │ 0 reviewed" in out  # once each
    assert "balance │ 300 points" in flat(invoke("member", member_id).output)
    r = invoke("tiers", "--as-of", (day + timedelta(days=1)).isoformat())
    assert r.exit_code == 0 and "0 members reviewed" in flat(r.output)


def test_report_and_check(db_url):
    configured(db_url)
    customer_id = setup(lambda s: create_customer(s).id)
    member_id = int(re.search(r"member (\d+)", invoke("enrol", customer_id).output).group(1))
    invoke("award", member_id, "--reason", "goodwill", "--reference", "sorry", "--points", "900")
    invoke("redeem", member_id, "FREE-SHIPPING")

    r = invoke("report", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["members"] == 1
    assert data["outstanding_points"] == 700
    assert data["liability"] == "7.00" and data["currency"] == "USD"
    assert (data["earned"], data["redeemed"], data["expired"]) == (1000, 300, 0)
    assert data["tiers"][0] == {"tier": "Member", "members": 1, "points": 700}
    assert data["books_balanced"] is True
    r = invoke("report", "--months", "3")
    assert r.exit_code == 0
    assert "points outstanding │ 700" in flat(r.output) and "liability │ 7.00 USD" in flat(r.output)

    r = invoke("check")
    assert r.exit_code == 0 and "The loyalty books balance." in r.output
    with get_engine().begin() as conn:  # a balance edited behind the ledger's back
        conn.execute(text("UPDATE loyalty_accounts SET balance = balance + 7 WHERE kind = 'member'"))
    r = invoke("check")
    assert r.exit_code == 1
    out = flat(r.output)
    assert "balance 707 but its entries sum to 700" in out and "do not balance: 1 problem(s)" in out
    assert "NOT balanced" in flat(invoke("report").output)


def test_import_members_from_a_file(db_url, tmp_path):
    a, b = setup(lambda s: (create_customer(s).id, create_customer(s, email="bea@shop.example").id))
    bad = tmp_path / "bad.csv"
    bad.write_text(f"customer_id,email,points\n{a},,ten\n,nobody@shop.example,\n")
    r = invoke("import", bad)
    assert r.exit_code == 1
    assert "row 2, points 'ten': not a whole number of points" in flat(r.output)
    assert "row 3, email 'nobody@shop.example': no customer with this email" in flat(r.output)
    assert scalar("SELECT COUNT(*) FROM loyalty_members") == 0
    good = tmp_path / "members.csv"
    good.write_text(f"customer_id,email,card_number,points\n{a},,2900123456789012,250\n,BEA@shop.example,,\n")
    r = invoke("import", good, "--dry-run")
    assert r.exit_code == 0 and "2 member(s) would enrol, 250 opening points." in flat(r.output)
    assert scalar("SELECT COUNT(*) FROM loyalty_members") == 0
    r = invoke("import", good)
    assert r.exit_code == 0 and "2 member(s) enrolled, 250 opening points." in flat(r.output)
    assert scalar("SELECT card_number FROM loyalty_members WHERE customer_id = :c", c=a) == "2900123456789012"
    assert scalar("SELECT customer_id FROM loyalty_members WHERE card_number <> '2900123456789012'") == b
    latin = tmp_path / "latin.csv"
    latin.write_bytes("customer_id,email\n,zoë@shop.example\n".encode("latin-1"))
    r = invoke("import", latin)
    assert r.exit_code == 1 and "is not UTF-8 text" in flat(r.output)
