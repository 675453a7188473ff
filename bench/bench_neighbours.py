"""Cost of the recommender's EASE item-item term at ml-25m scale: ``EASE.neighbours`` at training time.

Run: ``.venv/bin/python bench/bench_neighbours.py [--items 20000] [--catalogue 62000] [--width 128]``.
EASE models at most its 20,000 most-rated movies (``EASEConfig.max_items``), so on ml-25m's
62,000-movie catalogue its weights are a 20,000 x 20,000 float32 matrix (1.6 GB); random weights
stand in for fitted ones (the selection does not depend on their values). Prints the time to keep
each row's ``--width`` largest weights by magnitude, the memory that adds, and the size of the
arrays the artifact then carries.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.ml.baselines import EASE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000, help="movies EASE models")
    parser.add_argument("--catalogue", type=int, default=62_000, help="movies in the catalogue")
    parser.add_argument("--width", type=int, default=128, help="weights kept per movie")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    weights = np.random.default_rng(0).standard_normal((args.items, args.items), dtype=np.float32)
    ease = EASE(weights, np.arange(args.items), args.catalogue, min_rating=4.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    items, kept = ease.neighbours(args.width)
    seconds = time.perf_counter() - started
    added = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(
        f"neighbours({args.width}) of a {args.items:,} x {args.items:,} EASE, {args.catalogue:,}-movie catalogue: "
        f"{seconds:.1f} s; peak RSS +{added / 1024:,.0f} MiB over {before / 1024:,.0f} MiB; "
        f"artifact arrays {(items.nbytes + kept.nbytes) / 2**20:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
