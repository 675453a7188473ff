"""The controls on "For you": they validate, ``training.ml.steering`` re-ranks."""

from __future__ import annotations

from django import forms

from movies.forms import FilterForm
from training.ml.steering import STEPS, Steering

STEP_CHOICES = [("less", "Less"), ("", "As is"), ("more", "More")]


class SteeringForm(FilterForm):
    popularity = forms.ChoiceField(required=False, choices=STEP_CHOICES, label="Popular")
    recency = forms.ChoiceField(required=False, choices=STEP_CHOICES, label="Recent")
    genre = forms.ChoiceField(required=False, choices=(), label="Genre focus")

    def __init__(self, *args, genres: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["genre"].choices = [("", "Any genre")] + [(name, name) for name in genres]

    def steering(self) -> Steering:
        """The valid controls: a wrong field is left as is, and reported, while the others still apply."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        if self.errors:  # show a wrong control as "as is", which is what the list used
            self.data = self.data.copy()
            for name in self.errors:
                if name in self.fields:
                    self.data[name] = ""
        return Steering(
            popularity=STEPS[data.get("popularity") or ""],
            recency=STEPS[data.get("recency") or ""],
            genre=data.get("genre") or "",
        )
