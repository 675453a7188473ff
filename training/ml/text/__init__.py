"""Free-text feedback (annotator reasons, end-user comments) turned into structured signals.

    analyzer = TextAnalyzer(titles=[(1, "Toy Story (1995)")], tags=["dark comedy"])
    analyzer.analyze("loved the comedies but too many horror films").signals
    # [Signal(aspect="genre", value="Comedy", polarity=0.8, span="comedies"),
    #  Signal(aspect="genre", value="Horror", polarity=-0.6, span="horror films")]

Plain Python (VADER, no Django); the rules are documented in `analyzer`.
"""

from __future__ import annotations

from training.ml.text.analyzer import Signal, TextAnalysis, TextAnalyzer
from training.ml.text.normalise import clean, normalise, tokenise, words

__all__ = ["Signal", "TextAnalysis", "TextAnalyzer", "clean", "normalise", "tokenise", "words"]
