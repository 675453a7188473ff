"""Slate building as a reinforcement-learning problem: one movie per step, for a batch of users at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

# Logit given to unavailable candidates. Finite (not -inf) so that `p * log p` stays 0, not nan.
NEG_INF = -1e9


class ReferenceRecommender(Protocol):
    """The supervised recommender the policies start from and are regularised towards."""

    n_items: int

    def top_k(self, history: Any, k: int, exclude_rated: bool = True) -> tuple[np.ndarray, np.ndarray]: ...


class RewardModel(Protocol):
    """The model of human feedback: a position-discounted score of a whole list."""

    def list_score(self, ctx: Any, slate: np.ndarray) -> float: ...


def user_state(ctx: Any) -> np.ndarray:
    """What a policy knows about a user: the recommender embedding followed by the text-feedback signals."""
    embedding = np.asarray(ctx.embedding, dtype=np.float32).ravel()
    signals = getattr(ctx, "signals", None)
    signals = np.zeros(0, np.float32) if signals is None else np.asarray(signals, np.float32).ravel()
    return np.concatenate([embedding, signals])


@dataclass
class CandidateSet:
    """The reference recommender's top-C unrated movies of each user, padded to exactly C."""

    items: np.ndarray  # [N, C] int64 item indices, best reference score first
    ref_scores: np.ndarray  # [N, C] float32 reference scores; padding gets the user's lowest score
    valid: np.ndarray  # [N, C] bool, False on padding (a user with fewer than C unrated movies)

    def take(self, rows: np.ndarray) -> CandidateSet:
        return CandidateSet(self.items[rows], self.ref_scores[rows], self.valid[rows])

    def __len__(self) -> int:
        return len(self.items)


def candidate_set(
    reference: ReferenceRecommender, histories: Sequence[Any], n_candidates: int, exclude_rated: bool = True
) -> CandidateSet:
    """Ask the reference recommender for each user's top `n_candidates` movies."""
    items = np.zeros((len(histories), n_candidates), np.int64)
    ref_scores = np.zeros((len(histories), n_candidates), np.float32)
    valid = np.zeros((len(histories), n_candidates), bool)
    for row, history in enumerate(histories):
        top_items, top_scores = reference.top_k(history, n_candidates, exclude_rated=exclude_rated)
        n = min(len(top_items), n_candidates)
        if n == 0:
            raise ValueError(f"user {row} has no candidate movie left to recommend")
        items[row, :n] = top_items[:n]
        ref_scores[row, :n] = top_scores[:n]
        items[row, n:] = top_items[0]
        ref_scores[row, n:] = np.min(top_scores[:n])
        valid[row, :n] = True
    return CandidateSet(items, ref_scores, valid)


def ref_log_policy(ref_scores: np.ndarray, available: np.ndarray, ref_temperature: float) -> np.ndarray:
    """log softmax(ref_scores / ref_temperature) over the available candidates; NEG_INF elsewhere."""
    logits = np.where(available, ref_scores.astype(np.float64) / ref_temperature, -np.inf)
    top = logits.max(axis=-1, keepdims=True)
    logprobs = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    return np.where(available, logprobs, NEG_INF)


@dataclass
class SlateObservation:
    """What the agent sees before choosing the next movie of each slate in the batch."""

    user: np.ndarray  # [B, u] user embedding ++ text-feedback signals
    candidates: np.ndarray  # [B, C] item indices of the candidate movies
    candidate_features: np.ndarray  # [B, C, f] item features of the candidates
    ref_scores: np.ndarray  # [B, C] reference recommender scores of the candidates
    available: np.ndarray  # [B, C] bool: a real candidate not chosen yet
    slot: np.ndarray  # [B] int: position being filled, 0..K-1 (K when the slate is done)
    chosen_mean: np.ndarray  # [B, f] mean features of the movies chosen so far (zeros at slot 0)

    def step_inputs(self) -> dict[str, np.ndarray]:
        """The part of the scorer inputs that changes from step to step (a time axis of length 1)."""
        return {
            "chosen_mean": self.chosen_mean[:, None, :].astype(np.float32, copy=False),
            "slot": self.slot[:, None].astype(np.float32, copy=False),
            "available": self.available[:, None, :],
        }

    def episode_inputs(self) -> dict[str, np.ndarray]:
        """The part of the scorer inputs that is fixed for a whole episode."""
        return {
            "user": self.user.astype(np.float32, copy=False),
            "candidate_features": self.candidate_features.astype(np.float32, copy=False),
            "ref_scores": self.ref_scores.astype(np.float32, copy=False),
        }

    def model_inputs(self) -> dict[str, np.ndarray]:
        """All inputs of the slate scorer for one decision per episode."""
        return {**self.episode_inputs(), **self.step_inputs()}


class SlateEnv:
    """Builds a K-movie slate for each user of a batch, one movie per step (cf. RecSim / SlateQ).

    The action is a candidate index; chosen candidates are masked so no movie repeats. The reference
    policy picks with softmax(ref_scores / ref_temperature) over the remaining candidates. The reward
    is the reward model's list score of the finished slate, given either at the last step
    (`incremental_rewards=False`, for PPO) or as the marginal gain of each added movie, which sums to
    the same list score (`incremental_rewards=True`, for Q-learning).
    """

    def __init__(
        self,
        reference: ReferenceRecommender,
        reward_model: RewardModel,
        item_features: np.ndarray,
        n_candidates: int = 200,
        slate_size: int = 10,
        ref_temperature: float = 1.0,
        incremental_rewards: bool = True,
    ):
        self.reference = reference
        self.reward_model = reward_model
        self.item_features = np.asarray(item_features, np.float32)
        self.n_candidates = n_candidates
        self.slate_size = slate_size
        self.ref_temperature = ref_temperature
        self.incremental_rewards = incremental_rewards
        self.users: list[Any] = []

    def candidate_set(self, users: Sequence[Any]) -> CandidateSet:
        """Candidates of many users, computed once and reused across resets with `reset(users, cands)`."""
        return candidate_set(self.reference, [u.history for u in users], self.n_candidates)

    def reset(self, users: Sequence[Any], candidates: CandidateSet | None = None) -> SlateObservation:
        self.users = list(users)
        cands = self.candidate_set(users) if candidates is None else candidates
        if len(cands) != len(self.users):
            raise ValueError("one candidate row per user is needed")
        if cands.valid.sum(axis=1).min() < self.slate_size:
            raise ValueError(f"a user has fewer than slate_size={self.slate_size} candidate movies")
        batch = len(self.users)
        self.cands = cands
        self.user = np.stack([user_state(u) for u in self.users])
        self.candidate_features = self.item_features[cands.items]
        self.chosen = np.zeros(cands.items.shape, bool)
        self.chosen_sum = np.zeros((batch, self.item_features.shape[1]), np.float32)
        self.slates = np.zeros((batch, 0), np.int64)
        self.prefix_scores = np.zeros(batch, np.float64)
        self.t = 0
        return self.observation()

    def observation(self) -> SlateObservation:
        batch = len(self.users)
        return SlateObservation(
            user=self.user,
            candidates=self.cands.items,
            candidate_features=self.candidate_features,
            ref_scores=self.cands.ref_scores,
            available=self.cands.valid & ~self.chosen,
            slot=np.full(batch, self.t, np.int64),
            chosen_mean=self.chosen_sum / max(self.t, 1),
        )

    def ref_logprobs(self) -> np.ndarray:
        """[B, C] log-probabilities of the reference policy at the current step."""
        return ref_log_policy(self.cands.ref_scores, self.cands.valid & ~self.chosen, self.ref_temperature)

    def step(
        self, actions: np.ndarray
    ) -> tuple[SlateObservation, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Add candidate `actions[b]` to slate b; returns (obs, rewards, dones, info).

        info["ref_logprobs"] is the reference policy's log-probability of each action and
        info["list_scores"] the list score of the slate so far (only at the end without incremental rewards).
        """
        if self.t >= self.slate_size:
            raise RuntimeError("the slates are complete; call reset()")
        actions = np.asarray(actions, np.int64)
        rows = np.arange(len(self.users))
        available = self.cands.valid & ~self.chosen
        if not available[rows, actions].all():
            raise ValueError("an action picks a movie that is already in the slate or not a candidate")
        ref_logprobs = self.ref_logprobs()[rows, actions]

        self.chosen[rows, actions] = True
        self.chosen_sum += self.candidate_features[rows, actions]
        self.slates = np.concatenate([self.slates, self.cands.items[rows, actions][:, None]], axis=1)
        self.t += 1
        done = self.t == self.slate_size

        if self.incremental_rewards or done:
            scores = np.array(
                [
                    self.reward_model.list_score(u, slate)
                    for u, slate in zip(self.users, self.slates, strict=True)
                ],
                np.float64,
            )
            rewards = scores - self.prefix_scores if self.incremental_rewards else scores
            self.prefix_scores = scores
        else:
            scores = np.zeros(len(self.users))
            rewards = np.zeros(len(self.users))
        info = {"ref_logprobs": ref_logprobs, "list_scores": scores}
        return self.observation(), rewards.astype(np.float32), np.full(len(self.users), done), info
