"""Inter-annotator agreement: Cohen's kappa for two annotators, Krippendorff's alpha (nominal) for many.

Pure functions over category labels (any hashable); no Django.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from itertools import permutations


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float:
    """Cohen's kappa of two annotators' labels for the same items, in the same order.

    kappa = (p_o - p_e) / (1 - p_e), where p_o is the share of items both labelled the same and
    p_e = sum over categories of the product of each annotator's share of that category.
    NaN when undefined: no items, or both annotators used one and the same category throughout
    (p_e = 1).
    """
    if len(first) != len(second):
        raise ValueError("both annotators must label the same items")
    n = len(first)
    if n == 0:
        return math.nan
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    first_counts, second_counts = Counter(first), Counter(second)
    expected = sum(first_counts[c] * second_counts[c] for c in first_counts) / (n * n)
    if expected == 1.0:
        return math.nan
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha_nominal(units: Iterable[Sequence[Hashable]]) -> float:
    """Krippendorff's alpha for nominal data; each unit is the list of labels it received.

    Units with fewer than two labels cannot be paired and are ignored. With the coincidence
    matrix o[c, k] = sum over units of (ordered c-k label pairs in the unit) / (m_u - 1), the
    category totals n_c and n = sum n_c:

        alpha = 1 - (n - 1) * sum_{c != k} o[c, k] / sum_{c != k} n_c * n_k

    NaN when undefined: no pairable unit, or a single category overall (no expected disagreement).
    """
    disagreement = 0.0
    totals: Counter = Counter()
    for unit in units:
        labels = list(unit)
        m = len(labels)
        if m < 2:
            continue
        counts = Counter(labels)
        totals.update(counts)
        for c, k in permutations(counts, 2):
            disagreement += counts[c] * counts[k] / (m - 1)
    n = sum(totals.values())
    expected = n * n - sum(count * count for count in totals.values())  # sum_{c != k} n_c n_k
    if n == 0 or expected == 0:
        return math.nan
    return 1.0 - (n - 1) * disagreement / expected


def percent_agreement(first: Sequence[Hashable], second: Sequence[Hashable]) -> float:
    """Share of items the two annotators labelled the same (NaN with no items)."""
    if len(first) != len(second):
        raise ValueError("both annotators must label the same items")
    if not first:
        return math.nan
    return sum(a == b for a, b in zip(first, second, strict=True)) / len(first)
