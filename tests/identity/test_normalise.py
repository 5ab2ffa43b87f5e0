"""canonical_email and normalise_name: examples, properties, and the SQL twin of canonical_email."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, literal, select

from patron.customers.schemas import CustomerCreate, CustomerUpdate
from patron.identity.repository import canonical_email_sql
from patron.validation import canonical_email, normalise_name


@pytest.mark.parametrize(
    ("email", "canonical"),
    [
        ("ann@shop.example", "ann@shop.example"),
        (" Ann@Shop.Example ", "ann@shop.example"),
        ("ann+promo@shop.example", "ann@shop.example"),
        ("ann+a+b@shop.example", "ann@shop.example"),
        ("a.n.n@shop.example", "a.n.n@shop.example"),  # dots only matter at Gmail
        ("a.n.n+x@gmail.com", "ann@gmail.com"),
        ("A.Nn@GoogleMail.com", "ann@gmail.com"),
        ("+promo@shop.example", "+promo@shop.example"),  # nothing before the tag: leave it
        ("not-an-email", "not-an-email"),
    ],
)
def test_canonical_email(email, canonical):
    assert canonical_email(email) == canonical


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("  ada   lovelace ", "Ada Lovelace"),
        ("ADA LOVELACE", "Ada Lovelace"),
        ("mcdonald", "McDonald"),
        ("O'NEIL", "O'Neil"),
        ("d'angelo", "D'Angelo"),
        ("smith-jones", "Smith-Jones"),
        ("van der berg", "van der Berg"),
        ("VAN DER BERG", "van der Berg"),
        ("da silva", "da Silva"),
        ("de", "De"),  # a particle on its own is a name
        ("jean-luc", "Jean-Luc"),
        ("élodie", "Élodie"),
        ("DeVito", "DeVito"),  # mixed case is the person's own spelling
        ("McKenzie", "McKenzie"),
        ("ada Lovelace", "ada Lovelace"),
        ("", ""),
        ("   ", ""),
        ("李 小龙", "李 小龙"),
    ],
)
def test_normalise_name(name, normalised):
    assert normalise_name(name) == normalised


@given(st.text(max_size=40))
def test_normalise_name_is_idempotent_and_only_changes_case_and_spaces(name):
    once = normalise_name(name)
    assert normalise_name(once) == once
    assert once == once.strip() and "  " not in once
    assert once.casefold() == " ".join(name.split()).casefold()


def test_customer_names_are_normalised_on_create_and_update():
    data = CustomerCreate(first_name="  ANN  MARIE ", last_name="o'neil")
    assert (data.first_name, data.last_name) == ("Ann Marie", "O'Neil")
    assert CustomerUpdate(last_name="VAN DER BERG").last_name == "van der Berg"
    assert CustomerUpdate(last_name="DeVito").last_name == "DeVito"


local_parts = st.text(alphabet="abcxyz019._-+", min_size=1, max_size=12)
domains = st.sampled_from(["gmail.com", "googlemail.com", "shop.example", "mail.co.uk", "gmail.com.example"])
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)


@given(emails)
def test_canonical_email_is_idempotent(email):
    assert canonical_email(canonical_email(email)) == canonical_email(email)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=emails)
def test_sql_canonical_email_matches_python(session, email):
    """Detection groups emails in SQL; it must agree with canonical_email() on every backend."""
    assert session.scalar(select(canonical_email_sql(literal(email, String)))) == canonical_email(email)
