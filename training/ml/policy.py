"""NumPy serving of slate policies trained by PPO or DQN: greedy lists, sampled lists and their probabilities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.ml.algorithms import SLATE_POLICIES
from training.ml.env import NEG_INF, candidate_set, user_state

KINDS = SLATE_POLICIES  # ppo, qlearning


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@dataclass
class _Episode:
    """One user's candidates with the step-independent parts of the scorer already evaluated."""

    items: np.ndarray  # [C] catalogue indices
    valid: np.ndarray  # [C] False on padding
    features: np.ndarray  # [C, f] raw item features
    hidden: np.ndarray  # [C, H] candidate MLP output
    candidates: np.ndarray  # [C, f] normalised item features
    static_logits: np.ndarray  # [C] candidate_head + ref_logit_scale * ref_score
    user_context: np.ndarray  # [H] the user's share of the context layer, bias included
    summary_kernel: np.ndarray  # [f, H] context-layer rows of the chosen-movies summary
    slot_kernel: np.ndarray  # [H] context-layer row of slot / K


class NumpySlatePolicy:
    """The slate scorer of `training.ml.slate_scorer.make_slate_scorer`, evaluated with NumPy.

    `kind="ppo"`: outputs are policy logits (the reference term included). `kind="qlearning"`: outputs
    are Q-values; sampling then uses a Boltzmann policy softmax(Q / temperature).
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], kind: str = "ppo"):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.kind = kind
        self.w = {name: np.asarray(value) for name, value in arrays.items()}
        self.n_candidates = int(self.w["n_candidates"])
        self.slate_size = int(self.w["slate_size"])
        self.ref_logit_scale = float(self.w["ref_logit_scale"])
        n_hidden = sum(name.startswith("candidate_mlp_") and name.endswith("/kernel") for name in self.w)
        self.candidate_mlp = [f"candidate_mlp_{i}" for i in range(1, n_hidden + 1)]
        self.has_value_head = "value_head/kernel" in self.w

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], kind: str = "ppo") -> NumpySlatePolicy:
        return cls(arrays, kind)

    def dense(self, name: str, x: np.ndarray) -> np.ndarray:
        out = x @ self.w[f"{name}/kernel"]
        bias = self.w.get(f"{name}/bias")
        return out if bias is None else out + bias

    # --- the network, mirroring SlateScorer.encode_candidates / score_steps --------------------------

    def encode_candidates(
        self, user: np.ndarray, candidate_features: np.ndarray, ref_scores: np.ndarray
    ) -> dict:
        """user [B, u], candidate_features [B, C, f], ref_scores [B, C] -> per-episode encoding."""
        ref_scores = np.asarray(ref_scores, np.float32)
        user = (np.asarray(user, np.float32) - self.w["user_mean"]) / self.w["user_std"]
        cand = (np.asarray(candidate_features, np.float32) - self.w["item_mean"]) / self.w["item_std"]
        ref_centred = ref_scores - ref_scores.mean(axis=-1, keepdims=True)
        ref_z = ref_centred / (np.sqrt((ref_centred**2).mean(axis=-1, keepdims=True)) + 1e-6)
        hidden = relu(
            self.dense("candidate_in", np.concatenate([cand, ref_z[..., None]], axis=-1))
            + self.dense("user_in", user)[:, None, :]
        )
        for name in self.candidate_mlp:
            hidden = relu(self.dense(name, hidden))
        return {"hidden": hidden, "candidates": cand, "user": user, "ref_scores": ref_scores}

    def score_steps(
        self, encoded: dict, chosen_mean: np.ndarray, slot: np.ndarray, available: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """chosen_mean [B, T, f], slot [B, T], available [B, T, C] -> logits [B, T, C], value [B, T] or None."""
        hidden, cand, user = encoded["hidden"], encoded["candidates"], encoded["user"]
        slot = np.asarray(slot, np.float32)
        available = np.asarray(available, bool)
        has_chosen = (slot > 0).astype(np.float32)[..., None]
        summary = (
            (np.asarray(chosen_mean, np.float32) - self.w["item_mean"]) / self.w["item_std"] * has_chosen
        )
        n_steps = summary.shape[1]
        context = np.concatenate(
            [np.repeat(user[:, None, :], n_steps, axis=1), summary, (slot / self.slate_size)[..., None]],
            axis=-1,
        )
        context = relu(self.dense("context_mlp", context))
        weights = available.astype(np.float32)
        weights = weights / np.maximum(weights.sum(axis=-1, keepdims=True), 1.0)
        remaining = np.einsum("btc,bch->bth", weights, hidden)
        step_state = np.concatenate([context, remaining], axis=-1)
        similarity = np.einsum("bcf,btf->btc", cand, summary) / cand.shape[-1]

        logits = (
            self.dense("candidate_head", hidden)[..., 0][:, None, :]
            + np.einsum("bch,bth->btc", hidden, self.dense("query_head", step_state))
            + similarity * self.dense("similarity_head", step_state)
            + self.dense("state_head", step_state)
            + self.ref_logit_scale * encoded["ref_scores"][:, None, :]
        )
        logits = np.where(available, logits, NEG_INF).astype(np.float32)
        value = None
        if self.has_value_head:
            value = self.dense("value_head", relu(self.dense("value_hidden", step_state)))[..., 0]
        return logits, value

    def forward(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Same inputs and outputs as the Keras SlateScorer's call()."""
        encoded = self.encode_candidates(inputs["user"], inputs["candidate_features"], inputs["ref_scores"])
        logits, value = self.score_steps(encoded, inputs["chosen_mean"], inputs["slot"], inputs["available"])
        return {"logits": logits} if value is None else {"logits": logits, "value": value}

    # --- serving one user ------------------------------------------------------------------------

    def _episode(self, ctx: Any, reference, item_features: np.ndarray, exclude_rated: bool) -> _Episode:
        """Candidates of one user and every step-independent term of `score_steps`, computed once."""
        cands = candidate_set(reference, [ctx.history], self.n_candidates, exclude_rated=exclude_rated)
        features = np.asarray(item_features)[cands.items].astype(np.float32)  # [1, C, f]; cast only C rows
        encoded = self.encode_candidates(user_state(ctx)[None, :], features, cands.ref_scores)
        hidden, user = encoded["hidden"][0], encoded["user"][0]
        context_kernel = self.w["context_mlp/kernel"]
        n_user, n_item = len(user), features.shape[-1]
        return _Episode(
            items=cands.items[0],
            valid=cands.valid[0],
            features=features[0],
            hidden=hidden,
            candidates=encoded["candidates"][0],
            static_logits=self.dense("candidate_head", hidden)[:, 0]
            + self.ref_logit_scale * encoded["ref_scores"][0],
            user_context=user @ context_kernel[:n_user] + self.w["context_mlp/bias"],
            summary_kernel=context_kernel[n_user : n_user + n_item],
            slot_kernel=context_kernel[n_user + n_item],
        )

    def _step_logits(
        self, episode: _Episode, t: int, chosen_sum: np.ndarray, available: np.ndarray
    ) -> np.ndarray:
        """`score_steps` for one user at one step, reusing the episode's precomputed terms."""
        summary = (chosen_sum / max(t, 1) - self.w["item_mean"]) / self.w["item_std"] * float(t > 0)
        context = relu(
            episode.user_context
            + summary @ episode.summary_kernel
            + (t / self.slate_size) * episode.slot_kernel
        )
        weights = available.astype(np.float32)
        remaining = (weights / max(weights.sum(), 1.0)) @ episode.hidden
        step_state = np.concatenate([context, remaining])
        similarity = episode.candidates @ summary / episode.candidates.shape[-1]
        logits = (
            episode.static_logits
            + episode.hidden @ self.dense("query_head", step_state)
            + similarity * self.dense("similarity_head", step_state)[0]
            + self.dense("state_head", step_state)[0]
        )
        return np.where(available, logits, NEG_INF).astype(np.float32)

    def _rollout(self, episode: _Episode, k: int, choose):
        """Build a list of k movies; `choose(logits[C], available[C]) -> candidate index` picks each one."""
        k = min(k, int(episode.valid.sum()))
        available = episode.valid.copy()
        chosen_sum = np.zeros(episode.features.shape[1], np.float32)
        picks, step_logits = [], []
        for t in range(k):
            logits = self._step_logits(episode, t, chosen_sum, available)
            pick = choose(logits, available)
            picks.append(pick)
            step_logits.append(logits)
            available[pick] = False
            chosen_sum += episode.features[pick]
        return episode.items, np.array(picks, np.int64), step_logits

    def recommend(
        self, ctx: Any, reference, item_features: np.ndarray, k: int = 10, exclude_rated: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Greedy slate: the best available candidate at every step.

        Returns (item_idx [k], scores [k]): each movie's logit (ppo) or Q-value (qlearning) at the step
        it was chosen. Fewer than k movies come back if the user has fewer unrated candidates.
        """
        episode = self._episode(ctx, reference, item_features, exclude_rated)
        items, picks, step_logits = self._rollout(
            episode, k, lambda logits, available: int(np.argmax(logits))
        )
        scores = np.array([logits[p] for logits, p in zip(step_logits, picks, strict=True)], np.float32)
        return items[picks], scores

    def sample(
        self,
        ctx: Any,
        reference,
        item_features: np.ndarray,
        k: int = 10,
        rng: np.random.Generator | None = None,
        temperature: float = 1.0,
        exclude_rated: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sampled slate from softmax(logits / temperature) at every step, without repeats.

        Returns (item_idx [k], probs [k]) where probs[i] is the probability of the i-th movie given the
        movies before it; the probability of the whole ordered list is probs.prod().
        """
        rng = rng or np.random.default_rng()
        logprobs = []

        def choose(logits, available):
            step_logprobs = log_softmax(np.where(available, logits.astype(np.float64) / temperature, -np.inf))
            pick = int(np.argmax(step_logprobs + rng.gumbel(size=len(step_logprobs))))  # Gumbel-max sample
            logprobs.append(step_logprobs[pick])
            return pick

        episode = self._episode(ctx, reference, item_features, exclude_rated)
        items, picks, _ = self._rollout(episode, k, choose)
        return items[picks], np.exp(np.array(logprobs))

    def logprob_of_slate(
        self,
        ctx: Any,
        reference,
        item_features: np.ndarray,
        slate: np.ndarray,
        temperature: float = 1.0,
        exclude_rated: bool = True,
    ) -> float:
        """log P(slate) under the sampling policy of `sample` (-inf if a movie is not a candidate)."""
        episode = self._episode(ctx, reference, item_features, exclude_rated)
        position = {int(item): c for c, item in enumerate(episode.items) if episode.valid[c]}
        slate = [int(item) for item in np.asarray(slate).ravel()]
        if len(set(slate)) != len(slate) or any(item not in position for item in slate):
            return float("-inf")
        forced = iter(position[item] for item in slate)
        _, picks, step_logits = self._rollout(episode, len(slate), lambda logits, available: next(forced))
        return float(self._step_logprobs(step_logits, picks, temperature).sum())

    @staticmethod
    def _step_logprobs(step_logits, picks, temperature: float) -> np.ndarray:
        """log-probability of each pick under softmax(logits / temperature) over the available candidates."""
        logprobs = []
        for logits, pick in zip(step_logits, picks, strict=True):
            available = logits > NEG_INF / 2
            logprobs.append(
                log_softmax(np.where(available, logits.astype(np.float64) / temperature, -np.inf))[pick]
            )
        return np.array(logprobs)
