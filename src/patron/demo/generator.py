"""Deterministic, vectorised demo data for a mid-sized omnichannel retailer.

`generate()` fills an empty, migrated database with stores, a product catalogue,
customers with demographics and consent, three years of orders with lines and returns,
and a timeline of interactions. The same seed and reference date always give the same
rows, on SQLite and on PostgreSQL alike.

Purchasing follows the BG/NBD story (Fader, Hardie & Lee 2005, "Counting your
customers the easy way", Marketing Science 24(2)): while alive a customer buys as a
Poisson process with a gamma-distributed rate λ, and after each purchase drops out with
a beta-distributed probability p. Calendar seasonality is added by time-warping the
process through a daily intensity curve (December peak, January lull, busier weekends).
Order values carry a gamma-distributed per-customer spend propensity, in the spirit of
the Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV").

Customers are produced in chunks (default 50,000) so memory stays bounded at a
million customers; each chunk has its own random stream derived from the seed, and
all per-row work is numpy array arithmetic handed to the bulk loaders.
"""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.dtypes import StringDType
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from patron.demo import catalogue as cat
from patron.demo.loaders import Col, Loader, loader_for
from patron.errors import Conflict, InvalidInput
from patron.models import Customer, Order, Product, Store
from patron.models.enums import (
    AgeBand,
    ContactChannel,
    Gender,
    IncomeBand,
    MaritalStatus,
    OrderStatus,
    SalesChannel,
)

if TYPE_CHECKING:
    from rich.progress import Progress

S = StringDType()
DAY = 86_400
HOUR = 3_600
CHUNK_SIZE = 50_000
WINDOW_DAYS = 3 * 365 + 1  # "the past ~3 years" of history

TABLES = (
    "stores",
    "products",
    "customers",
    "customer_external_ids",
    "consent_events",
    "orders",
    "order_lines",
    "order_returns",
    "interactions",
)

# --- BG/NBD and spend parameters (per year). Chosen so a customer places ~10 orders on
# average over the window, with the heavy-tailed frequency real shops see.
RATE_SHAPE = 1.1  # r: heterogeneity of the purchase rate λ ~ Gamma(r, scale)
RATE_MEAN = 16.0  # E[λ], orders per year while alive
DROPOUT_A, DROPOUT_B = 1.2, 16.0  # p ~ Beta(a, b): chance of dropping out after a purchase
SPEND_SHAPE = 2.5  # spend propensity z ~ Gamma(shape, 1/shape) x income factor, mean ~1
MAX_ORDERS = 400  # caps the extreme tail of λ so one customer never dominates a chunk

MONTH_FACTOR = np.array([0.78, 0.80, 0.92, 0.95, 1.0, 0.95, 0.92, 0.98, 0.95, 1.0, 1.32, 1.78])
WEEKDAY_FACTOR = np.array([0.90, 0.90, 0.95, 1.0, 1.10, 1.20, 1.05])  # Monday first

# Local hour-of-day weights: shop opening hours, web traffic, the phone line's hours.
HOURS_STORE = np.array([0] * 9 + [3, 5, 7, 9, 8, 7, 7, 8, 9, 8, 6, 3] + [0] * 3, dtype=float)
HOURS_WEB = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 4, 4.5, 5, 4.5, 4.5, 4.5, 5, 5.5, 6, 7, 8, 8, 6, 3])
HOURS_PHONE = np.array([0] * 8 + [4, 7, 8, 8, 7, 6, 7, 7, 6, 5, 3, 2] + [0] * 4, dtype=float)
TOD_STORE, TOD_WEB, TOD_PHONE = 0, 1, 2

SALES_CHANNELS = [SalesChannel.in_store, SalesChannel.online, SalesChannel.mobile, SalesChannel.phone]
IN_STORE, ONLINE, MOBILE, PHONE = range(4)
BASE_CHANNEL_MIX = np.array([0.40, 0.33, 0.22, 0.05])

ADULT_BANDS = [AgeBand.a18_24, AgeBand.a25_34, AgeBand.a35_44, AgeBand.a45_54, AgeBand.a55_64, AgeBand.a65_plus]
BAND_EDGES = np.array([18, 25, 35, 45, 55, 65])  # lower bounds of ADULT_BANDS
BAND_SHARE = np.array([0.11, 0.22, 0.21, 0.18, 0.15, 0.13])
INCOME_BANDS = list(IncomeBand)
INCOME_BY_AGE = np.array(
    [
        [0.35, 0.30, 0.22, 0.10, 0.03],
        [0.15, 0.25, 0.32, 0.20, 0.08],
        [0.10, 0.18, 0.32, 0.26, 0.14],
        [0.10, 0.17, 0.30, 0.27, 0.16],
        [0.12, 0.20, 0.30, 0.24, 0.14],
        [0.22, 0.28, 0.28, 0.15, 0.07],
    ]
)
INCOME_SPEND = np.array([0.7, 0.85, 1.0, 1.25, 1.6])
MARITAL = list(MaritalStatus)  # single, partnered, married, divorced, widowed
MARITAL_BY_AGE = np.array(
    [
        [0.85, 0.13, 0.02, 0.00, 0.00],
        [0.45, 0.22, 0.30, 0.03, 0.00],
        [0.22, 0.12, 0.55, 0.10, 0.01],
        [0.15, 0.08, 0.58, 0.16, 0.03],
        [0.12, 0.06, 0.58, 0.17, 0.07],
        [0.10, 0.04, 0.50, 0.14, 0.22],
    ]
)
CHILDREN_BY_AGE = np.array([0.08, 0.45, 0.70, 0.60, 0.25, 0.05])  # P(children at home > 0)
CHANNEL_BY_AGE = np.array(
    [  # preferred sales channel: in_store, online, mobile, phone
        [0.25, 0.30, 0.43, 0.02],
        [0.30, 0.35, 0.33, 0.02],
        [0.38, 0.37, 0.22, 0.03],
        [0.45, 0.38, 0.13, 0.04],
        [0.52, 0.35, 0.07, 0.06],
        [0.58, 0.28, 0.04, 0.10],
    ]
)
GENDERS = [Gender.female, Gender.male, Gender.nonbinary, Gender.undisclosed]
GENDER_SHARE = np.array([0.51, 0.45, 0.02, 0.02])
CONTACT_CHANNELS = [ContactChannel.email, ContactChannel.sms, ContactChannel.phone, ContactChannel.post]

# progress(description, completed, total); a rich.progress.Progress is accepted as well.
ProgressCallback = Callable[[str, float, float], None]


@dataclass
class GenerationSummary:
    """What generate() wrote: rows per table and how long it took."""

    customers: int
    seed: int
    start: date
    end: date
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def generate(
    engine: Engine,
    *,
    customers: int,
    seed: int = 42,
    end: date | None = None,
    progress: ProgressCallback | Progress | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> GenerationSummary:
    """Fill an empty, migrated database with `customers` customers and their history."""
    if customers < 1:
        raise InvalidInput("customers must be at least 1")
    if chunk_size < 1:
        raise InvalidInput("chunk_size must be at least 1")
    started = time.perf_counter()
    end = end or datetime.now(UTC).date()
    _require_empty(engine)
    world = _World.build(seed, end)
    report = _reporter(progress, customers)
    summary = GenerationSummary(customers=customers, seed=seed, start=world.start, end=end, rows={t: 0 for t in TABLES})
    ids = _IdCounters()
    seen_emails: set[str] = set()

    with loader_for(engine, list(TABLES)) as loader:
        report("Stores and products", 0)
        summary.rows["stores"] += loader.write("stores", world.store_columns())
        summary.rows["products"] += loader.write("products", world.product_columns())
        for chunk_no, lo in enumerate(range(0, customers, chunk_size)):
            n = min(chunk_size, customers - lo)
            rng = np.random.default_rng([seed, 1, chunk_no])
            _generate_chunk(
                world,
                rng,
                loader,
                ids,
                n,
                seen_emails,
                summary.rows,
                lambda label, frac, lo=lo, n=n: report(label, lo + frac * n),
            )
        report("Finishing (indexes, statistics)", customers)
        loader.finish()
    report("Done", customers)
    summary.seconds = time.perf_counter() - started
    return summary


def _require_empty(engine: Engine) -> None:
    with engine.connect() as conn:
        for model in (Customer, Store, Product, Order):
            if conn.execute(select(func.count()).select_from(model)).scalar_one():
                raise Conflict(
                    f"the database already holds {model.__tablename__}; the demo generator only "
                    "fills an empty database (use a new one, or `patron demo` for a fresh file)"
                )


def _reporter(progress: ProgressCallback | Progress | None, total: int) -> Callable[[str, float], None]:
    """Adapt a Rich Progress or a plain callback(description, completed, total)."""
    if progress is None:
        return lambda label, done: None
    if hasattr(progress, "add_task"):
        task = progress.add_task("Generating", total=total)
        return lambda label, done: progress.update(task, description=label, completed=done)
    return lambda label, done: progress(label, done, total)


@dataclass
class _IdCounters:
    customer: int = 1
    external_id: int = 1
    consent: int = 1
    order: int = 1
    line: int = 1
    ret: int = 1
    interaction: int = 1

    def take(self, name: str, n: int) -> np.ndarray:
        first = getattr(self, name)
        setattr(self, name, first + n)
        return np.arange(first, first + n, dtype=np.int64)


# --------------------------------------------------------------------------- helpers


def _cum(p: np.ndarray) -> np.ndarray:
    """Row-wise cumulative probabilities with the last column exactly 1."""
    p = np.asarray(p, dtype=float)
    c = np.cumsum(p / p.sum(axis=-1, keepdims=True), axis=-1)
    c[..., -1] = 1.0
    return c


def _choice_rows(rng: np.random.Generator, cum: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per element, each from the distribution in row `rows[i]` of `cum`."""
    u = rng.random(len(rows))
    return (u[:, None] >= cum[rows]).sum(axis=1)


def _choice(rng: np.random.Generator, p, n: int) -> np.ndarray:
    return np.searchsorted(_cum(np.asarray(p)), rng.random(n), side="right")


def _ragged(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of the given sizes: each element's group and its rank within the group."""
    counts = np.asarray(counts, dtype=np.int64)
    group = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return group, np.arange(group.size) - starts[group]


def _strs(values) -> np.ndarray:
    return np.array(list(values), dtype=S)


def _cat(*parts) -> np.ndarray:
    out = parts[0]
    for p in parts[1:]:
        out = np.strings.add(out, p)
    return out


def _json_objects(key: str, values: np.ndarray) -> np.ndarray:
    return _cat(f'{{"{key}": ', np.asarray(values).astype(S), "}")


def _clean(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "".join(ch for ch in ascii_name if "a" <= ch <= "z") or "x"


@cache
def _name_table(locale: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Faker's name lists for a locale as (names, ascii lower-case names, cumulative weights)."""
    import importlib

    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    out = {}
    for key in ("first_names_female", "first_names_male", "last_names"):
        source = getattr(provider, key)
        if hasattr(source, "items"):
            names, weights = zip(*source.items(), strict=True)
        else:
            names, weights = tuple(source), (1.0,) * len(source)
        out[key] = (_strs(names), _strs(_clean(x) for x in names), _cum(np.array(weights)))
    return out


# --------------------------------------------------------------------------- the world


@dataclass
class _World:
    """Everything fixed for one seed and reference date: calendar, stores, catalogue."""

    seed: int
    end: date
    start: date
    start_ts: int
    horizon_ts: int  # first second after the data: midnight UTC at the start of `end`
    grid_days: np.ndarray  # epoch day numbers start..end inclusive
    warp: np.ndarray  # cumulative seasonal intensity at grid_days, in "average years"
    day_month: np.ndarray  # month index 0-11 of each grid day
    acq_cum: np.ndarray  # cumulative acquisition weights over the window's days
    tod_cum: np.ndarray  # (3, 24) hour-of-day distributions
    city_cum: np.ndarray
    city_offset: np.ndarray  # seconds to add to local time to get UTC
    city_tax: np.ndarray
    city_country: np.ndarray
    # Filled in by _build_stores() and _build_products():
    city_home_stores: list[np.ndarray] = field(default_factory=list)
    country_shops: dict[str, np.ndarray] = field(default_factory=dict)
    online_store_id: int = 0
    stores: dict[str, Any] = field(default_factory=dict)
    products: dict[str, Any] = field(default_factory=dict)
    prod_top: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    prod_price: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    prod_launch: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    prod_last_day: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # last day on sale
    prod_fallback: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    # (top category, spend bucket) -> (product indexes, cumulative weights)
    prod_pickers: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def build(cls, seed: int, end: date) -> _World:
        rng = np.random.default_rng([seed, 0])
        start = end - timedelta(days=WINDOW_DAYS)
        epoch = date(1970, 1, 1)
        start_day, end_day = (start - epoch).days, (end - epoch).days
        grid_days = np.arange(start_day, end_day + 1, dtype=np.int64)
        day_month = grid_days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
        weekday = (grid_days + 3) % 7  # 1970-01-01 was a Thursday
        intensity = MONTH_FACTOR[day_month[:-1]] * WEEKDAY_FACTOR[weekday[:-1]]
        intensity /= intensity.mean()
        warp = np.concatenate([[0.0], np.cumsum(intensity)]) / 365.25

        # Acquisitions grow over the years (the business is growing) and jump in Nov/Dec.
        x = np.linspace(0, 1, len(grid_days) - 1)
        acq_w = (1 + 1.5 * x) * np.where(day_month[:-1] >= 10, 1.4, 1.0)

        world = cls(
            seed=seed,
            end=end,
            start=start,
            start_ts=start_day * DAY,
            horizon_ts=end_day * DAY,
            grid_days=grid_days,
            warp=warp,
            day_month=day_month,
            acq_cum=_cum(acq_w),
            tod_cum=_cum(np.stack([HOURS_STORE, HOURS_WEB, HOURS_PHONE])),
            city_cum=_cum(np.array([c.weight for c in cat.CITIES])),
            city_offset=np.array([-c.utc_offset_hours * HOUR for c in cat.CITIES], dtype=np.int64),
            city_tax=np.array([c.tax_milli_percent for c in cat.CITIES], dtype=np.int64),
            city_country=np.array([c.country for c in cat.CITIES]),
        )
        world._build_stores(rng)
        world._build_products(rng)
        return world

    # ---- stores

    def _build_stores(self, rng: np.random.Generator) -> None:
        city_index = {c.name: i for i, c in enumerate(cat.CITIES)}
        rows = []
        for i, (city_name, suffix, kind) in enumerate(cat.SHOPS, start=1):
            city = cat.CITIES[city_index[city_name]]
            postal = city.postal_prefixes[0] + {"US": "01", "CA": " 1A1", "GB": " 1AB"}[city.country]
            code = f"{city.country}-{_clean(city_name)[:3].upper()}-{i:02d}"
            rows.append(
                (
                    i,
                    code,
                    f"{city_name} {suffix}",
                    kind,
                    city.name,
                    city.region,
                    city.country,
                    postal,
                    city_index[city_name],
                )
            )
        self.online_store_id = len(rows) + 1
        rows.append((self.online_store_id, "ONLINE", "Online shop & app", "online", None, None, None, None, -1))
        n = len(rows)
        opened = self.start_ts // DAY - rng.integers(400, 15 * 365, n)
        opened[-1] = self.start_ts // DAY - 4 * 365
        self.stores = {
            "id": np.array([r[0] for r in rows], dtype=np.int64),
            "code": _strs(r[1] for r in rows),
            "name": _strs(r[2] for r in rows),
            "kind": _strs(r[3] for r in rows),
            "city": _strs(r[4] or "" for r in rows),
            "region": _strs(r[5] or "" for r in rows),
            "country": _strs(r[6] or "" for r in rows),
            "postal_code": _strs(r[7] or "" for r in rows),
            "null": np.array([r[4] is None for r in rows]),
            "opened_on": opened,
        }
        store_city = np.array([r[8] for r in rows])
        shop_kind = np.array([r[3] for r in rows])
        self.city_home_stores = [
            self.stores["id"][(store_city == i) & (shop_kind == "shop")] for i in range(len(cat.CITIES))
        ]
        for country in {c.country for c in cat.CITIES}:
            self.country_shops[country] = self.stores["id"][self.stores["country"] == country]

    def store_columns(self) -> list[Col]:
        s = self.stores
        return [
            Col("id", "int", s["id"]),
            Col("code", "str", s["code"]),
            Col("name", "str", s["name"]),
            Col("kind", "str", s["kind"]),
            Col("city", "str", s["city"], s["null"]),
            Col("region", "str", s["region"], s["null"]),
            Col("country", "str", s["country"], s["null"]),
            Col("postal_code", "str", s["postal_code"], s["null"]),
            Col("opened_on", "date", s["opened_on"]),
            Col("created_at", "ts", s["opened_on"] * DAY + 9 * HOUR),
        ]

    # ---- products

    def _build_products(self, rng: np.random.Generator, total: int = 500) -> None:
        leaves = cat.LEAVES
        n_leaves = len(leaves)
        per_leaf = rng.multinomial(total - 6 * n_leaves, np.full(n_leaves, 1 / n_leaves)) + 6
        start_day, horizon_day = self.start_ts // DAY, self.horizon_ts // DAY
        rows = []
        for leaf_no, ((path, median, nouns), count) in enumerate(zip(leaves, per_leaf, strict=True)):
            top = path.split("/")[0]
            brands = cat.BRANDS[top]
            for j in range(count):
                brand, tier = brands[rng.integers(len(brands))]
                noun = nouns[rng.integers(len(nouns))]
                adjective = cat.ADJECTIVES[rng.integers(len(cat.ADJECTIVES))]
                name = f"{brand} {adjective} {noun}"
                attributes: dict[str, str] = {}
                if top in ("Women", "Men") or path.startswith(("Kids/Clothing", "Baby/Clothing")):
                    attributes["colour"] = cat.COLOURS[rng.integers(len(cat.COLOURS))]
                    name += f", {attributes['colour']}"
                if path.startswith("Kids/Toys"):
                    attributes["age_range"] = ("0-3", "3-5", "6-8", "8-12")[rng.integers(4)]
                dollars = median * cat.TIER_PRICE_FACTOR[tier] * rng.lognormal(0, 0.3)
                price = max(2, round(dollars)) * 100 - 1  # shelf prices end in .99
                lo, hi = cat.TIER_COST_SHARE[tier]
                cost = round(price * rng.uniform(lo, hi))
                # The first product of each leaf predates the window and stays in the range,
                # so every leaf always has something on sale (see prod_fallback).
                if j == 0 or rng.random() < 0.75:
                    launched = start_day - int(rng.integers(30, 5 * 365))
                else:
                    launched = start_day + int(rng.integers(0, horizon_day - start_day - 45))
                popularity = rng.lognormal(0, 0.9) * (1.5 if launched >= start_day else 1.0)
                # A few old lines are discontinued a year into the window; they keep their
                # sales history.
                discontinued = j > 0 and launched < start_day - 3 * 365 and rng.random() < 0.15
                sku = f"{_clean(top)[:3].upper()}-{leaf_no:02d}{j:03d}"
                rows.append(
                    (
                        sku,
                        name,
                        path,
                        brand,
                        tier,
                        price,
                        cost,
                        launched,
                        popularity,
                        json.dumps(attributes),
                        cat.TOP_CATEGORIES.index(top),
                        leaf_no,
                        discontinued,
                    )
                )
        n = len(rows)
        col = list(zip(*rows, strict=True))
        launch = np.array(col[7], dtype=np.int64)
        self.products = {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "sku": _strs(col[0]),
            "name": _strs(col[1]),
            "category_path": _strs(col[2]),
            "brand": _strs(col[3]),
            "tier": _strs(col[4]),
            "price": np.array(col[5], dtype=np.int64),
            "unit_cost": np.array(col[6], dtype=np.int64),
            "launched_on": launch,
            "is_active": ~np.array(col[12], dtype=bool),
            "attributes": _strs(col[9]),
        }
        self.prod_top = np.array(col[10], dtype=np.int64)
        self.prod_price = self.products["price"]
        self.prod_launch = launch
        self.prod_last_day = np.where(self.products["is_active"], horizon_day, start_day + 365)
        leaf = np.array(col[11], dtype=np.int64)
        popularity = np.array(col[8])
        tiers = np.array(col[4])
        # Fallback for a product picked when it was not on sale (before its launch or after
        # it was discontinued): the leaf's best seller that is on sale all along.
        fallback = np.empty(n, dtype=np.int64)
        for leaf_no in range(n_leaves):
            members = np.flatnonzero(leaf == leaf_no)
            old = members[(launch[members] < start_day) & self.products["is_active"][members]]
            fallback[members] = old[np.argmax(popularity[old])]
        self.prod_fallback = fallback
        tier_tilt = {  # spend bucket -> tier multipliers: thrifty, mainstream, big spenders
            0: {"value": 3.0, "standard": 1.0, "premium": 0.3},
            1: {"value": 1.0, "standard": 1.5, "premium": 0.6},
            2: {"value": 0.4, "standard": 1.0, "premium": 3.0},
        }
        for top in range(len(cat.TOP_CATEGORIES)):
            members = np.flatnonzero(self.prod_top == top)
            for bucket, tilt in tier_tilt.items():
                w = popularity[members] * np.array([tilt[t] for t in tiers[members]])
                self.prod_pickers[(top, bucket)] = (members, _cum(w))

    def product_columns(self) -> list[Col]:
        p = self.products
        created = (p["launched_on"] - 14) * DAY + 9 * HOUR
        return [
            Col("id", "int", p["id"]),
            Col("sku", "str", p["sku"]),
            Col("name", "str", p["name"]),
            Col("category_path", "str", p["category_path"]),
            Col("brand", "str", p["brand"]),
            Col("tier", "str", p["tier"]),
            Col("price", "money", p["price"]),
            Col("unit_cost", "money", p["unit_cost"]),
            Col("launched_on", "date", p["launched_on"]),
            Col("is_active", "bool", p["is_active"]),
            Col("attributes", "json", p["attributes"]),
            Col("created_at", "ts", created),
            Col("updated_at", "ts", created),
        ]

    # ---- calendar

    def local_times(
        self, rng: np.random.Generator, days: np.ndarray, tod_kind: np.ndarray, city: np.ndarray
    ) -> np.ndarray:
        """UTC epoch seconds for local calendar days at a plausible local hour."""
        hour = _choice_rows(rng, self.tod_cum, tod_kind)
        return days * DAY + hour * HOUR + rng.integers(0, HOUR, len(days)) + self.city_offset[city]

    def warp_at(self, ts: np.ndarray) -> np.ndarray:
        return np.interp(ts / DAY, self.grid_days, self.warp)

    def unwarp_day(self, w: np.ndarray) -> np.ndarray:
        return np.floor(np.interp(w, self.warp, self.grid_days)).astype(np.int64)


# --------------------------------------------------------------------------- one chunk


def _generate_chunk(
    world: _World,
    rng: np.random.Generator,
    loader: Loader,
    ids: _IdCounters,
    n: int,
    seen_emails: set[str],
    rows: dict[str, int],
    report: Callable[[str, float], None],
) -> None:
    report("Customers", 0.0)
    cust = _customers(world, rng, ids.take("customer", n), seen_emails)
    rows["customers"] += loader.write("customers", cust.columns)
    rows["customer_external_ids"] += loader.write("customer_external_ids", _external_ids(rng, ids, cust))
    rows["consent_events"] += loader.write("consent_events", _consents(world, rng, ids, cust))
    report("Orders", 0.25)
    orders = _orders(world, rng, ids, cust)
    rows["orders"] += loader.write("orders", orders.columns)
    report("Order lines", 0.55)
    rows["order_lines"] += loader.write("order_lines", orders.line_columns)
    rows["order_returns"] += loader.write("order_returns", orders.return_columns)
    report("Interactions", 0.85)
    rows["interactions"] += loader.write("interactions", _interactions(world, rng, ids, cust, orders))


@dataclass
class _Customers:
    columns: list[Col]
    id: np.ndarray
    city: np.ndarray
    created: np.ndarray  # epoch seconds
    has_email: np.ndarray
    has_phone: np.ndarray
    fav: np.ndarray  # (n, 3) favourite top categories
    spend: np.ndarray  # spend propensity z
    rate: np.ndarray  # λ, orders per year while alive
    dropout: np.ndarray  # p
    channel_pref: np.ndarray
    acquired_in_store: np.ndarray
    buyer: np.ndarray  # made a first purchase when acquired
    home_store: np.ndarray


def _customers(world: _World, rng: np.random.Generator, cid: np.ndarray, seen_emails: set[str]) -> _Customers:
    n = len(cid)
    city = np.searchsorted(world.city_cum, rng.random(n), side="right")
    country = world.city_country[city]

    # Acquisition: a day in the window, an hour that fits the channel.
    acq_channel = _choice(rng, [c[1] for c in cat.ACQUISITION_CHANNELS], n)
    in_store_acq = acq_channel == 0
    acq_day = world.grid_days[0] + np.searchsorted(world.acq_cum, rng.random(n), side="right")
    created = world.local_times(rng, acq_day, np.where(in_store_acq, TOD_STORE, TOD_WEB), city)
    created = np.clip(created, world.start_ts, world.horizon_ts - 1)
    acquired_on = created // DAY

    # Age at the reference date; nobody was a minor when they signed up.
    years_since = (world.horizon_ts - created) / (365.25 * DAY)
    band0 = _choice(rng, BAND_SHARE, n)
    top_age = np.append(BAND_EDGES[1:], 90)
    age = rng.integers(BAND_EDGES[band0], top_age[band0])
    age = np.maximum(age, 18 + np.ceil(years_since).astype(np.int64))
    end_ord = world.horizon_ts // DAY
    birth = end_ord - np.floor(age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    bdate = birth.astype("datetime64[D]")
    by = bdate.astype("datetime64[Y]").astype(np.int64) + 1970
    bm = bdate.astype("datetime64[M]").astype(np.int64) % 12 + 1
    bd = (bdate - bdate.astype("datetime64[M]")).astype(np.int64) + 1
    e = world.end
    exact_age = e.year - by - ((bm > e.month) | ((bm == e.month) & (bd > e.day)))
    band = np.searchsorted(BAND_EDGES, exact_age, side="right") - 1
    band_value = np.array([b.value for b in ADULT_BANDS])[band]
    know = rng.random(n)
    birthday_null = know >= 0.78  # 78% full birthday, 10% only an age band, 12% nothing
    band_null = know >= 0.88

    gender = _choice(rng, GENDER_SHARE, n)
    income = _choice_rows(rng, _cum(INCOME_BY_AGE), band)
    marital = _choice_rows(rng, _cum(MARITAL_BY_AGE), band)
    couple = (marital == 1) | (marital == 2)
    p_kids = np.clip(CHILDREN_BY_AGE[band] * np.where(couple, 1.25, 0.6), 0, 0.95)
    children = np.where(rng.random(n) < p_kids, 1 + rng.binomial(3, 0.3, n), 0)
    household = 1 + couple + children + (rng.random(n) < 0.08)
    income_null = rng.random(n) < 0.18
    marital_null = rng.random(n) < 0.15
    household_null = rng.random(n) < 0.12

    first, last, first_clean, last_clean = _names(world, rng, city, gender)
    has_email = rng.random(n) < 0.88
    email = _emails(rng, cid, first_clean, last_clean, by, has_email, seen_emails)
    has_phone = rng.random(n) < 0.72
    phone = _phones(rng, city)
    address_null = rng.random(n) >= 0.75
    address, postal = _addresses(rng, city, country)

    # Favourite top categories: gender, age and children shape what people browse.
    tops = cat.TOP_CATEGORIES
    w = np.tile(np.array(cat.TOP_CATEGORY_WEIGHTS), (n, 1))
    w[:, tops.index("Women")] *= np.where(gender == 0, 3.0, np.where(gender == 1, 0.3, 1.2))
    w[:, tops.index("Beauty")] *= np.where(gender == 0, 2.5, np.where(gender == 1, 0.5, 1.5))
    w[:, tops.index("Men")] *= np.where(gender == 1, 3.0, np.where(gender == 0, 0.4, 1.2))
    w[:, tops.index("Electronics")] *= np.where(gender == 1, 1.8, 1.0)
    parent = children > 0
    young_parent = parent & (exact_age < 45)
    w[:, tops.index("Kids")] *= np.where(parent, 6.0, 0.3)
    w[:, tops.index("Baby")] *= np.where(young_parent, 5.0, np.where(parent, 1.0, 0.15))
    w[:, tops.index("Books")] *= np.where(exact_age >= 55, 2.0, 1.0)
    # Gumbel top-k draws three distinct categories per customer without a Python loop.
    keys = np.log(w) + rng.gumbel(size=w.shape)
    fav = np.argsort(-keys, axis=1)[:, :3]

    interests = _interests(rng, fav)

    spend = rng.gamma(SPEND_SHAPE, 1 / SPEND_SHAPE, n) * INCOME_SPEND[income]
    rate = rng.gamma(RATE_SHAPE, RATE_MEAN / RATE_SHAPE, n)
    dropout = rng.beta(DROPOUT_A, DROPOUT_B, n)
    channel_pref = _choice_rows(rng, _cum(CHANNEL_BY_AGE), band)
    channel_pref = np.where(in_store_acq & (rng.random(n) < 0.5), IN_STORE, channel_pref)
    buyer = in_store_acq | (rng.random(n) < 0.89)  # the rest only signed up for the newsletter
    # Home shop: the city's shop; in cities with two, customers split between them.
    first_shop = np.array([s[0] for s in world.city_home_stores])[city]
    last_shop = np.array([s[-1] for s in world.city_home_stores])[city]
    home_store = np.where(rng.random(n) < 0.45, last_shop, first_shop)

    acq_mean = np.array([c[2] for c in cat.ACQUISITION_CHANNELS])[acq_channel]
    acq_cost = np.where(acq_mean > 0, np.round(rng.gamma(4.0, 1, n) / 4 * acq_mean * 100), 0).astype(np.int64)
    referral = acq_channel == [c[0] for c in cat.ACQUISITION_CHANNELS].index("referral")
    acq_cost = np.where(referral, np.where(rng.random(n) < 0.5, 1000, 1500), acq_cost)

    pref_contact = _choice(rng, [0.55, 0.25, 0.08, 0.05, 0.07], n)  # email, sms, phone, post, unknown
    pref_contact = np.where((pref_contact == 0) & ~has_email, 3, pref_contact)
    pref_contact = np.where((pref_contact == 1) & ~has_phone, 4, pref_contact)
    pref_contact_null = pref_contact == 4
    pref_contact = np.minimum(pref_contact, 3)

    language = np.empty(n, dtype=S)
    tz = np.empty(n, dtype=S)
    region = np.empty(n, dtype=S)
    for i, c in enumerate(cat.CITIES):
        m = city == i
        langs, lw = zip(*c.languages, strict=True)
        language[m] = _strs(langs)[_choice(rng, lw, int(m.sum()))]
        tz[m] = c.time_zone
        region[m] = c.region
    city_names = _strs(c.name for c in cat.CITIES)

    columns = [
        Col("id", "int", cid),
        Col("first_name", "str", first),
        Col("last_name", "str", last),
        Col("email", "str", email, ~has_email),
        Col("phone", "str", phone, ~has_phone),
        Col("birthday", "date", birth, birthday_null),
        Col("gender", "str", _strs(g.value for g in GENDERS)[gender]),
        Col("address_line", "str", address, address_null),
        Col("city", "str", city_names[city]),
        Col("region", "str", region),
        Col("country", "str", country.astype(S)),
        Col("postal_code", "str", postal, address_null & (rng.random(n) < 0.5)),
        Col("birth_year", "int", by, birthday_null),
        Col("age_band", "str", band_value.astype(S), band_null),
        Col("income_band", "str", _strs(b.value for b in INCOME_BANDS)[income], income_null),
        Col("marital_status", "str", _strs(m.value for m in MARITAL)[marital], marital_null),
        Col("household_size", "int", household, household_null),
        Col("children", "int", children, household_null),
        Col("interests", "json", interests),
        Col("acquired_at", "date", acquired_on),
        Col("acquisition_channel", "str", _strs(c[0] for c in cat.ACQUISITION_CHANNELS)[acq_channel]),
        Col("acquisition_cost", "money", acq_cost),
        Col("preferred_channel", "str", _strs(c.value for c in CONTACT_CHANNELS)[pref_contact], pref_contact_null),
        Col("language", "str", language),
        Col("time_zone", "str", tz),
        Col("attributes", "json", np.full(n, "{}", dtype=S)),
        Col("created_at", "ts", created),
        Col("updated_at", "ts", created),
    ]
    return _Customers(
        columns=columns,
        id=cid,
        city=city,
        created=created,
        has_email=has_email,
        has_phone=has_phone,
        fav=fav,
        spend=spend,
        rate=rate,
        dropout=dropout,
        channel_pref=channel_pref,
        acquired_in_store=in_store_acq,
        buyer=buyer,
        home_store=home_store,
    )


def _names(world: _World, rng: np.random.Generator, city: np.ndarray, gender: np.ndarray):
    n = len(city)
    first = np.empty(n, dtype=S)
    last = np.empty(n, dtype=S)
    first_clean = np.empty(n, dtype=S)
    last_clean = np.empty(n, dtype=S)
    locales = sorted({loc for c in cat.CITIES for loc, _ in c.name_locales})
    locale_of = np.zeros(n, dtype=np.int64)
    for i, c in enumerate(cat.CITIES):
        m = city == i
        locs, lw = zip(*c.name_locales, strict=True)
        locale_of[m] = np.array([locales.index(x) for x in locs])[_choice(rng, lw, int(m.sum()))]
    # Non-binary and undisclosed customers get a name from either list.
    female_list = (gender == 0) | ((gender >= 2) & (rng.random(n) < 0.5))
    for li, locale in enumerate(locales):
        table = _name_table(locale)
        for key, mask in (("first_names_female", female_list), ("first_names_male", ~female_list)):
            m = (locale_of == li) & mask
            names, clean, cum = table[key]
            pick = np.searchsorted(cum, rng.random(int(m.sum())), side="right")
            first[m], first_clean[m] = names[pick], clean[pick]
        m = locale_of == li
        names, clean, cum = table["last_names"]
        pick = np.searchsorted(cum, rng.random(int(m.sum())), side="right")
        last[m], last_clean[m] = names[pick], clean[pick]
    return first, last, first_clean, last_clean


def _emails(
    rng: np.random.Generator,
    cid: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    birth_year: np.ndarray,
    has_email: np.ndarray,
    seen: set[str],
) -> np.ndarray:
    """Lower-case addresses like jane.smith84@example.com, unique across all chunks."""
    n = len(cid)
    domains, dw = zip(*cat.EMAIL_DOMAINS, strict=True)
    domain = _strs(domains)[_choice(rng, dw, n)]
    initial_f = np.strings.slice(first, 0, 1)
    initial_l = np.strings.slice(last, 0, 1)
    pattern = _choice(rng, [0.35, 0.2, 0.2, 0.1, 0.15], n)
    local = np.where(
        pattern == 0,
        _cat(first, ".", last),
        np.where(
            pattern == 1,
            _cat(first, last),
            np.where(
                pattern == 2,
                _cat(initial_f, last),
                np.where(pattern == 3, _cat(first, "_", last), _cat(first, initial_l)),
            ),
        ),
    )
    kind = _choice(rng, [0.45, 0.3, 0.25], n)
    two_digit = np.strings.zfill((birth_year % 100).astype(S), 2)
    number = rng.integers(1, 1000, n).astype(S)
    suffix = np.where(kind == 0, "", np.where(kind == 1, two_digit, number)).astype(S)
    email = _cat(local, suffix, "@", domain)

    # Collisions (within this chunk or with earlier chunks) get ".<id>" appended: no
    # generated address has a dot followed by digits before the @, so these are unique.
    _, first_seen = np.unique(email, return_index=True)
    dup = np.ones(n, dtype=bool)
    dup[first_seen] = False
    clash = seen.intersection(email[has_email].tolist())
    if clash:
        dup |= np.isin(email, _strs(clash))
    dup &= has_email
    if dup.any():
        email[dup] = _cat(local[dup], ".", cid[dup].astype(S), "@", domain[dup])
    seen.update(email[has_email].tolist())
    return email


def _phones(rng: np.random.Generator, city: np.ndarray) -> np.ndarray:
    """Valid E.164 numbers: real area codes of the customer's city, or a UK mobile range."""
    n = len(city)
    out = np.empty(n, dtype=S)
    for i, c in enumerate(cat.CITIES):
        m = np.flatnonzero(city == i)
        k = len(m)
        mobile = rng.random(k) < (0.65 if c.country == "GB" else 0.0)
        prefix = _strs(c.phone_prefixes)[rng.integers(0, len(c.phone_prefixes), k)]
        lead = np.array(list(c.phone_first_digits))[rng.integers(0, len(c.phone_first_digits), k)].astype(S)
        rest = np.strings.zfill(rng.integers(0, 10 ** (c.phone_digits - 1), k).astype(S), c.phone_digits - 1)
        landline = _cat(prefix, lead, rest)
        mob_prefix = _strs(cat.GB_MOBILE_PREFIXES)[rng.integers(0, len(cat.GB_MOBILE_PREFIXES), k)]
        mob = _cat(
            mob_prefix, np.strings.zfill(rng.integers(0, 10**cat.GB_MOBILE_DIGITS, k).astype(S), cat.GB_MOBILE_DIGITS)
        )
        out[m] = np.where(mobile, mob, landline)
    return out


def _addresses(rng: np.random.Generator, city: np.ndarray, country: np.ndarray):
    n = len(city)
    gb = country == "GB"
    us_street = _cat(
        rng.integers(1, 9999, n).astype(S),
        " ",
        _strs(cat.US_STREETS)[rng.integers(0, len(cat.US_STREETS), n)],
        " ",
        _strs(cat.US_STREET_SUFFIXES)[rng.integers(0, len(cat.US_STREET_SUFFIXES), n)],
    )
    gb_street = _cat(
        rng.integers(1, 250, n).astype(S),
        " ",
        _strs(cat.GB_STREETS)[rng.integers(0, len(cat.GB_STREETS), n)],
        " ",
        _strs(cat.GB_STREET_SUFFIXES)[rng.integers(0, len(cat.GB_STREET_SUFFIXES), n)],
    )
    apt = _cat(", Apt ", rng.integers(1, 30, n).astype(S), _strs("ABCDEF")[rng.integers(0, 6, n)])
    address = np.where(gb, gb_street, us_street)
    ny = city == [c.name for c in cat.CITIES].index("New York")
    address = np.where(ny & (rng.random(n) < 0.6), _cat(address, apt), address).astype(S)

    postal = np.empty(n, dtype=S)
    letters = _strs("ABCEGHJKLMNPRSTVWXYZ")
    gb_letters = _strs("ABDEFGHJLNPQRSTUWXYZ")
    for i, c in enumerate(cat.CITIES):
        m = city == i
        k = int(m.sum())
        pre = _strs(c.postal_prefixes)[rng.integers(0, len(c.postal_prefixes), k)]
        if c.country == "US":
            postal[m] = _cat(pre, np.strings.zfill(rng.integers(0, 100, k).astype(S), 2))
        elif c.country == "CA":
            postal[m] = _cat(
                pre,
                " ",
                rng.integers(0, 10, k).astype(S),
                letters[rng.integers(0, 20, k)],
                rng.integers(0, 10, k).astype(S),
            )
        else:
            postal[m] = _cat(
                pre,
                " ",
                rng.integers(0, 10, k).astype(S),
                gb_letters[rng.integers(0, 20, k)],
                gb_letters[rng.integers(0, 20, k)],
            )
    return address, postal


def _interests(rng: np.random.Generator, fav: np.ndarray) -> np.ndarray:
    """JSON tag lists: most tags follow the favourite categories, a few are random."""
    n = len(fav)
    tags = cat.INTERESTS
    mask = np.zeros(n, dtype=np.int64)
    for slot, p in ((0, 0.8), (1, 0.5), (2, 0.3)):
        for top_no, top in enumerate(cat.TOP_CATEGORIES):
            options = cat.CATEGORY_INTERESTS[top]
            m = (fav[:, slot] == top_no) & (rng.random(n) < p)
            pick = np.array([tags.index(t) for t in options])[rng.integers(0, len(options), int(m.sum()))]
            mask[m] |= 1 << pick
    extra = rng.random(n) < 0.2
    mask[extra] |= 1 << rng.integers(0, len(tags), int(extra.sum()))
    # Few distinct tag sets exist, so JSON is built once per set, not once per customer.
    uniq, inverse = np.unique(mask, return_inverse=True)
    texts = _strs(json.dumps([t for b, t in enumerate(tags) if u >> b & 1]) for u in uniq.tolist())
    return texts[inverse]


def _external_ids(rng: np.random.Generator, ids: _IdCounters, cust: _Customers) -> list[Col]:
    linked = rng.random(len(cust.id)) < 0.85
    cid = cust.id[linked]
    return [
        Col("id", "int", ids.take("external_id", len(cid))),
        Col("customer_id", "int", cid),
        Col("source", "str", np.full(len(cid), "shop", dtype=S)),
        Col("external_id", "str", _cat("C", np.strings.zfill((cid + 100_000).astype(S), 8))),
    ]


def _consents(world: _World, rng: np.random.Generator, ids: _IdCounters, cust: _Customers) -> list[Col]:
    """Sign-up consent for email and SMS marketing, plus later unsubscribes."""
    n = len(cust.id)
    email_granted = rng.random(n) < 0.72
    sms_granted = rng.random(n) < 0.40
    unsub = cust.has_email & email_granted & (rng.random(n) < 0.10)
    unsub_at = cust.created + (rng.random(n) * (world.horizon_ts - 1 - cust.created)).astype(np.int64)
    parts = [
        (cust.has_email, "email", np.where(email_granted, "granted", "withdrawn"), "signup", cust.created),
        (cust.has_phone, "sms", np.where(sms_granted, "granted", "withdrawn"), "signup", cust.created),
        (unsub, "email", np.full(n, "withdrawn"), "unsubscribe", unsub_at),
    ]
    customer = np.concatenate([cust.id[m] for m, *_ in parts])
    channel = np.concatenate([np.full(int(m.sum()), ch) for m, ch, *_ in parts]).astype(S)
    status = np.concatenate([st[m] for m, _, st, *_ in parts]).astype(S)
    source = np.concatenate([np.full(int(m.sum()), src) for m, _, _, src, _ in parts]).astype(S)
    at = np.concatenate([t[m] for m, *_, t in parts])
    order = np.lexsort((customer, at))
    k = len(customer)
    return [
        Col("id", "int", ids.take("consent", k)),
        Col("customer_id", "int", customer[order]),
        Col("channel", "str", channel[order]),
        Col("purpose", "str", np.full(k, "marketing", dtype=S)),
        Col("status", "str", status[order]),
        Col("source", "str", source[order]),
        Col("recorded_at", "ts", at[order]),
    ]


@dataclass
class _Orders:
    columns: list[Col]
    line_columns: list[Col]
    return_columns: list[Col]
    id: np.ndarray
    cust: np.ndarray  # index into the chunk's customers
    placed: np.ndarray
    channel: np.ndarray
    total: np.ndarray
    external_id: np.ndarray
    complaint_at: np.ndarray  # per complaint: time, order index, reason
    complaint_order: np.ndarray
    complaint_reason: np.ndarray


def _orders(world: _World, rng: np.random.Generator, ids: _IdCounters, cust: _Customers) -> _Orders:
    n = len(cust.id)
    horizon = world.horizon_ts

    # BG/NBD: alive for Geometric(p) purchases; repeat purchases arrive as a Poisson process
    # in seasonally warped time. The first m of M uniform arrival times are the first m
    # normalised exponential spacings S_k / S_{M+1}, so no discarded draws are made.
    w0 = world.warp_at(cust.created)
    exposure = world.warp[-1] - w0
    allowed = rng.geometric(cust.dropout) - 1
    arrivals = rng.poisson(cust.rate * exposure)
    repeats = np.where(cust.buyer, np.minimum(np.minimum(arrivals, allowed), MAX_ORDERS), 0)
    group, _ = _ragged(repeats)
    spacing = rng.standard_exponential(group.size)
    csum = np.cumsum(spacing)
    group_end = np.cumsum(repeats)
    before = np.concatenate([[0.0], csum])[group_end - repeats]  # cumsum before each group
    s_k = csum - before[group]
    s_m = np.zeros(n)
    has = repeats > 0
    s_m[has] = csum[group_end[has] - 1] - before[has]
    s_total = s_m + rng.gamma(np.maximum(arrivals - repeats, 0) + 1.0)
    u = s_k / s_total[group]
    repeat_day = world.unwarp_day(w0[group] + u * exposure[group])

    # Channels: the first order follows how the customer was acquired, later ones mostly
    # the customer's habit.
    habit = rng.random(group.size) < 0.65
    mix = np.searchsorted(_cum(BASE_CHANNEL_MIX), rng.random(group.size), side="right")
    repeat_channel = np.where(habit, cust.channel_pref[group], mix)
    first_channel = np.where(
        cust.acquired_in_store, IN_STORE, np.where(cust.channel_pref == IN_STORE, ONLINE, cust.channel_pref)
    )
    tod = np.array([TOD_STORE, TOD_WEB, TOD_WEB, TOD_PHONE])[repeat_channel]
    repeat_ts = world.local_times(rng, repeat_day, tod, cust.city[group])
    repeat_ts = np.clip(repeat_ts, cust.created[group] + 60, horizon - 1)

    buyers = np.flatnonzero(cust.buyer)
    oc = np.concatenate([buyers, group])
    placed = np.concatenate([cust.created[buyers], repeat_ts])
    channel = np.concatenate([first_channel[buyers], repeat_channel])
    order = np.lexsort((oc, placed))  # ids follow time within the chunk, as a live shop's would
    oc, placed, channel = oc[order], placed[order], channel[order]
    m = len(oc)
    oid = ids.take("order", m)

    store = np.where(
        channel == IN_STORE,
        cust.home_store[oc],
        np.where((channel == ONLINE) | (channel == MOBILE), world.online_store_id, 0),
    )
    travelling = (channel == IN_STORE) & (rng.random(m) < 0.08)
    if travelling.any():
        country = world.city_country[cust.city[oc[travelling]]]
        for c in np.unique(country):
            sel = np.flatnonzero(travelling)[country == c]
            shops = world.country_shops[c]
            store[sel] = shops[rng.integers(0, len(shops), len(sel))]

    # Lines: 1-4 per order, more for big spenders; products from favourite categories.
    spend = cust.spend[oc]
    n_lines = 1 + np.minimum(3, rng.poisson(0.55 * spend))
    lo, line_no = _ragged(n_lines)
    lc = oc[lo]
    k = len(lo)
    from_fav = rng.random(k) < 0.8
    slot = np.searchsorted(_cum(np.array([0.5, 0.3, 0.2])), rng.random(k), side="right")
    top = np.where(
        from_fav,
        cust.fav[lc, slot],
        np.searchsorted(_cum(np.array(cat.TOP_CATEGORY_WEIGHTS)), rng.random(k), side="right"),
    )
    bucket = np.digitize(cust.spend[lc], [0.75, 1.4])
    product = np.empty(k, dtype=np.int64)
    u = rng.random(k)
    for (t, b), (members, cum) in world.prod_pickers.items():
        sel = (top == t) & (bucket == b)
        if sel.any():
            product[sel] = members[np.searchsorted(cum, u[sel], side="right")]
    line_day = placed[lo] // DAY
    off_sale = (world.prod_launch[product] > line_day) | (world.prod_last_day[product] < line_day)
    product = np.where(off_sale, world.prod_fallback[product], product)
    price = world.prod_price[product]
    cheap = price < 1500
    quantity = 1 + np.where(cheap, _choice(rng, [0.6, 0.25, 0.1, 0.05], k), _choice(rng, [0.8, 0.14, 0.04, 0.02], k))
    # Promotions: Black Friday week, after-Christmas and summer sales discount more lines.
    month = world.day_month[line_day - world.grid_days[0]]
    dom = (line_day.astype("datetime64[D]") - line_day.astype("datetime64[D]").astype("datetime64[M]")).astype(
        np.int64
    ) + 1
    sale = (
        ((month == 10) & (dom >= 20))
        | ((month == 11) & (dom >= 26))
        | ((month == 0) & (dom <= 7))
        | ((month == 6) & (dom <= 10))
    )
    discounted = rng.random(k) < np.where(sale, 0.35, 0.12)
    pct = np.array([10, 15, 20, 25, 30])[rng.integers(0, 5, k)]
    gross = quantity * price
    line_discount = np.where(discounted, (gross * pct + 50) // 100, 0)
    line_net = gross - line_discount
    subtotal = np.bincount(lo, weights=line_net, minlength=m).astype(np.int64)

    coupon = rng.random(m) < 0.08
    discount = np.where(coupon, (subtotal * rng.integers(5, 21, m) + 50) // 100, 0)
    shipping = np.where(
        channel == PHONE,
        799,
        np.where(((channel == ONLINE) | (channel == MOBILE)) & (subtotal - discount < 5000), 599, 0),
    )
    tax = ((subtotal - discount + shipping) * world.city_tax[cust.city[oc]] + 50_000) // 100_000
    total = subtotal - discount + shipping + tax

    # Status follows age: recent remote orders are still open; a few are cancelled.
    age = horizon - placed
    remote = channel != IN_STORE
    status = np.full(m, OrderStatus.fulfilled.value, dtype=object)
    r = rng.random(m)
    status[remote & (age < DAY)] = np.where(r[remote & (age < DAY)] < 0.5, "placed", "paid")
    recent = remote & (age >= DAY) & (age < 4 * DAY) & (r < 0.4)
    status[recent] = "paid"
    cancelled = rng.random(m) < np.where(remote, 0.02, 0.003)
    status[cancelled] = "cancelled"
    updated = placed.copy()
    shipped = remote & (status == "fulfilled")
    updated[shipped] = np.minimum(placed[shipped] + rng.integers(DAY, 4 * DAY, int(shipped.sum())), horizon - 1)

    line_id = ids.take("line", k)
    returns = _returns(
        rng,
        ids,
        world,
        oid,
        placed,
        status,
        channel,
        n_lines,
        lo,
        line_id,
        quantity,
        line_net,
        subtotal,
        total,
        shipping,
    )
    ret_order_idx, ret_at, ret_reason = returns["order_idx"], returns["at"], returns["reason"]
    if len(ret_order_idx):
        full = returns["full_orders"]
        status[returns["partial_orders"]] = "partially_returned"
        status[full] = "returned"
        last_ret = np.zeros(m, dtype=np.int64)
        np.maximum.at(last_ret, ret_order_idx, ret_at)
        updated = np.maximum(updated, last_ret)

    prefix = np.array(["POS-", "WEB-", "APP-", "TEL-"])[channel].astype(S)
    external = _cat(prefix, np.strings.zfill(oid.astype(S), 9))
    complaint = np.isin(ret_reason, np.array(cat.COMPLAINT_RETURN_REASONS + cat.COMPLAINT_REFUND_REASONS))
    columns = [
        Col("id", "int", oid),
        Col("external_id", "str", external),
        Col("customer_id", "int", cust.id[oc]),
        Col("placed_at", "ts", placed),
        Col("channel", "str", _strs(c.value for c in SALES_CHANNELS)[channel]),
        Col("store_id", "int", store, store == 0),
        Col("status", "str", status.astype(str).astype(S)),
        Col("currency", "str", np.full(m, "USD", dtype=S)),
        Col("subtotal", "money", subtotal),
        Col("discount", "money", discount),
        Col("shipping_fee", "money", shipping),
        Col("tax", "money", tax),
        Col("total", "money", total),
        Col("created_at", "ts", placed),
        Col("updated_at", "ts", updated),
    ]
    line_columns = [
        Col("id", "int", line_id),
        Col("order_id", "int", oid[lo]),
        Col("line_no", "int", line_no + 1),
        Col("product_id", "int", world.products["id"][product]),
        Col("quantity", "int", quantity),
        Col("unit_price", "money", price),
        Col("discount", "money", line_discount),
    ]
    return _Orders(
        columns=columns,
        line_columns=line_columns,
        return_columns=returns["columns"],
        id=oid,
        cust=oc,
        placed=placed,
        channel=channel,
        total=total,
        external_id=external,
        complaint_at=ret_at[complaint] - rng.integers(2 * HOUR, 2 * DAY, int(complaint.sum())),
        complaint_order=ret_order_idx[complaint],
        complaint_reason=ret_reason[complaint],
    )


def _returns(
    rng, ids, world, oid, placed, status, channel, n_lines, lo, line_id, quantity, line_net, subtotal, total, shipping
) -> dict[str, Any]:
    """Returns of goods (whole orders or one line) and goodwill refunds on older fulfilled orders.

    A returned line refunds its share of what the customer paid for goods
    (total - shipping), rounded down, so refunds never exceed the order total.
    """
    m = len(oid)
    eligible = (status == "fulfilled") & (world.horizon_ts - placed > 31 * DAY)
    hit = eligible & (rng.random(m) < np.where(channel == IN_STORE, 0.04, 0.09))
    kind_draw = rng.random(m)
    refund = hit & (kind_draw < 0.15)
    full = hit & ~refund & ((kind_draw < 0.45) | (n_lines == 1))
    partial = hit & ~refund & ~full
    line_start = np.cumsum(n_lines) - n_lines
    paid_goods = total - shipping

    # Full returns: every line of the order.
    full_lines = np.flatnonzero(full[lo])
    # Partial returns: one line, possibly only some of its units.
    partial_orders = np.flatnonzero(partial)
    picked = line_start[partial_orders] + rng.integers(0, n_lines[partial_orders])
    returned_lines = np.concatenate([full_lines, picked])
    qty = quantity[returned_lines].copy()
    part_qty = rng.integers(1, quantity[picked] + 1)
    qty[len(full_lines) :] = part_qty
    ret_order = lo[returned_lines]
    amount = line_net[returned_lines] * qty // quantity[returned_lines]
    amount = amount * paid_goods[ret_order] // subtotal[ret_order]

    refund_orders = np.flatnonzero(refund)
    refund_amount = (total[refund_orders] * rng.integers(10, 26, len(refund_orders))) // 100

    order_idx = np.concatenate([ret_order, refund_orders])
    n_ret = len(order_idx)
    # One date per order so a full return's lines come back together.
    per_order_delay = rng.integers(2 * DAY, 28 * DAY, m)
    at = placed[order_idx] + per_order_delay[order_idx]
    reason_return = _strs(cat.RETURN_REASONS)[rng.integers(0, len(cat.RETURN_REASONS), m)]
    reason_refund = _strs(cat.REFUND_REASONS)[rng.integers(0, len(cat.REFUND_REASONS), m)]
    reason = np.concatenate([reason_return[ret_order], reason_refund[refund_orders]])
    is_refund = np.concatenate([np.zeros(len(ret_order), bool), np.ones(len(refund_orders), bool)])
    sort = np.lexsort((order_idx, at))
    order_idx, at, reason, is_refund = order_idx[sort], at[sort], reason[sort], is_refund[sort]
    line_ref = np.concatenate([line_id[returned_lines], np.zeros(len(refund_orders), np.int64)])[sort]
    qty_all = np.concatenate([qty, np.zeros(len(refund_orders), np.int64)])[sort]
    amount_all = np.concatenate([amount, refund_amount])[sort]
    # Only one complaint per order even when several lines came back.
    first_of_order = np.ones(n_ret, dtype=bool)
    if n_ret:
        _, first_idx = np.unique(order_idx, return_index=True)
        first_of_order[:] = False
        first_of_order[first_idx] = True
    columns = [
        Col("id", "int", ids.take("ret", n_ret)),
        Col("order_id", "int", oid[order_idx]),
        Col("order_line_id", "int", line_ref, is_refund),
        Col("kind", "str", np.where(is_refund, "refund", "return").astype(S)),
        Col("quantity", "int", qty_all, is_refund),
        Col("amount", "money", amount_all),
        Col("reason", "str", reason),
        Col("returned_at", "ts", at),
    ]
    return {
        "columns": columns,
        "order_idx": order_idx[first_of_order],
        "at": at[first_of_order],
        "reason": reason[first_of_order],
        "full_orders": np.flatnonzero(full),
        "partial_orders": np.concatenate([partial_orders, refund_orders]),
    }


def _interactions(
    world: _World, rng: np.random.Generator, ids: _IdCounters, cust: _Customers, orders: _Orders
) -> list[Col]:
    """Visits, calls, chats, emails, notes, feedback, complaints and thank-you notes."""
    n = len(cust.id)
    horizon = world.horizon_ts
    parts: list[dict[str, np.ndarray]] = []

    def add(customer_idx, kind, channel, direction, at, subject=None, body=None, payload=None, store=None):
        k = len(customer_idx)
        parts.append(
            {
                "cust": customer_idx,
                "kind": np.broadcast_to(np.asarray(kind, dtype=S), (k,)),
                "channel": np.broadcast_to(np.asarray(channel, dtype=S), (k,)),
                "direction": np.broadcast_to(np.asarray(direction, dtype=S), (k,)),
                "at": at,
                "subject": np.full(k, "", dtype=S)
                if subject is None
                else np.broadcast_to(np.asarray(subject, dtype=S), (k,)),
                "subject_null": np.full(k, subject is None),
                "body": np.full(k, "", dtype=S) if body is None else body,
                "body_null": np.full(k, body is None),
                "payload": np.full(k, "{}", dtype=S) if payload is None else payload,
                "store": np.zeros(k, np.int64) if store is None else store,
            }
        )

    # Customers interact while they are active: from sign-up to a few months after their
    # last order (or a few months after signing up, for non-buyers).
    last_order = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_order, orders.cust, orders.placed)
    active_end = np.where(last_order >= 0, last_order + 120 * DAY, cust.created + 200 * DAY)
    active_end = np.minimum(active_end, horizon - 1)

    def random_times(idx):
        span = active_end[idx] - cust.created[idx]
        return cust.created[idx] + (rng.random(len(idx)) * span).astype(np.int64)

    in_store_orders = np.bincount(orders.cust, weights=orders.channel == IN_STORE, minlength=n)
    online_orders = np.bincount(orders.cust, weights=orders.channel != IN_STORE, minlength=n)

    # Store visits without a purchase (loyalty app check-ins at the home store).
    idx, _ = _ragged(rng.poisson(0.3 * in_store_orders + 0.15))
    days = random_times(idx) // DAY
    at = np.clip(
        world.local_times(rng, days, np.full(len(idx), TOD_STORE), cust.city[idx]), cust.created[idx], horizon - 1
    )
    add(idx, "store_visit", "in_store", "inbound", at, store=cust.home_store[idx])

    # Identified web/app sessions: only customers we can recognise (they have an email).
    idx, _ = _ragged(np.where(cust.has_email, rng.poisson(0.35 * online_orders + 0.4), 0))
    mobile = rng.random(len(idx)) < np.where(cust.channel_pref[idx] == MOBILE, 0.8, 0.3)
    pages = 1 + rng.geometric(0.3, len(idx))
    add(
        idx,
        "web_visit",
        np.where(mobile, "mobile", "web"),
        "inbound",
        random_times(idx),
        payload=_json_objects("pages", pages),
    )

    # Service contacts.
    kinds = cat.RANDOM_INTERACTIONS
    weights = np.array([0.22, 0.08, 0.25, 0.18, 0.07, 0.12, 0.08])
    idx, _ = _ragged(rng.poisson(0.6, n))
    which = np.searchsorted(_cum(weights), rng.random(len(idx)), side="right")
    for kno, (kind, channels, direction, subjects) in enumerate(kinds):
        sel = idx[which == kno]
        k = len(sel)
        at = random_times(sel)
        subject = _strs(subjects)[rng.integers(0, len(subjects), k)]
        channel = _strs(channels)[rng.integers(0, len(channels), k)]
        add(sel, kind, channel, direction, at, subject=subject)
        if kind == "email_in":  # most emails get a reply from the service team
            reply = rng.random(k) < 0.85
            reply_at = at[reply] + rng.integers(2 * HOUR, 30 * HOUR, int(reply.sum()))
            keep = reply_at < horizon
            add(
                sel[reply][keep],
                "email_out",
                "email",
                "outbound",
                reply_at[keep],
                subject=_cat("Re: ", subject[reply][keep]),
            )

    # Complaints that preceded damaged / late / wrong goods coming back.
    k = len(orders.complaint_order)
    if k:
        oidx = orders.complaint_order
        at = np.maximum(orders.complaint_at, orders.placed[oidx] + HOUR)
        channel = np.array(["phone", "email", "chat", "social", "in_store"])[
            _choice(rng, [0.35, 0.3, 0.2, 0.1, 0.05], k)
        ]
        body = _cat(
            "Customer reports: ", np.strings.lower(orders.complaint_reason), " (order ", orders.external_id[oidx], ")."
        )
        add(
            orders.cust[oidx],
            "complaint",
            channel.astype(S),
            "inbound",
            at,
            subject=orders.complaint_reason,
            body=body,
            payload=_json_objects("order_id", orders.id[oidx]),
        )

    # Thank-you notes after big orders.
    big = np.flatnonzero((orders.total >= 30_000) & (rng.random(len(orders.id)) < 0.35))
    at = orders.placed[big] + rng.integers(DAY, 5 * DAY, len(big))
    keep = at < horizon
    big, at = big[keep], at[keep]
    channel = np.where(rng.random(len(big)) < 0.4, "post", "email").astype(S)
    add(
        orders.cust[big],
        "thank_you",
        channel,
        "outbound",
        at,
        subject="Thank you for your order",
        payload=_json_objects("order_id", orders.id[big]),
    )

    cat_ = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    order = np.lexsort((cat_["cust"], cat_["at"]))
    cat_ = {key: v[order] for key, v in cat_.items()}
    k = len(order)
    return [
        Col("id", "int", ids.take("interaction", k)),
        Col("customer_id", "int", cust.id[cat_["cust"]]),
        Col("kind", "str", cat_["kind"]),
        Col("channel", "str", cat_["channel"]),
        Col("direction", "str", cat_["direction"]),
        Col("occurred_at", "ts", cat_["at"]),
        Col("subject", "str", cat_["subject"], cat_["subject_null"]),
        Col("body", "str", cat_["body"], cat_["body_null"]),
        Col("payload", "json", cat_["payload"]),
        Col("store_id", "int", cat_["store"], cat_["store"] == 0),
        Col("created_at", "ts", cat_["at"]),
    ]
