"""Behavioural clustering on synthetic customers with planted groups; no database."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from patron.errors import InvalidInput
from patron.segments.clustering import FEATURES, cluster_customers

# Three well-separated groups, each feature drawn around a centre: (mean, standard deviation).
FREQUENT_ONLINE = {
    "frequency": (20, 2),
    "recency_days": (10, 3),
    "revenue": (2000, 150),
    "average_spend": (100, 8),
    "clv": (1500, 100),
    "p_alive": (0.95, 0.02),
    "discount_share": (0.05, 0.02),
    "premium_share": (0.6, 0.05),
    "online_share": (0.9, 0.04),
}
RARE_DISCOUNT_IN_STORE = {
    "frequency": (2, 0.3),
    "recency_days": (60, 8),
    "revenue": (80, 8),
    "average_spend": (40, 4),
    "clv": (100, 10),
    "p_alive": (0.7, 0.04),
    "discount_share": (0.8, 0.05),
    "premium_share": (0.05, 0.02),
    "online_share": (0.1, 0.04),
}
LAPSED_LOW_VALUE = {
    "frequency": (0.5, 0.1),
    "recency_days": (400, 30),
    "revenue": (30, 3),
    "average_spend": (30, 3),
    "clv": (5, 1),
    "p_alive": (0.1, 0.03),
    "discount_share": (0.2, 0.04),
    "premium_share": (0.1, 0.03),
    "online_share": (0.4, 0.05),
}
SIZES = (150, 90, 60)
EXPECTED_LABELS = [
    "premium brands, high spend, frequent, mostly online",
    "discount-driven, mostly in store, low spend, rare buyers",
    "lapsed, likely churned, low value, rare buyers",
]


def planted(seed: int = 1, sizes: tuple[int, ...] = SIZES) -> pl.DataFrame:
    """The three groups in shuffled order, with a `group` column (0, 1, 2 = largest first) to check against."""
    rng = np.random.default_rng(seed)
    parts = []
    for group, (spec, n) in enumerate(
        zip((FREQUENT_ONLINE, RARE_DISCOUNT_IN_STORE, LAPSED_LOW_VALUE), sizes, strict=True)
    ):
        columns = {name: rng.normal(mean, sd, n) for name, (mean, sd) in spec.items()}
        parts.append(pl.DataFrame(columns).with_columns(group=pl.lit(group)))
    frame = pl.concat(parts).with_row_index("customer_id")
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)


def run(frame: pl.DataFrame, **kwargs):
    return cluster_customers(frame.drop("group"), **kwargs)


def test_planted_groups_are_found_with_k_3_and_named():
    frame = planted()
    result = run(frame)
    assert result.k == 3
    assert result.method == "kmeans"
    assert list(result.silhouette) == [2, 3, 4, 5, 6, 7, 8]
    assert max(result.silhouette, key=result.silhouette.get) == 3
    assert result.silhouette[3] > 0.85
    assert adjusted_rand_score(frame["group"].to_numpy(), result.labels) == 1.0
    assert [p.label for p in result.profiles] == EXPECTED_LABELS


def test_clusters_are_numbered_by_size_and_labels_follow_input_order():
    frame = planted()
    result = run(frame)
    assert [p.cluster for p in result.profiles] == [0, 1, 2]
    assert [p.size for p in result.profiles] == list(SIZES)
    # The largest planted group is cluster 0, and so on: the row order of the input is kept.
    assert (result.labels == frame["group"].to_numpy()).all()
    assert result.labels.shape == (frame.height,)


def test_profile_means_are_in_original_units():
    frame = planted()
    result = run(frame)
    for profile in result.profiles:
        members = frame.filter(pl.col("group") == profile.cluster)
        assert list(profile.means) == list(FEATURES)
        for name in FEATURES:
            assert profile.means[name] == pytest.approx(members[name].mean(), rel=1e-12)
    assert result.profiles[0].means["revenue"] == pytest.approx(2000, rel=0.05)


def test_gaussian_mixture_finds_the_same_groups():
    frame = planted()
    result = run(frame, method="gaussian_mixture")
    assert result.method == "gaussian_mixture"
    assert result.k == 3
    assert (result.labels == frame["group"].to_numpy()).all()
    assert [p.label for p in result.profiles] == EXPECTED_LABELS


def test_silhouette_on_a_sample_still_finds_the_groups_for_every_row():
    frame = planted()
    result = run(frame, sample_size=100)
    assert result.k == 3
    assert result.labels.shape == (frame.height,)
    assert (result.labels == frame["group"].to_numpy()).all()
    # The scores come from the sample, so they differ from the full-data ones.
    assert result.silhouette != run(frame).silhouette


def test_same_random_state_same_result():
    frame = planted(seed=5)
    first = run(frame, sample_size=120, random_state=11)
    second = run(frame, sample_size=120, random_state=11)
    assert first.silhouette == second.silhouette
    assert (first.labels == second.labels).all()
    assert first.profiles == second.profiles


def test_missing_values_take_the_median_and_means_skip_them():
    # A tenth of revenue (null) and of clv (NaN) unknown, independently: every imputed row still
    # has its other eight features to place it, so the planted groups survive.
    frame = planted()
    rng = np.random.default_rng(2)
    revenue_holes = pl.Series(rng.random(frame.height) < 0.1)
    clv_holes = pl.Series(rng.random(frame.height) < 0.1)
    frame = frame.with_columns(
        revenue=pl.when(revenue_holes).then(None).otherwise(pl.col("revenue")),
        clv=pl.when(clv_holes).then(float("nan")).otherwise(pl.col("clv")),
    )
    result = run(frame)
    assert result.k == 3
    assert (result.labels == frame["group"].to_numpy()).all()
    for profile in result.profiles:
        group = pl.col("group") == profile.cluster
        revenue = frame.filter(group & ~revenue_holes)["revenue"]
        clv = frame.filter(group & ~clv_holes)["clv"]
        assert profile.means["revenue"] == pytest.approx(revenue.mean(), rel=1e-12)
        assert profile.means["clv"] == pytest.approx(clv.mean(), rel=1e-12)
        assert not np.isnan(profile.means["clv"])


def test_a_missing_value_joins_the_cluster_of_the_median():
    # p_alive: four customers at 0.8, three at 0.0 and one unknown. The median is 0.8, so the
    # unknown customer sits with the 0.8 group; filling with 0 would put it with the others.
    frame = pl.DataFrame(
        {
            "customer_id": range(8),
            "p_alive": [0.8, 0.8, 0.8, 0.8, 0.0, 0.0, 0.0, None],
        }
    )
    result = cluster_customers(frame, k_range=[2])
    assert result.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 0]
    assert result.profiles[0].size == 5
    assert result.profiles[0].means["p_alive"] == pytest.approx(0.8)
    assert [p.label for p in result.profiles] == ["likely active", "likely churned"]


def test_constant_and_empty_columns_are_profiled_but_not_modelled():
    frame = planted().with_columns(premium_share=pl.lit(0.3), discount_share=pl.lit(None, dtype=pl.Float64))
    result = run(frame)
    assert result.k == 3
    assert (result.labels == frame["group"].to_numpy()).all()
    for profile in result.profiles:
        assert profile.means["premium_share"] == pytest.approx(0.3)
        assert np.isnan(profile.means["discount_share"])
        assert "premium" not in profile.label
        assert "discount" not in profile.label
    assert [p.label for p in result.profiles] == [
        "high spend, frequent, mostly online, high value",
        "mostly in store, low spend, rare buyers",
        "lapsed, likely churned, low value, rare buyers",
    ]


def test_columns_outside_features_are_ignored():
    frame = planted().with_columns(shoe_size=pl.lit(42), name=pl.lit("x"))
    result = run(frame)
    assert list(result.profiles[0].means) == list(FEATURES)
    assert (result.labels == frame["group"].to_numpy()).all()


def test_a_cluster_near_the_middle_is_average_customers():
    frame = pl.DataFrame({"customer_id": range(9), "p_alive": [0.1, 0.12, 0.11, 0.5, 0.52, 0.51, 0.9, 0.92, 0.91]})
    result = cluster_customers(frame, k_range=range(2, 5))
    assert result.k == 3
    assert result.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [p.label for p in result.profiles] == ["likely churned", "average customers", "likely active"]


def test_online_share_below_the_others_but_above_half_is_not_in_store():
    # Everybody buys mostly online; the second group less so, but "mostly in store" would be false.
    frame = pl.DataFrame({"customer_id": range(8), "online_share": [0.95, 0.96, 0.95, 0.96, 0.95, 0.6, 0.61, 0.6]})
    result = cluster_customers(frame, k_range=[2])
    assert [p.size for p in result.profiles] == [5, 3]
    assert [p.label for p in result.profiles] == ["mostly online", "average customers"]


def test_equal_labels_are_numbered():
    # Two small groups both far below the big one: both "likely churned", the larger keeps the plain name.
    frame = pl.DataFrame({"customer_id": range(10), "p_alive": [0.9] * 5 + [0.0] * 3 + [0.1] * 2})
    result = cluster_customers(frame, k_range=[3])
    assert [p.size for p in result.profiles] == [5, 3, 2]
    assert [p.label for p in result.profiles] == ["likely active", "likely churned", "likely churned (2)"]


def test_k_beyond_the_distinct_rows_is_skipped():
    frame = pl.DataFrame({"customer_id": range(6), "frequency": [1, 1, 1, 30, 30, 30]})
    result = cluster_customers(frame, k_range=range(2, 6))
    assert list(result.silhouette) == [2]
    assert result.silhouette[2] == 1.0
    assert result.k == 2
    assert [p.label for p in result.profiles] == ["rare buyers", "frequent"]


def test_too_few_customers():
    frame = pl.DataFrame({"customer_id": [1, 2], "frequency": [1.0, 5.0]})
    with pytest.raises(InvalidInput) as error:
        cluster_customers(frame, k_range=range(2, 5))
    assert error.value.message == "need at least 3 customers with purchases to form clusters, got 2"


def test_too_few_distinct_customers():
    frame = pl.DataFrame({"customer_id": range(6), "frequency": [1.0, 1.0, 1.0, 5.0, 5.0, 5.0]})
    with pytest.raises(InvalidInput) as error:
        cluster_customers(frame, k_range=[3, 4])
    assert error.value.message == "need at least 3 customers with different features to form clusters, got 2"


def test_no_feature_columns():
    frame = pl.DataFrame({"customer_id": [1, 2, 3], "shoe_size": [40, 41, 42]})
    with pytest.raises(InvalidInput) as error:
        cluster_customers(frame)
    assert error.value.message.startswith("no feature columns to cluster on; expected some of frequency, recency_days")


def test_no_usable_feature_columns():
    frame = pl.DataFrame(
        {"customer_id": range(5), "revenue": [10.0] * 5, "clv": pl.Series([None] * 5, dtype=pl.Float64)}
    )
    with pytest.raises(InvalidInput) as error:
        cluster_customers(frame)
    assert error.value.message == (
        "no usable feature columns: revenue, clv are all missing or the same for every customer"
    )


def test_unknown_method():
    with pytest.raises(InvalidInput) as error:
        cluster_customers(planted().drop("group"), method="dbscan")
    assert error.value.message == "unknown clustering method 'dbscan'; use one of kmeans, gaussian_mixture"


@pytest.mark.parametrize(
    ("k_range", "message"),
    [
        (range(1, 4), "every k in k_range must be at least 2 (one cluster is no segmentation), got 1"),
        ([], "k_range is empty: give at least one number of clusters to try"),
        (["two"], "k_range must be whole numbers of clusters, got ['two']"),
    ],
)
def test_bad_k_range(k_range, message):
    with pytest.raises(InvalidInput) as error:
        cluster_customers(planted().drop("group"), k_range=k_range)
    assert error.value.message == message


def test_missing_customer_id_and_non_numeric_feature():
    with pytest.raises(InvalidInput, match="the features need a customer_id column"):
        cluster_customers(pl.DataFrame({"revenue": [1.0, 2.0, 3.0]}))
    with pytest.raises(InvalidInput, match="feature revenue must be numeric, got String"):
        cluster_customers(pl.DataFrame({"customer_id": [1, 2, 3], "revenue": ["a", "b", "c"]}))
