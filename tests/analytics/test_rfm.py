"""RFM quintile scores and the segment grid, on hand-made customers."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from patron.analytics.rfm import SEGMENT_GRID, quintile_scores, rfm_scores, segment_of
from patron.models.enums import RfmSegment

AS_OF = date(2026, 6, 30)


def test_ten_distinct_values_fall_two_per_quintile():
    assert quintile_scores(np.arange(10.0)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_lower_is_better_reverses_the_scores():
    assert quintile_scores(np.arange(10.0), higher_is_better=False).tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_ties_share_the_score_of_the_share_strictly_below_them():
    # Four customers with 1 order: nobody is worse, so 1. Two with 2: four of ten are worse,
    # 1 + floor(5 * 4 / 10) = 3. Then 3 (six worse: 4), 4 (seven worse: 4), 5 (eight: 5), 6 (nine: 5).
    values = np.array([1, 1, 1, 1, 2, 2, 3, 4, 5, 6], dtype=float)
    assert quintile_scores(values).tolist() == [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]


def test_scores_do_not_depend_on_row_order():
    rng = np.random.default_rng(7)
    values = rng.integers(0, 30, size=500).astype(float)
    order = rng.permutation(values.size)
    assert (quintile_scores(values)[order] == quintile_scores(values[order])).all()


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: rng.integers(0, 12, size=1000).astype(float),  # counted
        lambda rng: rng.integers(0, 10**5, size=1000).astype(float),  # wide: sorted
        lambda rng: np.round(rng.normal(50, 20, size=1000), 1),  # fractions: sorted
    ],
    ids=["small-whole-numbers", "wide-whole-numbers", "fractions"],
)
@pytest.mark.parametrize("higher_is_better", [True, False])
def test_scores_match_the_formula_on_random_ties(draw, higher_is_better):
    rng = np.random.default_rng(3)
    values = draw(rng)
    keyed = values if higher_is_better else -values
    worse = np.array([(keyed < k).sum() for k in keyed])
    assert len(np.unique(values)) < values.size  # ties
    assert (quintile_scores(values, higher_is_better=higher_is_better) == 1 + (5 * worse) // values.size).all()


def test_a_single_value_scores_one_and_all_equal_values_score_one():
    assert quintile_scores(np.array([42.0])).tolist() == [1]
    assert quintile_scores(np.full(7, 3.0)).tolist() == [1] * 7
    assert quintile_scores(np.array([])).tolist() == []


def test_nan_is_refused():
    with pytest.raises(ValueError):
        quintile_scores(np.array([1.0, np.nan]))


@pytest.mark.parametrize(
    ("r", "f", "m", "segment"),
    [
        (5, 5, 5, RfmSegment.champions),
        (5, 4, 4, RfmSegment.champions),
        (5, 1, 1, RfmSegment.new),
        (5, 2, 3, RfmSegment.potential_loyalist),
        (4, 1, 1, RfmSegment.promising),
        (4, 5, 4, RfmSegment.loyal),
        (3, 4, 5, RfmSegment.loyal),
        (3, 3, 3, RfmSegment.need_attention),
        (3, 1, 2, RfmSegment.about_to_sleep),
        (2, 3, 4, RfmSegment.at_risk),
        (1, 5, 5, RfmSegment.cant_lose_them),
        (2, 2, 2, RfmSegment.hibernating),
        (1, 2, 2, RfmSegment.lost),
        (1, 1, 1, RfmSegment.lost),
    ],
)
def test_segment_cells(r, f, m, segment):
    assert segment_of(np.array([r]), np.array([f]), np.array([m])).tolist() == [segment.value]


def test_fm_is_the_floor_of_the_mean_of_f_and_m():
    # F=5, M=2 -> FM 3 -> with R 5: Potential loyalist, not Champions.
    assert segment_of(np.array([5]), np.array([5]), np.array([2])).tolist() == ["Potential loyalist"]


def test_every_segment_appears_in_the_grid_and_out_of_range_scores_are_refused():
    assert {s for row in SEGMENT_GRID for s in row} == set(RfmSegment)
    with pytest.raises(ValueError):
        segment_of(np.array([0]), np.array([1]), np.array([1]))
    with pytest.raises(ValueError):
        segment_of(np.array([6]), np.array([1]), np.array([1]))


def test_rfm_scores_of_a_hand_made_customer_base():
    # Five buyers and one customer who never bought.
    frame = pl.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5, 6],
            "last_purchase": [AS_OF - timedelta(days=d) if d is not None else None for d in (2, 40, None, 200, 2, 90)],
            "n_orders": [9, 3, 0, 1, 1, 2],
            "revenue": [900.0, 120.0, 0.0, 15.0, 30.0, -5.0],
        }
    )
    out = rfm_scores(frame, as_of=AS_OF)
    assert out["customer_id"].to_list() == [1, 2, 3, 4, 5, 6]
    rows = {r["customer_id"]: r for r in out.iter_rows(named=True)}
    # Days since last among the five buyers: 2, 40, 200, 2, 90. Worse (more days) than 2: three
    # customers -> 1 + 15 // 5 = 4; 40: two worse -> 3; 90: one -> 2; 200: none -> 1.
    assert [rows[i]["r_score"] for i in (1, 2, 4, 5, 6)] == [4, 3, 1, 4, 2]
    # Orders 9, 3, 1, 1, 2: worse than 9 -> 4 customers -> 5; 3 -> 3 -> 4; 2 -> 2 -> 3; 1 -> 1.
    assert [rows[i]["f_score"] for i in (1, 2, 4, 5, 6)] == [5, 4, 1, 1, 3]
    # Revenue 900, 120, 15, 30, -5 (a net refund is simply the lowest).
    assert [rows[i]["m_score"] for i in (1, 2, 4, 5, 6)] == [5, 4, 2, 3, 1]
    assert rows[1]["days_since_last"] == 2.0
    # R4 (two customers tie for the most recent, so nobody scores 5), FM floor((5+5)/2) = 5 ->
    # Loyal; R3, FM 4 -> Loyal; R1, FM 1 -> Lost; R4, FM 2 -> Potential loyalist; R2, FM 2 -> Hibernating.
    assert [rows[i]["rfm_segment"] for i in (1, 2, 4, 5, 6)] == [
        "Loyal",
        "Loyal",
        "Lost",
        "Potential loyalist",
        "Hibernating",
    ]
    never = rows[3]
    assert [never[k] for k in ("days_since_last", "r_score", "f_score", "m_score", "rfm_segment")] == [None] * 5


def test_rfm_scores_with_nobody_who_bought():
    frame = pl.DataFrame(
        {"customer_id": [1, 2], "last_purchase": [None, None], "n_orders": [0, 0], "revenue": [0.0, 0.0]},
        schema_overrides={"last_purchase": pl.Date},
    )
    out = rfm_scores(frame, as_of=AS_OF)
    assert out["r_score"].null_count() == 2 and out["rfm_segment"].null_count() == 2


def test_rfm_scores_of_no_customers():
    frame = pl.DataFrame(
        {"customer_id": [], "last_purchase": [], "n_orders": [], "revenue": []},
        schema={"customer_id": pl.Int64, "last_purchase": pl.Date, "n_orders": pl.Int64, "revenue": pl.Float64},
    )
    assert rfm_scores(frame, as_of=AS_OF).height == 0
