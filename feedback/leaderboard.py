"""Ranking recommendation sources from pairwise comparisons: Bradley-Terry strengths, bootstrap intervals, win rates.

A pair is ``(a, b, score)``: ``score`` is a's share of the win, 1 when a's list was chosen, 0 when
b's was, 0.5 for a tie or "both bad". Pure functions over NumPy; no Django.

Bradley-Terry: P(a beats b) = s_a / (s_a + s_b) with s = exp(theta). theta maximises the
log-likelihood with fractional wins minus a tiny L2 prior, (l2 / 2) * |theta|^2, which pins the
scale's origin (theta sums to zero at the optimum) and keeps an undefeated source finite. The fit
is Newton's method on theta with step halving; the objective is strictly concave, so it converges
in a handful of steps.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Pair = tuple[str, str, float]

L2 = 1e-3  # prior on log-strengths; small enough not to move well-measured sources
MAX_NEWTON_STEPS = 100
TOLERANCE = 1e-9


@dataclass(frozen=True)
class PairData:
    """Pairs as arrays of label indices, so the bootstrap can resample without Python loops."""

    labels: list[str]
    first: np.ndarray  # int [n]
    second: np.ndarray  # int [n]
    score: np.ndarray  # float [n], first's share of the win

    @classmethod
    def from_pairs(cls, pairs: Iterable[Pair]) -> PairData:
        rows = [(a, b, float(s)) for a, b, s in pairs if a != b]
        labels = sorted({a for a, _, _ in rows} | {b for _, b, _ in rows})
        index = {label: i for i, label in enumerate(labels)}
        return cls(
            labels=labels,
            first=np.array([index[a] for a, _, _ in rows], np.int64),
            second=np.array([index[b] for _, b, _ in rows], np.int64),
            score=np.array([s for _, _, s in rows], np.float64),
        )

    def matrices(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """wins[i, j]: i's (fractional) wins over j; games[i, j]: comparisons of i and j (symmetric)."""
        size = len(self.labels)
        weights = np.ones(len(self.score)) if weights is None else weights
        wins = np.zeros((size, size))
        games = np.zeros((size, size))
        np.add.at(wins, (self.first, self.second), weights * self.score)
        np.add.at(wins, (self.second, self.first), weights * (1.0 - self.score))
        np.add.at(games, (self.first, self.second), weights)
        np.add.at(games, (self.second, self.first), weights)
        return wins, games


def _objective(theta: np.ndarray, wins: np.ndarray, games: np.ndarray, l2: float) -> float:
    diff = theta[:, None] - theta[None, :]
    # log sigmoid(diff) = -log(1 + exp(-diff)), stable form
    log_p = -np.logaddexp(0.0, -diff)
    return float((wins * log_p).sum() - 0.5 * l2 * theta @ theta)


def fit_log_strengths(wins: np.ndarray, games: np.ndarray, l2: float = L2) -> np.ndarray:
    """theta maximising sum_ij wins[i, j] * log sigmoid(theta_i - theta_j) - l2/2 |theta|^2."""
    size = len(wins)
    theta = np.zeros(size)
    if size == 0:
        return theta
    current = _objective(theta, wins, games, l2)
    row_wins = wins.sum(axis=1)
    for _ in range(MAX_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
        gradient = row_wins - (games * p).sum(axis=1) - l2 * theta
        weight = games * p * (1.0 - p)
        hessian = weight - np.diag(weight.sum(axis=1)) - l2 * np.eye(size)  # negative definite
        step = np.linalg.solve(hessian, -gradient)
        scale = 1.0
        while True:
            candidate = theta + scale * step
            value = _objective(candidate, wins, games, l2)
            if value >= current - 1e-12:
                break
            scale /= 2
            if scale < 1e-6:
                return theta - theta.mean()  # no ascent left: at the optimum up to rounding
        theta, improvement, current = candidate, value - current, value
        if np.abs(scale * step).max() < TOLERANCE or abs(improvement) < TOLERANCE:
            break
    return theta - theta.mean()


def bradley_terry(pairs: Iterable[Pair], l2: float = L2) -> dict[str, float]:
    """Bradley-Terry strength of every label, s = exp(theta), geometric mean 1; strongest first."""
    data = pairs if isinstance(pairs, PairData) else PairData.from_pairs(pairs)
    wins, games = data.matrices()
    theta = fit_log_strengths(wins, games, l2)
    strengths = {label: float(np.exp(t)) for label, t in zip(data.labels, theta, strict=True)}
    return dict(sorted(strengths.items(), key=lambda item: -item[1]))


def bootstrap_intervals(
    pairs: Iterable[Pair], rounds: int = 200, level: float = 0.95, seed: int = 0, l2: float = L2
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each label's strength, resampling comparisons with replacement.

    A label that drops out of a resample keeps the prior's strength 1 in that round.
    """
    data = pairs if isinstance(pairs, PairData) else PairData.from_pairs(pairs)
    n = len(data.score)
    if n == 0:
        return {}
    rng = np.random.default_rng(seed)
    draws = np.empty((rounds, len(data.labels)))
    for r in range(rounds):
        weights = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        wins, games = data.matrices(weights)
        draws[r] = np.exp(fit_log_strengths(wins, games, l2))
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    return {label: (float(lo), float(hi)) for label, lo, hi in zip(data.labels, low, high, strict=True)}


@dataclass(frozen=True)
class WinRates:
    labels: list[str]
    rates: np.ndarray  # [i, j]: share of i-vs-j comparisons i won (ties half), NaN without any
    games: np.ndarray  # [i, j]: number of i-vs-j comparisons


def win_rate_matrix(pairs: Iterable[Pair], order: Sequence[str] | None = None) -> WinRates:
    """Row-beats-column win rates; ``order`` (e.g. by strength) sets the row and column order."""
    data = pairs if isinstance(pairs, PairData) else PairData.from_pairs(pairs)
    wins, games = data.matrices()
    labels = list(order) if order is not None else data.labels
    position = [data.labels.index(label) for label in labels]
    wins, games = wins[np.ix_(position, position)], games[np.ix_(position, position)]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(games > 0, wins / np.where(games > 0, games, 1.0), np.nan)
    return WinRates(labels=labels, rates=rates, games=games.astype(np.int64))


def plot_win_rates(win_rates: WinRates, title: str = "Win rate of row over column") -> bytes:
    """A PNG heatmap of the win-rate matrix (empty cells blank, games counted in each cell)."""
    import seaborn as sns  # heavy; only the leaderboard page needs it
    from matplotlib.figure import Figure

    size = max(3.5, 0.9 * len(win_rates.labels) + 2.0)
    figure = Figure(figsize=(size + 1.2, size), dpi=100)
    axes = figure.add_subplot()
    annotations = np.full(win_rates.rates.shape, "", dtype=object)
    for (i, j), rate in np.ndenumerate(win_rates.rates):
        if not np.isnan(rate):
            annotations[i, j] = f"{rate:.0%}\n(n={win_rates.games[i, j]})"
    with warnings.catch_warnings():  # seaborn's own use of a matplotlib API being deprecated
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(
            win_rates.rates,
            ax=axes,
            vmin=0.0,
            vmax=1.0,
            center=0.5,
            cmap="RdYlGn",
            annot=annotations,
            fmt="",
            annot_kws={"fontsize": 8},
            xticklabels=win_rates.labels,
            yticklabels=win_rates.labels,
            square=True,
            cbar_kws={"label": "win rate"},
            linewidths=0.5,
            linecolor="white",
        )
    axes.set_title(title)
    axes.set_xlabel("opponent")
    axes.set_ylabel("source")
    axes.tick_params(axis="x", labelrotation=30)
    axes.tick_params(axis="y", labelrotation=0)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
