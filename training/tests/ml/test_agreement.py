from __future__ import annotations

import math

import pytest

from training.ml.agreement import cohen_kappa, krippendorff_alpha_nominal, percent_agreement


def labels_from_table(table: dict[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    """Two annotators' labels from a contingency table {(first's label, second's label): count}."""
    first, second = [], []
    for (a, b), count in table.items():
        first += [a] * count
        second += [b] * count
    return first, second


def test_cohen_kappa_matches_the_wikipedia_grant_example():
    # Wikipedia "Cohen's kappa", simple example: 50 grant proposals, two readers say Yes or No.
    #              B yes  B no
    #   A yes        20     5
    #   A no         10    15
    # p_o = (20 + 15) / 50 = 0.7
    # A says yes 25/50 = 0.5, B says yes 30/50 = 0.6
    # p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.3 + 0.2 = 0.5
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    first, second = labels_from_table(
        {("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15}
    )
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert percent_agreement(first, second) == pytest.approx(0.7)


def test_cohen_kappa_matches_the_wikipedia_same_agreement_different_kappa_example():
    # Wikipedia, "same percentage agreement, different kappa", first table:
    #   45 yes/yes, 15 yes/no, 25 no/yes, 15 no/no (100 items)
    # p_o = (45 + 15) / 100 = 0.60
    # A yes = 60/100, B yes = 70/100: p_e = 0.6 * 0.7 + 0.4 * 0.3 = 0.42 + 0.12 = 0.54
    # kappa = (0.60 - 0.54) / (1 - 0.54) = 0.06 / 0.46 = 0.1304
    first, second = labels_from_table(
        {("yes", "yes"): 45, ("yes", "no"): 15, ("no", "yes"): 25, ("no", "no"): 15}
    )
    assert cohen_kappa(first, second) == pytest.approx(0.06 / 0.46)


def test_cohen_kappa_on_four_comparison_choices_computed_by_hand():
    # 6 tasks:      annie  andy
    #   1           left   left
    #   2           left   right
    #   3           right  right
    #   4           tie    tie
    #   5           right  right
    #   6           both   tie
    # p_o = 4/6
    # annie: left 2, right 2, tie 1, both 1; andy: left 1, right 3, tie 2, both 0
    # p_e = (2*1 + 2*3 + 1*2 + 1*0) / 36 = 10/36
    # kappa = (24/36 - 10/36) / (26/36) = 14/26 = 0.53846
    annie = ["left", "left", "right", "tie", "right", "both_bad"]
    andy = ["left", "right", "right", "tie", "right", "tie"]
    assert cohen_kappa(annie, andy) == pytest.approx(14 / 26)


def test_cohen_kappa_is_one_for_perfect_agreement_and_undefined_without_variation():
    assert cohen_kappa(["left", "right", "tie"], ["left", "right", "tie"]) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(["left", "left"], ["left", "left"]))  # p_e = 1
    assert math.isnan(cohen_kappa([], []))
    with pytest.raises(ValueError):
        cohen_kappa(["left"], [])


def test_krippendorff_alpha_matches_krippendorffs_reliability_data_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the example also on
    # Wikipedia: 4 observers, 12 units, values 1-5, "." missing.
    #   unit:  1  2  3  4  5  6  7  8  9 10 11 12
    #   A:     1  2  3  3  2  1  4  1  2  .  .  .
    #   B:     1  2  3  3  2  2  4  1  2  5  .  3
    #   C:     .  3  3  3  2  3  4  2  2  5  1  .
    #   D:     1  2  3  3  2  4  4  1  2  5  1  .
    # Unit 12 has one value and is not pairable; n = 3 + 8*4 + 3 + 2 = 40 pairable values.
    # Value totals: n_1 = 9, n_2 = 13, n_3 = 10, n_4 = 5, n_5 = 3.
    # Disagreeing coincidences, sum_{c!=k} o_ck (each unit: ordered pairs of different values / (m_u - 1)):
    #   unit 2 {2,2,2,3}: 2*3*1 / 3 = 2; unit 6 {1,2,3,4}: 12 / 3 = 4; unit 8 {1,1,1,2}: 2*3*1 / 3 = 2 -> 8
    # sum_{c!=k} n_c n_k = 40^2 - (81 + 169 + 100 + 25 + 9) = 1600 - 384 = 1216
    # alpha = 1 - (n - 1) * 8 / 1216 = 1 - 312 / 1216 = 0.7434 (Krippendorff reports 0.743)
    missing = None
    table = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, missing, missing, missing],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, missing, 3],
        "C": [missing, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, missing],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, missing],
    }
    units = [[row[u] for row in table.values() if row[u] is not missing] for u in range(12)]
    assert krippendorff_alpha_nominal(units) == pytest.approx(1 - 312 / 1216)
    assert round(krippendorff_alpha_nominal(units), 3) == 0.743


def test_krippendorff_alpha_on_comparison_choices_computed_by_hand():
    # Three tasks judged twice, one three times:
    #   t1 {left, left}, t2 {left, right}, t3 {tie, tie}, t4 {right, right, left}
    # n = 2 + 2 + 2 + 3 = 9; n_left = 4, n_right = 3, n_tie = 2
    # disagreement: t2 (left,right)+(right,left) = 2 / 1 = 2; t4 2*1*2 / 2 = 2 -> 4
    # sum n_c n_k (c != k) = 81 - (16 + 9 + 4) = 52
    # alpha = 1 - 8 * 4 / 52 = 1 - 32/52 = 0.3846
    units = [["left", "left"], ["left", "right"], ["tie", "tie"], ["right", "right", "left"], ["left"]]
    assert krippendorff_alpha_nominal(units) == pytest.approx(1 - 32 / 52)


def test_krippendorff_alpha_is_one_for_perfect_agreement_and_undefined_without_pairs_or_variation():
    assert krippendorff_alpha_nominal([["left", "left"], ["tie", "tie", "tie"]]) == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha_nominal([["left"], ["right"]]))
    assert math.isnan(krippendorff_alpha_nominal([["left", "left"], ["left", "left"]]))
