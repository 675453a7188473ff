"""Staff plots: what the panels show, including when there is nothing to show yet."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from training import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_rating_histogram_has_one_bar_per_half_star_value():
    ratings = pd.DataFrame({"rating": [0.5, 4.0, 4.0, 5.0], "source": ["dataset"] * 4})
    fig = plots.rating_figure(ratings)
    bars = {
        round(bar.get_x() + bar.get_width() / 2, 2): bar.get_height()
        for bar in fig.axes[0].patches
        if bar.get_height() > 0
    }
    plt.close(fig)
    assert bars == {0.5: pytest.approx(0.25), 4.0: pytest.approx(0.5), 5.0: pytest.approx(0.25)}


def test_each_source_is_normalised_on_its_own():
    ratings = pd.DataFrame({"rating": [3.0, 3.0, 3.5, 1.0], "source": ["dataset"] * 3 + ["site accounts"]})
    fig = plots.rating_figure(ratings)
    heights = sorted(round(bar.get_height(), 3) for bar in fig.axes[0].patches if bar.get_height() > 0)
    plt.close(fig)
    assert heights == [0.333, 0.667, 1.0]


def test_empty_panels_say_so_and_are_still_images():
    fig = plots.rating_figure(pd.DataFrame({"rating": [], "source": []}))
    assert [text.get_text() for text in fig.axes[0].texts] == ["No ratings yet"]
    plt.close(fig)
    assert plots.version_metric(pd.DataFrame(), "win_rate", "Win rate").startswith(PNG)
    assert plots.genre_mix(pd.DataFrame()).startswith(PNG)
