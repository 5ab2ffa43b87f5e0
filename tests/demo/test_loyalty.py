"""The demo's loyalty programme: the example file's rules, and history that balances."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import yaml

from patron.db import session_scope
from patron.demo.generator import generate
from patron.demo.loyalty import build_programme, demo_programme
from patron.loyalty import service
from patron.loyalty.config import ConfigFile

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "loyalty.yaml"


def test_demo_programme_is_the_example_file_with_its_promotions_moved():
    example = ConfigFile.model_validate(yaml.safe_load(EXAMPLE.read_text()))
    demo = demo_programme(datetime(2026, 12, 4, tzinfo=UTC))
    assert [p.start for p in demo.earn.bonus_periods] == [date(2026, 8, 16), date(2026, 11, 24)]
    strip = {"earn": {"bonus_periods"}}
    assert demo.model_dump(exclude=strip) == example.model_dump(exclude=strip)
    assert [p.multiplier for p in demo.earn.bonus_periods] == [p.multiplier for p in example.earn.bonus_periods]


def test_build_programme_enrols_earns_redeems_and_balances(fresh_engine):
    generate(fresh_engine, customers=300, seed=7, end=date(2026, 6, 1))
    made = build_programme(fresh_engine, seed=7, end=datetime(2026, 6, 1, tzinfo=UTC))
    assert made.members > 20 and made.orders_synced > made.members
    assert made.points_earned > 0 and made.vouchers > 0
    with session_scope(fresh_engine) as session:
        report = service.report(session, now=datetime(2026, 6, 1, tzinfo=UTC))
        assert report.members == made.members
        assert service.check_books(session) == []
        # The history is spread over the year, not dated on the day the demo was built.
        assert sum(1 for month in report.by_month.values() if month["earned"]) >= 10
