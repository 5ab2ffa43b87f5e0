"""Behavioural clustering: group customers by how they buy, pick k by silhouette, and name each group.

Pure and database-free: the caller reads one row of features per customer (a polars frame with
``customer_id`` and any subset of FEATURES) and stores the result. The steps:

1. Each feature is cast to float; nulls and NaN count as missing. The heavy-tailed money and count
   features get a signed log1p first, so a few big spenders do not become clusters of their own
   and the distance between 10 and 100 orders counts like the one between 1 and 10.
2. Missing values take the column's median; a column that is all missing or constant carries no
   information about groups, so it is left out of the model (but still profiled).
3. StandardScaler, then KMeans or a GaussianMixture for each k of k_range, fitted on a random
   sample of at most sample_size rows, because the silhouette score (Rousseeuw 1987) is O(n^2).
   The k with the best silhouette wins (the smaller k on a tie).
4. The chosen model is refitted on all rows, started from the sample's solution, and every row is
   assigned. Clusters are renumbered by size, largest = 0.
5. Each cluster is described by the features whose cluster mean lies at least LABEL_THRESHOLD
   standard deviations from the overall mean, most distinctive first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from patron.errors import InvalidInput

FEATURES: tuple[str, ...] = (
    "frequency",  # repeat purchase days
    "recency_days",  # days since the last purchase
    "revenue",
    "average_spend",
    "clv",
    "p_alive",
    "discount_share",  # share of orders or revenue bought at a discount
    "premium_share",  # share bought from premium brands
    "online_share",  # share of orders placed online or on mobile
)
METHODS: tuple[str, ...] = ("kmeans", "gaussian_mixture")

# Counts and money are heavy-tailed (most customers buy once, a few buy hundreds of times).
# Revenue net of returns can be negative, hence a signed log1p rather than plain log1p.
_LOG_FEATURES = frozenset({"frequency", "revenue", "average_spend", "clv"})

# Half a standard deviation from the overall mean is where a difference starts to be worth
# saying out loud; below it every cluster would collect a phrase for every feature.
LABEL_THRESHOLD = 0.5
MAX_PHRASES = 4
AVERAGE_LABEL = "average customers"

# feature -> (topic, phrase when above average, phrase when below average). One phrase per topic:
# revenue and average_spend both speak of spend, and "high spend, low spend" would say nothing.
_PHRASES: dict[str, tuple[str, str | None, str | None]] = {
    "frequency": ("frequency", "frequent", "rare buyers"),
    "recency_days": ("recency", "lapsed", "recent"),
    "revenue": ("spend", "high spend", "low spend"),
    "average_spend": ("spend", "high spend", "low spend"),
    "clv": ("value", "high value", "low value"),
    "p_alive": ("alive", "likely active", "likely churned"),
    "discount_share": ("discount", "discount-driven", None),
    "premium_share": ("premium", "premium brands", None),
    "online_share": ("online", "mostly online", "mostly in store"),
}

_KMEANS_N_INIT = 4


@dataclass(frozen=True)
class ClusterProfile:
    """One cluster: its size, its feature means in original units and a readable label."""

    cluster: int
    size: int
    means: dict[str, float]
    label: str


@dataclass(frozen=True)
class ClusterResult:
    """The chosen clustering: k, the silhouette of every k tried, a cluster per input row, the profiles."""

    k: int
    method: str
    silhouette: dict[int, float]
    labels: np.ndarray
    profiles: list[ClusterProfile]


def cluster_customers(
    features: pl.DataFrame,
    *,
    k_range: Iterable[int] = range(2, 9),
    method: str = "kmeans",
    sample_size: int = 20_000,
    random_state: int = 0,
) -> ClusterResult:
    """Cluster customers on their behavioural features, choosing k by silhouette; see the module docstring."""
    if method not in METHODS:
        raise InvalidInput(f"unknown clustering method {method!r}; use one of {', '.join(METHODS)}")
    ks = _check_k_range(k_range)
    if not isinstance(sample_size, int) or sample_size <= ks[0]:
        raise InvalidInput(f"sample_size must be an integer above the smallest k ({ks[0]}), got {sample_size!r}")
    if "customer_id" not in features.columns:
        raise InvalidInput("the features need a customer_id column")
    present = [f for f in FEATURES if f in features.columns]
    if not present:
        raise InvalidInput(f"no feature columns to cluster on; expected some of {', '.join(FEATURES)}")
    n = features.height
    # Silhouette compares each point's own cluster with the nearest other one, so it needs at least
    # one cluster with two members: k clusters need k + 1 customers.
    if n < ks[0] + 1:
        raise InvalidInput(f"need at least {ks[0] + 1} customers with purchases to form clusters, got {n}")

    raw = {name: _as_float(features, name) for name in present}
    modelled, matrix = _model_matrix(raw)
    if not modelled:
        raise InvalidInput(
            f"no usable feature columns: {', '.join(present)} are all missing or the same for every customer"
        )
    scaled = StandardScaler().fit_transform(matrix)

    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(n, size=sample_size, replace=False)) if n > sample_size else None
    points = scaled if sample is None else scaled[sample]
    distinct = np.unique(points, axis=0).shape[0]

    silhouette: dict[int, float] = {}
    models: dict[int, KMeans | GaussianMixture] = {}
    for k in ks:
        # k clusters need k distinct points, and silhouette needs fewer clusters than points.
        if k > distinct or k >= points.shape[0]:
            continue
        model = _make_model(method, k, random_state).fit(points)
        assigned = model.predict(points)
        used = np.unique(assigned).size
        if used < 2 or used >= points.shape[0]:
            continue
        silhouette[k] = float(silhouette_score(points, assigned))
        models[k] = model
    if not silhouette:
        raise InvalidInput(f"need at least {ks[0]} customers with different features to form clusters, got {distinct}")
    best_k = max(silhouette, key=lambda k: (silhouette[k], -k))
    model = models[best_k]
    if sample is not None:
        model = _refit(model, method, best_k, random_state).fit(scaled)
    assigned = model.predict(scaled)

    labels, sizes = _renumber_by_size(assigned)
    k = sizes.size
    z = _cluster_means(scaled, labels, k)
    means = {name: _nan_safe_means(values, labels, k) for name, values in raw.items()}
    names = _distinct([_describe(z[c], modelled, {f: m[c] for f, m in means.items()}) for c in range(k)])
    profiles = [
        ClusterProfile(
            cluster=c,
            size=int(sizes[c]),
            means={f: float(m[c]) for f, m in means.items()},
            label=names[c],
        )
        for c in range(k)
    ]
    return ClusterResult(k=k, method=method, silhouette=silhouette, labels=labels, profiles=profiles)


def _check_k_range(k_range: Iterable[int]) -> list[int]:
    try:
        ks = sorted({int(k) for k in k_range})
    except (TypeError, ValueError):
        raise InvalidInput(f"k_range must be whole numbers of clusters, got {k_range!r}") from None
    if not ks:
        raise InvalidInput("k_range is empty: give at least one number of clusters to try")
    if ks[0] < 2:
        raise InvalidInput(f"every k in k_range must be at least 2 (one cluster is no segmentation), got {ks[0]}")
    return ks


def _as_float(features: pl.DataFrame, name: str) -> np.ndarray:
    column = features[name]
    if not (column.dtype.is_numeric() or column.dtype == pl.Boolean or column.dtype == pl.Null):
        raise InvalidInput(f"feature {name} must be numeric, got {column.dtype}")
    values = column.cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float, copy=True)
    if np.isinf(values).any():
        raise InvalidInput(f"feature {name} has infinite values")
    return values


def _model_matrix(raw: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """The transformed, median-imputed columns that vary, and their names."""
    names: list[str] = []
    columns: list[np.ndarray] = []
    for name, values in raw.items():
        valid = ~np.isnan(values)
        if not valid.any():
            continue
        observed = values[valid]
        if observed.min() == observed.max():
            continue
        column = np.sign(values) * np.log1p(np.abs(values)) if name in _LOG_FEATURES else values.copy()
        column[~valid] = np.median(column[valid])
        names.append(name)
        columns.append(column)
    matrix = np.column_stack(columns) if columns else np.empty((0, 0))
    return names, matrix


def _make_model(method: str, k: int, random_state: int) -> KMeans | GaussianMixture:
    if method == "kmeans":
        return KMeans(n_clusters=k, n_init=_KMEANS_N_INIT, random_state=random_state)
    return GaussianMixture(n_components=k, random_state=random_state)


def _refit(model: KMeans | GaussianMixture, method: str, k: int, random_state: int) -> KMeans | GaussianMixture:
    # Starting from the sample's solution keeps the clusters the silhouette judged, and one
    # run from a good start is much cheaper on a million rows than several random starts.
    if method == "kmeans":
        return KMeans(n_clusters=k, init=model.cluster_centers_, n_init=1, random_state=random_state)
    return GaussianMixture(
        n_components=k,
        weights_init=model.weights_,
        means_init=model.means_,
        precisions_init=model.precisions_,
        random_state=random_state,
    )


def _renumber_by_size(assigned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cluster numbers 0..k-1 by size descending (ties: first row first), and the sizes."""
    values, first, inverse, counts = np.unique(assigned, return_index=True, return_inverse=True, return_counts=True)
    order = np.lexsort((first, -counts))
    new_number = np.empty(values.size, dtype=np.int64)
    new_number[order] = np.arange(values.size)
    return new_number[inverse.ravel()], counts[order]


def _cluster_means(scaled: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    sizes = np.bincount(labels, minlength=k).astype(float)
    sums = np.stack([np.bincount(labels, weights=scaled[:, j], minlength=k) for j in range(scaled.shape[1])], axis=1)
    return sums / sizes[:, None]


def _nan_safe_means(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    valid = ~np.isnan(values)
    sums = np.bincount(labels, weights=np.where(valid, values, 0.0), minlength=k)
    counts = np.bincount(labels, weights=valid.astype(float), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)


def _describe(z: np.ndarray, modelled: list[str], means: dict[str, float]) -> str:
    """At most MAX_PHRASES phrases for the features furthest from average, most distinctive first."""
    phrases: list[str] = []
    topics: set[str] = set()
    # Stable sort: equal distances keep FEATURES order.
    for j in sorted(range(len(modelled)), key=lambda j: -abs(z[j])):
        if abs(z[j]) < LABEL_THRESHOLD or len(phrases) == MAX_PHRASES:
            break
        name = modelled[j]
        topic, above, below = _PHRASES[name]
        phrase = above if z[j] > 0 else below
        # "Mostly online" is a claim about the share itself, not just about being above the others.
        if name == "online_share" and phrase is not None:
            share = means[name]
            if np.isnan(share) or (share <= 0.5 if z[j] > 0 else share >= 0.5):
                phrase = None
        if phrase is None or topic in topics:
            continue
        phrases.append(phrase)
        topics.add(topic)
    return ", ".join(phrases) if phrases else AVERAGE_LABEL


def _distinct(labels: list[str]) -> list[str]:
    """Labels made unique by numbering repeats: the larger cluster keeps the plain label."""
    seen: dict[str, int] = {}
    unique: list[str] = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return unique
