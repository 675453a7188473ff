"""Team-draft interleaving: compare two rankers online, on one list per user.

Radlinski, Kurup and Joachims (2008), "How does clickthrough data reflect retrieval quality?".
Each user gets one list built by two teams that take turns (a coin decides who picks first in each
round); each team picks its ranker's best movie not yet in the list. A positive action on a shown
movie (a rating of 4 or more, a like) credits the team that contributed it. Per user, the ranker
with more credit wins; across users, a sign test and a bootstrap interval say whether one ranker
is preferred. Because both rankers are judged by the same person on the same list, interleaving
needs far fewer users than splitting users between the two (an A/B test): ``detection_power``
measures how many, with simulated users whose actions come from their held-out ratings.

Plain numpy; no Django, no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

A, B = 0, 1  # team labels


@dataclass(frozen=True)
class Interleaved:
    """One user's interleaved list: the movies in order, and which ranker contributed each."""

    movies: np.ndarray  # int64 [k] movie ids (or indices), best position first
    teams: np.ndarray  # int8 [k] A (0) or B (1) for each position


def team_draft(a: Sequence[int], b: Sequence[int], k: int, rng: np.random.Generator) -> Interleaved:
    """Interleave rankings ``a`` and ``b`` (best first) into at most ``k`` distinct movies.

    In each round both teams pick once, in an order a fair coin decides; a team picks its ranker's
    highest-ranked movie not yet shown. When one ranking runs out the other fills the list.
    """
    if k < 0:
        raise ValueError("k must be non-negative")
    rankings = (list(a), list(b))
    cursor = [0, 0]
    shown: set[int] = set()
    movies: list[int] = []
    teams: list[int] = []

    def next_of(team: int) -> int | None:
        ranking = rankings[team]
        while cursor[team] < len(ranking) and ranking[cursor[team]] in shown:
            cursor[team] += 1
        return ranking[cursor[team]] if cursor[team] < len(ranking) else None

    while len(movies) < k:
        order = (A, B) if rng.random() < 0.5 else (B, A)
        picked = False
        for team in order:
            if len(movies) >= k:
                break
            movie = next_of(team)
            if movie is None:
                other = B - team
                movie = next_of(other)
                if movie is None:
                    continue
                team = other
            shown.add(movie)
            movies.append(movie)
            teams.append(team)
            picked = True
        if not picked:
            break
    return Interleaved(np.asarray(movies, np.int64), np.asarray(teams, np.int8))


def credit(interleaved: Interleaved, liked: set[int] | frozenset[int]) -> tuple[int, int]:
    """(A's credit, B's credit): liked shown movies, counted for the team that contributed each."""
    hits = np.fromiter((m in liked for m in interleaved.movies.tolist()), bool, len(interleaved.movies))
    return int(np.sum(hits & (interleaved.teams == A))), int(np.sum(hits & (interleaved.teams == B)))


def outcome(credit_a: int, credit_b: int) -> int:
    """+1 when B won this user, -1 when A did, 0 for a tie (no credit either way counts as a tie)."""
    return int(np.sign(credit_b - credit_a))


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact binomial test of wins against losses (ties dropped); 1.0 with no decisions."""
    n = wins + losses
    if n == 0:
        return 1.0
    low = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def summarise(outcomes: Sequence[int], rounds: int = 1000, seed: int = 0) -> dict[str, float]:
    """Wins (B), losses, ties, B's preference share ((wins + ties / 2) / n) with a bootstrap 95%
    interval over users, and the sign test's p value."""
    values = np.asarray(outcomes, np.int64)
    n = len(values)
    wins, losses = int(np.sum(values > 0)), int(np.sum(values < 0))
    result = {
        "users": n,
        "wins": wins,
        "losses": losses,
        "ties": n - wins - losses,
        "share": float("nan"),
        "low": float("nan"),
        "high": float("nan"),
        "p_value": sign_test_p(wins, losses),
    }
    if n == 0:
        return result
    shares = (values + 1) / 2.0  # 1 win, 0.5 tie, 0 loss
    draws = np.random.default_rng(seed).integers(0, n, size=(rounds, n))
    means = shares[draws].mean(axis=1)
    result.update(
        share=float(shares.mean()),
        low=float(np.quantile(means, 0.025)),
        high=float(np.quantile(means, 0.975)),
    )
    return result


# --- Simulated users: how many does it take? ---------------------------------------------------


@dataclass(frozen=True)
class ClickModel:
    """A simulated user's actions on a shown list: they look at position r (0-based) with probability
    ``(1 / (r + 1)) ** position_bias`` and act on a movie they would rate 4 or more with
    probability ``relevant``, on any other with probability ``noise``."""

    position_bias: float = 1.0
    relevant: float = 0.9
    noise: float = 0.02

    def liked(self, movies: np.ndarray, relevant: set[int], rng: np.random.Generator) -> set[int]:
        ranks = np.arange(len(movies))
        looked = rng.random(len(movies)) < (1.0 / (ranks + 1.0)) ** self.position_bias
        is_relevant = np.fromiter((m in relevant for m in movies.tolist()), bool, len(movies))
        acted = rng.random(len(movies)) < np.where(is_relevant, self.relevant, self.noise)
        return set(movies[looked & acted].tolist())


def _welch_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p of Welch's t-test by the normal approximation (the groups here are large)."""
    if len(x) < 2 or len(y) < 2:
        return 1.0
    se = math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
    if se == 0:
        return 1.0
    z = abs(x.mean() - y.mean()) / se
    return math.erfc(z / math.sqrt(2.0))


def detection_power(
    rankings_a: Mapping[int, Sequence[int]],
    rankings_b: Mapping[int, Sequence[int]],
    relevant: Mapping[int, set[int]],
    user_counts: Sequence[int],
    *,
    k: int = 10,
    trials: int = 200,
    alpha: float = 0.05,
    clicks: ClickModel | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, float]]:
    """For each number of users: the share of simulated experiments that detect that B is better
    (p < ``alpha`` and in B's favour), by interleaving and by an A/B test that splits the same
    number of users in half and compares liked movies per user. Users are drawn with replacement
    from those with held-out relevant movies and lists under both rankers."""
    clicks = clicks or ClickModel()
    rng = np.random.default_rng(seed)
    users = np.array(sorted(u for u in relevant if u in rankings_a and u in rankings_b))
    if len(users) == 0:
        raise ValueError("no user has held-out relevant movies and lists from both rankers")
    rows = []
    for step, n in enumerate(user_counts):
        detected_interleaving = detected_ab = 0
        for _ in range(trials):
            sample = rng.choice(users, size=n, replace=True)
            outcomes = []
            for user in sample.tolist():
                shown = team_draft(rankings_a[user], rankings_b[user], k, rng)
                outcomes.append(outcome(*credit(shown, clicks.liked(shown.movies, relevant[user], rng))))
            wins, losses = sum(o > 0 for o in outcomes), sum(o < 0 for o in outcomes)
            detected_interleaving += wins > losses and sign_test_p(wins, losses) < alpha
            half = n // 2
            liked_a = np.array(
                [
                    len(clicks.liked(np.asarray(rankings_a[u][:k]), relevant[u], rng))
                    for u in sample[:half].tolist()
                ],
                float,
            )
            liked_b = np.array(
                [
                    len(clicks.liked(np.asarray(rankings_b[u][:k]), relevant[u], rng))
                    for u in sample[half:].tolist()
                ],
                float,
            )
            detected_ab += liked_b.mean() > liked_a.mean() and _welch_p(liked_b, liked_a) < alpha
        rows.append(
            {"users": int(n), "interleaving": detected_interleaving / trials, "ab_test": detected_ab / trials}
        )
        if progress is not None:
            progress(step + 1, len(user_counts))
    return rows


def users_needed(rows: Sequence[Mapping[str, float]], method: str, power: float = 0.8) -> int | None:
    """The smallest number of users whose detection rate reaches ``power`` (None: none did)."""
    for row in rows:
        if row[method] >= power:
            return int(row["users"])
    return None
