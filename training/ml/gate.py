"""The promotion gate's rules, as pure functions: which candidate, if any, replaces the served policy.

A candidate is judged against the served policy on **held-out users** (none of whose comparisons
or signals trained anything) by judges it was **not optimised against**:

- ``judge``: a reward model trained on comparisons disjoint from the learner's, comparing the
  candidate's list with the served policy's list for each held-out user (win rate, ties 0.5);
- ``replay``: the held-out annotators' own choices. For each of their comparisons (lists A and B,
  the annotator chose one), a policy *sides with* A when its own list for that user shares more
  (position-weighted) movies with A than with B. Per comparison: 1 when the candidate sides with
  the annotator and the served policy does not, 0 for the reverse, 0.5 otherwise;
- ``ndcg``: held-out ratings (the users' later ratings), the paired NDCG@10 difference.

A candidate passes when the judge's win rate has a 95% interval above 0.5, neither the replay nor
the NDCG difference is clearly worse (interval entirely below 0.5 or 0), and its KL from the
reference is within bounds. Of those that pass the one with the highest judge win rate is served;
when none passes the served policy stays. A judge that is not better than chance on its own
held-out comparisons lets nothing through.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from training.ml.metrics import bootstrap_mean


@dataclass
class GateRules:
    """Thresholds of the gate; the product reads them from settings, the experiment from its config."""

    min_judge_accuracy: float = 0.55  # the judge reward model's accuracy on held-out comparisons
    min_judge_comparisons: int = 20  # fewer strict held-out comparisons and the judge is not trusted
    min_users: int = 10  # held-out users the head-to-head needs
    max_kl: float = 10.0  # nats per list from the reference (policies that have a KL)
    bootstrap_rounds: int = 1000  # resamples for every interval
    seed: int = 0  # seeds the bootstraps


def position_weights(k: int) -> np.ndarray:
    weights = 1.0 / np.log2(np.arange(k) + 2.0)
    return weights / weights.sum()


def overlap(own: np.ndarray, other: np.ndarray) -> float:
    """Position-weighted share of ``other``'s movies that appear in ``own`` (weights of ``other``)."""
    other = np.asarray(other, np.int64).reshape(-1)
    if not len(other):
        return 0.0
    return float(position_weights(len(other)) @ np.isin(other, np.asarray(own, np.int64)))


def side(own: np.ndarray, slate_a: np.ndarray, slate_b: np.ndarray) -> float:
    """1 when a policy's list is closer to A than to B, 0 when closer to B, 0.5 when neither."""
    a, b = overlap(own, slate_a), overlap(own, slate_b)
    return 0.5 if abs(a - b) < 1e-12 else float(a > b)


def replay_outcomes(
    comparisons: Sequence[tuple[Hashable, np.ndarray, np.ndarray, str]],
    candidate: Mapping[Hashable, np.ndarray],
    served: Mapping[Hashable, np.ndarray],
) -> list[float]:
    """Per strict held-out comparison ``(user, A, B, outcome)``: does the candidate side with the annotator?

    Ties and 'both bad' say nothing about which list is better and are skipped.
    """
    outcomes = []
    for user, slate_a, slate_b, outcome in comparisons:
        if outcome not in ("a", "b") or user not in candidate or user not in served:
            continue
        chose_a = outcome == "a"
        agrees = [
            0.5 if (s := side(lists[user], slate_a, slate_b)) == 0.5 else float((s == 1.0) == chose_a)
            for lists in (candidate, served)
        ]
        outcomes.append(0.5 + 0.5 * (agrees[0] - agrees[1]))
    return outcomes


def judge_outcomes(
    score: Callable[[Hashable, np.ndarray], float],
    candidate: Mapping[Hashable, np.ndarray],
    served: Mapping[Hashable, np.ndarray],
    tie_margin: float = 1e-6,
) -> list[float]:
    """Per user: 1 when ``score`` (the judge) prefers the candidate's list, 0 the served one's, 0.5 a tie."""
    outcomes = []
    for user in candidate:
        if user not in served:
            continue
        if np.array_equal(candidate[user], served[user]):
            outcomes.append(0.5)
            continue
        diff = score(user, candidate[user]) - score(user, served[user])
        outcomes.append(0.5 if abs(diff) <= tie_margin else float(diff > 0))
    return outcomes


@dataclass
class CandidateEvidence:
    """What the judges said about one candidate against the served policy."""

    name: str
    judge: dict[str, float]  # bootstrap_mean of judge_outcomes: mean (= win rate), low, high, n
    replay: dict[str, float] | None = None  # bootstrap_mean of replay_outcomes
    ndcg_difference: dict[str, float] | None = None  # paired NDCG@10 difference on held-out ratings
    kl: float | None = None  # nats per list from the reference; None for deterministic rerankers
    checks: dict[str, Any] = field(default_factory=dict)  # filled by ``gate_decide``
    passed: bool = False
    reason: str = ""
    judge_name: str = "independent judge"  # which reward model judged it
    judge_trusted: bool | None = None  # its own judge's credentials; None: the gate's shared judge


@dataclass
class GateDecision:
    """The gate's verdict: which policy is served, and every candidate's checks."""

    served: str  # the policy served after the decision (a candidate's name, or the incumbent's)
    incumbent: str
    changed: bool
    reason: str
    judge: dict[str, Any]  # the judge's own credentials: accuracy on held-out comparisons, n
    candidates: list[CandidateEvidence]

    def as_dict(self) -> dict[str, Any]:
        return {
            "served": self.served,
            "incumbent": self.incumbent,
            "changed": self.changed,
            "reason": self.reason,
            "judge": self.judge,
            "candidates": [asdict(c) for c in self.candidates],
        }


def summarise(outcomes: Sequence[float], rules: GateRules) -> dict[str, float]:
    return bootstrap_mean(outcomes, rounds=rules.bootstrap_rounds, seed=rules.seed)


def check_candidate(evidence: CandidateEvidence, judge_trusted: bool, rules: GateRules) -> CandidateEvidence:
    """Fill ``evidence.checks``, ``passed`` and ``reason`` (every failing check named, with numbers)."""
    failures = []
    judge = evidence.judge
    if not judge_trusted:
        failures.append(f"the {evidence.judge_name} is not trusted")
    elif judge.get("n", 0) < rules.min_users:
        failures.append(f"only {judge.get('n', 0)} held-out users (need {rules.min_users})")
    elif not judge["low"] > 0.5:
        failures.append(
            f"judge win rate {judge['mean']:.3f} [{judge['low']:.3f}, {judge['high']:.3f}] does not clear 0.5"
        )
    replay = evidence.replay
    if replay is not None and replay.get("n", 0) and replay["high"] < 0.5:
        failures.append(
            f"held-out annotators side against it: replay {replay['mean']:.3f} "
            f"[{replay['low']:.3f}, {replay['high']:.3f}]"
        )
    ndcg = evidence.ndcg_difference
    if ndcg is not None and ndcg.get("n", 0) and ndcg["high"] < 0:
        failures.append(
            f"held-out NDCG@10 lower by {-ndcg['mean']:.4f} [{ndcg['low']:+.4f}, {ndcg['high']:+.4f}]"
        )
    if evidence.kl is not None and not evidence.kl <= rules.max_kl:
        failures.append(f"KL from the reference {evidence.kl:.2f} > {rules.max_kl}")
    evidence.checks = {
        "judge_win_rate": judge.get("mean"),
        "judge_low": judge.get("low"),
        "judge_high": judge.get("high"),
        "replay": None if replay is None else replay.get("mean"),
        "ndcg_difference": None if ndcg is None else ndcg.get("mean"),
        "kl": evidence.kl,
    }
    evidence.passed = not failures
    evidence.reason = "; ".join(failures) if failures else "beats the served policy on every judge"
    return evidence


def gate_decide(
    candidates: Sequence[CandidateEvidence],
    *,
    incumbent: str,
    judge_accuracy: float | None,
    judge_comparisons: int,
    rules: GateRules,
) -> GateDecision:
    """Serve the passing candidate with the highest judge win rate, else keep ``incumbent``.

    ``judge_accuracy`` and ``judge_comparisons`` are the shared independent judge's credentials. A
    candidate that learned nothing from comparisons may bring its own judge (``judge_trusted``):
    any reward model is independent of it, so the learner's, trained on far more comparisons, may
    judge it.
    """
    trusted = (
        judge_accuracy is not None
        and judge_comparisons >= rules.min_judge_comparisons
        and judge_accuracy >= rules.min_judge_accuracy
    )
    judge = {
        "accuracy": judge_accuracy,
        "n_strict": judge_comparisons,
        "trusted": trusted,
        "rules": asdict(rules),
    }
    checked = [
        check_candidate(c, trusted if c.judge_trusted is None else c.judge_trusted, rules)
        for c in candidates
        if c.name != incumbent
    ]
    passing = [c for c in checked if c.passed]
    if not passing:
        reason = f"no candidate beats {incumbent}: it stays"
        if not trusted:
            accuracy = "n/a" if judge_accuracy is None else f"{judge_accuracy:.3f}"
            reason = (
                f"the independent judge is not trusted (accuracy {accuracy} on {judge_comparisons} held-out "
                f"comparisons; need {rules.min_judge_accuracy} on {rules.min_judge_comparisons}) and "
                + reason
            )
        return GateDecision(incumbent, incumbent, False, reason, judge, checked)
    best = max(passing, key=lambda c: (c.judge["mean"], c.judge["low"]))
    reason = f"{best.name} beats {incumbent}: judge win rate {best.judge['mean']:.3f} [{best.judge['low']:.3f}, {best.judge['high']:.3f}]"
    return GateDecision(best.name, incumbent, True, reason, judge, checked)


# --- Verdicts: what the gate says about one registered version -------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The gate's word on one registered version: serve it or hold it back, and why."""

    serve: bool
    report: dict[str, Any]  # stored on the version (``ModelVersion.gate``)
    note: str = ""  # recorded with the activation when it is served
    metrics: dict[str, Any] = field(default_factory=dict)  # added to the version's metrics


def recommender_verdict(*, metric: str, candidate: float, active: float | None, has_active: bool) -> Verdict:
    """A recommender is served when none is active, or when it scores at least the active one on
    ``metric`` (``active`` is None when the active one's score is unknown: the candidate is served)."""
    better = active is None or candidate >= active
    if not has_active:
        reason = "no active recommender"
    else:
        reason = "better than or equal to the active version" if better else "worse than the active version"
    report = {"metric": metric, "candidate": candidate, "active": active, "passed": better, "reason": reason}
    return Verdict(better, report, reason)


def reward_model_verdict(
    *, accuracy: float | None, heldout_comparisons: int, min_comparisons: int, min_accuracy: float
) -> Verdict:
    """A reward model is served (what the next policies train against) when its held-out accuracy is
    at least ``min_accuracy`` on at least ``min_comparisons`` held-out comparisons."""
    trusted = accuracy is not None and heldout_comparisons >= min_comparisons and accuracy >= min_accuracy
    reason = (
        "held-out accuracy above the threshold"
        if trusted
        else "not enough held-out evidence or accuracy below the threshold"
    )
    report = {
        "passed": trusted,
        "reward_accuracy": accuracy,
        "heldout_comparisons": heldout_comparisons,
        "reason": reason,
    }
    return Verdict(trusted, report, reason)


def candidate_verdicts(
    decision: GateDecision, names: Sequence[str], context: Mapping[str, Any] | None = None
) -> dict[str, Verdict]:
    """Each candidate's verdict from ``gate_decide``'s decision: the full report (with ``context``
    added), the gate's verdict as ``decision`` and the candidate's own ``reason``; only the chosen
    one is served."""
    report = {**decision.as_dict(), **(context or {})}
    by_name = {evidence.name: evidence for evidence in decision.candidates}
    verdicts = {}
    for name in names:
        own = by_name.get(name)
        chosen = decision.changed and decision.served == name
        reason = own.reason if own else "it is the served policy"
        if own is not None and own.passed and not chosen:
            reason = f"passed, but {decision.served} has the higher judge win rate"
        verdicts[name] = Verdict(
            serve=chosen,
            report={
                **report,
                "candidate": name,
                "decision": decision.reason,  # the gate's verdict; ``reason`` is this candidate's own
                "passed": bool(own and own.passed),
                "chosen": chosen,
                "reason": reason,
            },
            note=f"gate: {decision.reason}",
            metrics={"gate/win_rate": own.judge.get("mean") if own else None},
        )
    return verdicts
