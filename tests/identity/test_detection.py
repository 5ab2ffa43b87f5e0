"""find_duplicates: exact groups on canonical email and phone, fuzzy names within blocks."""

from __future__ import annotations

import re

import pytest

from patron.errors import InvalidInput
from patron.identity import service
from tests.factories import create_customer, create_order


def find(session, **kwargs):
    """{(a_id, b_id): pair} of the candidates."""
    return {(p.a.id, p.b.id): p for p in service.find_duplicates(session, **kwargs)}


def test_same_canonical_email_is_an_exact_pair(session):
    ann = create_customer(session, first_name="Ann", last_name="Lee", email="ann@shop.example")
    tagged = create_customer(session, first_name="Ann", last_name="Lee", email="Ann+Promo@shop.example")
    dotted = create_customer(session, first_name="Jo", last_name="Doe", email="jo.doe@gmail.com")
    google = create_customer(session, first_name="Jo", last_name="Doe", email="jodoe@googlemail.com")
    pairs = find(session)
    assert set(pairs) == {(ann.id, tagged.id), (dotted.id, google.id)}
    for pair in pairs.values():
        assert pair.exact
        assert pair.reasons[0] == "same email (canonical)"
        assert "same name" in pair.reasons
        assert 0.9 < pair.score <= 1


def test_same_phone_is_an_exact_pair(session):
    a = create_customer(session, first_name="Grace", last_name="Hopper", phone="+442079460958")
    b = create_customer(session, first_name="Grace", last_name="Hopper", phone="+44 20 7946 0958", email=None)
    (pair,) = find(session).values()
    assert (pair.a.id, pair.b.id) == (a.id, b.id)
    assert pair.exact and "same phone" in pair.reasons


def test_similar_name_and_same_postcode_is_a_fuzzy_pair(session):
    a = create_customer(session, first_name="Katherine", last_name="Johnson", postal_code="SW1A 1AA", email=None)
    b = create_customer(session, first_name="KATHARINE", last_name="JOHNSON", postal_code="sw1a1aa", email=None)
    (pair,) = find(session).values()
    assert (pair.a.id, pair.b.id) == (a.id, b.id)
    assert not pair.exact
    assert len(pair.reasons) == 1
    assert re.fullmatch(r"similar name \(9\d\) and same postcode", pair.reasons[0])
    assert 0.6 <= pair.score < 0.95


def test_similar_name_in_the_same_city(session):
    a = create_customer(session, first_name="Jonathan", last_name="Okafor", city="Leeds")
    b = create_customer(session, first_name="Jonathon", last_name="Okafor", city="LEEDS")
    (pair,) = find(session, min_score=0).values()
    assert (pair.a.id, pair.b.id) == (a.id, b.id)
    assert re.fullmatch(r"similar name \(\d+\) and same city", pair.reasons[0])


def test_different_people_are_not_listed(session):
    create_customer(session, first_name="John", last_name="Smith", postal_code="LS1 4AP", city="Leeds")
    create_customer(session, first_name="Jane", last_name="Smith", postal_code="LS1 4AP", city="Leeds")
    create_customer(session, first_name="Katherine", last_name="Johnson", postal_code="SW1A 1AA")
    create_customer(session, first_name="Katherine", last_name="Johnson", postal_code="EH1 1YZ")
    create_customer(session, first_name="Ann", last_name="Lee", email="ann@one.example")
    create_customer(session, first_name="Ann", last_name="Lee", email="ann@two.example")
    create_customer(session, first_name="Ed", last_name="Ng", email="e.d@shop.example")  # dots count off Gmail
    create_customer(session, first_name="Ed", last_name="Ng", email="ed@shop.example")
    assert find(session, min_score=0) == {}


def test_a_family_sharing_a_phone_scores_low(session):
    create_customer(session, first_name="Maria", last_name="Garcia", phone="+14155552671")
    create_customer(session, first_name="Tom", last_name="Wu", phone="+14155552671")
    assert find(session) == {}  # below the default minimum score
    (pair,) = find(session, min_score=0).values()
    assert pair.exact and pair.score < service.DEFAULT_MIN_SCORE
    assert pair.reasons[0] == "same phone" and pair.reasons[1].startswith("different names")


def test_different_emails_and_phones_count_against_a_name_match(session):
    """Two William Smiths in one city, each with their own email and phone, are likely two people."""
    create_customer(session, first_name="William", last_name="Smith", city="Leeds", phone="+441132460001")
    create_customer(session, first_name="William", last_name="Smith", city="Leeds", phone="+441132460002")
    create_customer(session, first_name="Tina", last_name="Wilson", city="York", email=None)
    create_customer(session, first_name="Tina", last_name="Wilson", city="York", email=None)
    pairs = service.find_duplicates(session, min_score=0)
    assert [p.reasons for p in pairs] == [
        ["same name and same city"],
        ["same name and same city", "different emails", "different phones"],
    ]
    assert pairs[1].score < 0.5 <= pairs[0].score
    assert len(service.find_duplicates(session)) == 1


def test_merged_customers_are_not_candidates(session):
    a = create_customer(session, first_name="Ann", last_name="Lee", email="ann@shop.example")
    b = create_customer(session, first_name="Ann", last_name="Lee", email="ann+x@shop.example")
    assert set(find(session)) == {(a.id, b.id)}
    service.merge(session, survivor_id=a.id, merged_id=b.id)
    assert find(session, min_score=0) == {}


def test_suggested_survivor_has_more_orders_then_is_older(session):
    older = create_customer(session, first_name="Ann", last_name="Lee", email="ann@shop.example")
    newer = create_customer(session, first_name="Ann", last_name="Lee", email="ann+x@shop.example")
    assert find(session)[(older.id, newer.id)].suggested_survivor_id == older.id
    create_order(session, newer)
    pair = find(session)[(older.id, newer.id)]
    assert pair.suggested_survivor_id == newer.id
    assert (pair.a.order_count, pair.b.order_count) == (0, 1)


def test_a_group_is_paired_with_its_suggested_survivor(session):
    """Three records of one person give two pairs, both with the one to keep."""
    people = [
        create_customer(session, first_name="Ann", last_name="Lee", email=email)
        for email in ("ann@shop.example", "ann+a@shop.example", "ann+b@shop.example")
    ]
    keep = people[1]
    create_order(session, keep)
    pairs = find(session)
    assert len(pairs) == 2
    assert all(keep.id in ids and p.suggested_survivor_id == keep.id for ids, p in pairs.items())


def test_best_first_with_limit_and_min_score(session):
    create_customer(session, first_name="Ann", last_name="Lee", email="ann@shop.example")
    create_customer(session, first_name="Ann", last_name="Lee", email="ann+x@shop.example")
    create_customer(session, first_name="Katherine", last_name="Johnson", postal_code="SW1A 1AA", email=None)
    create_customer(session, first_name="Katharine", last_name="Johnson", postal_code="SW1A 1AA", email=None)
    pairs = service.find_duplicates(session)
    assert len(pairs) == 2 and pairs[0].score > pairs[1].score and pairs[0].exact
    assert service.find_duplicates(session, limit=1) == pairs[:1]
    assert service.find_duplicates(session, min_score=0.9) == pairs[:1]
    assert service.find_duplicates(session, exact_only=True) == pairs[:1]
    with pytest.raises(InvalidInput):
        service.find_duplicates(session, min_score=1.5)


def test_oversized_blocks_are_split_by_initials_and_still_find_pairs(session, monkeypatch):
    monkeypatch.setattr(service, "MAX_BLOCK", 3)
    names = [("Ann", "Lee"), ("Anne", "Lee"), ("Bob", "Marsh"), ("Carl", "Nash"), ("Dee", "Oak"), ("Eve", "Park")]
    made = [create_customer(session, first_name=f, last_name=last, postal_code="LS1 4AP") for f, last in names]
    (pair,) = find(session).values()
    assert (pair.a.id, pair.b.id) == (made[0].id, made[1].id)
    block = [(c.id, c.first_name, c.last_name) for c in made]
    parts = list(service._split(block))
    assert sorted(i for part in parts for i, _, _ in part) == sorted(c.id for c in made)
    assert all(len(part) <= 3 for part in parts)
