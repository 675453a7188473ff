"""Forms for browsing, rating and signing up; they validate, services act."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from .exceptions import InvalidRating
from .models import RATING_MAX, RATING_MIN, RATING_STEP
from .selectors import DEFAULT_RATING_SORT, DEFAULT_SORT, MovieFilters, RatingFilters
from .services import validate_rating_value

SORT_CHOICES = [
    ("popularity", "Most rated"),
    ("rating", "Highest rated"),
    ("year", "Newest"),
    ("title", "Title"),
]
YEAR_MIN, YEAR_MAX = 1870, 2100


class FilterForm(forms.Form):
    """A form of filters that reports each wrong field by its label."""

    def field_errors(self) -> list[tuple[str, list[str]]]:
        """Each wrong filter's label with its messages, in the form's order."""
        return [
            (self.fields[name].label or name.replace("_", " ").capitalize(), list(self.errors[name]))
            for name in self.fields
            if name in self.errors
        ]


class MovieFilterForm(FilterForm):
    q = forms.CharField(required=False, max_length=200, label="Title")
    genre = forms.ChoiceField(required=False, choices=())
    year_min = forms.IntegerField(required=False, min_value=YEAR_MIN, max_value=YEAR_MAX, label="From year")
    year_max = forms.IntegerField(required=False, min_value=YEAR_MIN, max_value=YEAR_MAX, label="To year")
    min_ratings = forms.IntegerField(required=False, min_value=0, max_value=10_000_000, label="Min. ratings")
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def __init__(self, *args, genres: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["genre"].choices = [("", "Any genre")] + [(name, name) for name in genres]

    def clean(self):
        data = super().clean()
        low, high = data.get("year_min"), data.get("year_max")
        if low is not None and high is not None and low > high:
            self.add_error("year_max", "The end year must not be before the start year.")
        return data

    def filters(self) -> MovieFilters:
        """The valid filters: a wrong field is left out, and reported, while the others still apply."""
        self.is_valid()  # fills cleaned_data with the fields that are valid
        data = getattr(self, "cleaned_data", {})
        return MovieFilters(
            q=data.get("q") or "",
            genre=data.get("genre") or "",
            year_min=data.get("year_min"),
            year_max=data.get("year_max"),
            min_ratings=data.get("min_ratings"),
            sort=data.get("sort") or DEFAULT_SORT,
        )


RATING_SORT_CHOICES = [
    ("recent", "Newest first"),
    ("oldest", "Oldest first"),
    ("highest", "Highest rated"),
    ("lowest", "Lowest rated"),
    ("title", "Title"),
]
RATED_WITHIN = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "year": timedelta(days=365),
}
RATED_WITHIN_CHOICES = [
    ("", "Any time"),
    ("day", "Last 24 hours"),
    ("week", "Last 7 days"),
    ("month", "Last 30 days"),
    ("year", "Last 12 months"),
]


class MyRatingsFilterForm(FilterForm):
    rating = forms.TypedChoiceField(required=False, coerce=float, empty_value=None, label="Stars")
    genre = forms.ChoiceField(required=False, choices=())
    rated = forms.ChoiceField(required=False, choices=RATED_WITHIN_CHOICES, label="Rated")
    sort = forms.ChoiceField(required=False, choices=RATING_SORT_CHOICES)

    def __init__(self, *args, genres: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["genre"].choices = [("", "Any genre")] + [(name, name) for name in genres]
        steps = int((RATING_MAX - RATING_MIN) / RATING_STEP) + 1
        values = [RATING_MAX - RATING_STEP * i for i in range(steps)]
        self.fields["rating"].choices = [("", "Any")] + [(f"{value:g}", f"{value:g} ★") for value in values]

    def filters(self, *, now) -> RatingFilters:
        """The valid filters; a wrong one is left out while the others still apply."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        within = RATED_WITHIN.get(data.get("rated") or "")
        return RatingFilters(
            rating=data.get("rating"),
            genre=data.get("genre") or "",
            rated_since=now - within if within else None,
            sort=data.get("sort") or DEFAULT_RATING_SORT,
        )


class RatingForm(forms.Form):
    rating = forms.CharField(max_length=8)

    def clean_rating(self) -> float:
        try:
            return validate_rating_value(self.cleaned_data["rating"])
        except InvalidRating as error:
            raise forms.ValidationError(str(error)) from None


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False)

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")
