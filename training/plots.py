"""Staff plots (matplotlib Agg + seaborn) rendered to PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

RUN_PANELS = [
    ("recommender", "loss", "Recommender loss"),
    ("reward_model", "loss", "Reward model loss"),
    ("reward_model", "eval/accuracy", "Reward model held-out accuracy"),
    ("ppo", "objective/kl", "PPO objective/kl"),
    ("ppo", "objective/rlhf_reward", "PPO objective/rlhf_reward"),
    ("ppo", "objective/entropy", "PPO objective/entropy"),
    ("ppo", "policy/clipfrac", "PPO policy/clipfrac"),
    ("qlearning", "loss/td", "Q-learning TD loss"),
    ("qlearning", "val/mean_reward", "Q-learning held-out reward"),
]


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def run_curves(history: dict) -> bytes:
    """One small panel per metric series the run recorded."""
    panels = [
        (key, metric, title)
        for key, metric, title in RUN_PANELS
        if any(metric in row for row in history.get(key, []))
    ]
    if not panels:
        panels = [(key, next(iter(rows[0]), ""), key) for key, rows in history.items() if rows]
    columns = min(3, max(1, len(panels)))
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False)
    for ax, (key, metric, title) in zip(axes.flat, panels, strict=False):
        series = [row.get(metric) for row in history.get(key, [])]
        ax.plot(range(1, len(series) + 1), series, marker="o", markersize=2.5)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    return _png(fig)


def _nothing_yet(ax, message: str) -> None:
    """An empty panel that says why it is empty, instead of bare axes."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


HALF_STARS = [value / 2 for value in range(1, 11)]


def rating_figure(ratings: pd.DataFrame):
    """Share of each half-star value, dataset users against site accounts (a bar per value)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    if len(ratings):
        sns.histplot(
            ratings,
            x="rating",
            hue="source",
            bins=[value - 0.25 for value in HALF_STARS] + [5.25],  # one bin centred on each value
            stat="probability",
            common_norm=False,
            multiple="dodge",
            shrink=0.8,
            ax=ax,
        )
        ax.set_xticks(HALF_STARS)
    else:
        _nothing_yet(ax, "No ratings yet")
    ax.set_title("Rating distribution")
    return fig


def rating_distribution(ratings: pd.DataFrame) -> bytes:
    return _png(rating_figure(ratings))


def genre_mix(frame: pd.DataFrame) -> bytes:
    """Heatmap of genre shares: columns are sources (users' histories, policies)."""
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * max(4, len(frame)) + 1.3))
    if not frame.empty:
        sns.heatmap(frame, annot=True, fmt=".2f", cmap="YlOrBr", ax=ax, cbar=False)
    else:
        _nothing_yet(ax, "No ratings or active model yet")
    ax.set_title("Genre mix of recommendations vs users' histories")
    return _png(fig)


def version_metric(frame: pd.DataFrame, metric: str, title: str) -> bytes:
    """A metric across model versions (x: version label)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    if not frame.empty:
        sns.barplot(frame, x="label", y=metric, hue="algorithm", ax=ax)
        ax.tick_params(axis="x", rotation=30)
    else:
        _nothing_yet(ax, "No model version has this metric yet")
    ax.set_title(title)
    return _png(fig)
