"""Plain-Python machine-learning core of the recommender (never imports Django)."""
