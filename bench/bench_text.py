"""Benchmark: build the free-text analyzer over a 62,000-title catalogue and analyze a 250-character text.

Run: .venv/bin/python bench/bench_text.py
The catalogue is the bundled 9,742 titles repeated with suffixes up to ml-25m's 62,000.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.ml.text import TextAnalyzer  # noqa: E402

DATA = ROOT / "data" / "ml-latest-small"
TEXT = (
    "Loved the comedies and Toy Story but way too many horror films, not a fan of 80s slashers. "
    "More obscure sci-fi please, like The Matrix or Alien; the left list is too mainstream."
)


def synthetic_catalogue(size: int = 62_000) -> list[tuple[int, str]]:
    movies = pd.read_csv(DATA / "movies.csv")
    suffixes = ["", " 2", " Returns", " Part III", ": The Beginning", " Reloaded", " (a.k.a. Other Name)"]
    catalogue: list[tuple[int, str]] = []
    for k, suffix in enumerate(suffixes):
        for movie_id, title in zip(movies.movieId, movies.title, strict=True):
            match = re.match(r"^(.*?)( \(\d{4}\))?\s*$", title)
            catalogue.append((int(movie_id) + 200_000 * k, f"{match.group(1)}{suffix}{match.group(2) or ''}"))
    return catalogue[:size]


def main() -> None:
    catalogue = synthetic_catalogue()
    tags = pd.read_csv(DATA / "tags.csv").tag.dropna().unique().tolist()
    started = time.perf_counter()
    analyzer = TextAnalyzer(catalogue, tags)
    built = time.perf_counter() - started
    analyzer.analyze(TEXT)
    n = 300
    started = time.perf_counter()
    for _ in range(n):
        result = analyzer.analyze(TEXT)
    per_text = (time.perf_counter() - started) / n
    print(f"titles={len(catalogue)} tags={len(tags)}")
    print(f"build_seconds={built:.2f}")
    print(f"analyze_ms_per_{len(TEXT)}_chars={per_text * 1000:.2f}")
    for signal in result.signals:
        print("  ", signal.as_dict())


if __name__ == "__main__":
    main()
