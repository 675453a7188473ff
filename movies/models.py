"""The MovieLens catalogue, the people who rate it, and their ratings."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from training.ml.text.movielens_titles import natural_title

RATING_MIN = 0.5
RATING_MAX = 5.0
RATING_STEP = 0.5


class Genre(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Movie(models.Model):
    """A catalogue entry; its primary key is the MovieLens movie id of the imported release."""

    id = models.PositiveIntegerField(primary_key=True, verbose_name="MovieLens id")
    title = models.CharField(max_length=512, db_index=True, help_text="Title without the year suffix.")
    year = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    genres = models.ManyToManyField(Genre, related_name="movies", blank=True)
    imdb_id = models.CharField(
        max_length=16, blank=True, help_text="Digits only, as MovieLens links.csv has it."
    )
    tmdb_id = models.PositiveIntegerField(null=True, blank=True)
    # Denormalised so that sorting and filtering 62,000 movies never aggregates 25 M ratings.
    num_ratings = models.PositiveIntegerField(default=0, db_index=True)
    avg_rating = models.FloatField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.display_title

    @property
    def name(self) -> str:
        """The title as people write it: MovieLens's "Matrix, The" is "The Matrix" (``training.ml.text.movielens_titles``)."""
        return natural_title(self.title)

    @property
    def display_title(self) -> str:
        return f"{self.name} ({self.year})" if self.year else self.name

    @property
    def imdb_url(self) -> str:
        return f"https://www.imdb.com/title/tt{self.imdb_id}/" if self.imdb_id else ""

    @property
    def tmdb_url(self) -> str:
        return f"https://www.themoviedb.org/movie/{self.tmdb_id}" if self.tmdb_id else ""


class Rater(models.Model):
    """Someone whose ratings the models learn from: a MovieLens dataset user or a site account.

    Dataset users keep their MovieLens user id and never get a login-capable account.
    """

    movielens_id = models.PositiveIntegerField(null=True, blank=True, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="rater"
    )
    gender = models.CharField(max_length=8, blank=True)
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    occupation = models.CharField(max_length=64, blank=True)
    zip_code = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(movielens_id__isnull=False, user__isnull=True)
                | Q(movielens_id__isnull=True, user__isnull=False),
                name="rater_is_dataset_user_xor_account",
            )
        ]

    def __str__(self) -> str:
        if self.movielens_id is not None:
            return f"MovieLens user {self.movielens_id}"
        return f"account {self.user_id}"

    @property
    def is_dataset_user(self) -> bool:
        return self.movielens_id is not None


class Rating(models.Model):
    # No per-column foreign-key indexes: the unique (rater, movie) index serves lookups by rater and
    # rating_movie_idx those by movie; Django's defaults would duplicate both on the largest table.
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="ratings", db_index=False)
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="ratings", db_index=False)
    rating = models.FloatField()
    rated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rater", "movie"], name="one_rating_per_rater_and_movie"),
            models.CheckConstraint(
                condition=Q(rating__gte=RATING_MIN, rating__lte=RATING_MAX), name="rating_in_range"
            ),
        ]
        indexes = [models.Index(fields=["movie"], name="rating_movie_idx")]

    def __str__(self) -> str:
        return f"{self.rater} rated {self.movie_id}: {self.rating}"


class Tag(models.Model):
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="tags")
    movie = models.ForeignKey(
        Movie, on_delete=models.CASCADE, related_name="tags", db_index=False
    )  # tag_movie_idx
    tag = models.CharField(max_length=255)
    tagged_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["movie"], name="tag_movie_idx")]

    def __str__(self) -> str:
        return self.tag


class DatasetImport(models.Model):
    """One completed import of a MovieLens release (failed imports leave no row)."""

    name = models.CharField(max_length=64, help_text="Release name, e.g. ml-latest-small.")
    format = models.CharField(max_length=16, help_text="csv, dat or 100k.")
    source = models.CharField(max_length=1024)
    fingerprint = models.CharField(max_length=64, help_text="sha256 over the release's data files.")
    movies = models.PositiveIntegerField()
    ratings = models.PositiveIntegerField()
    tags = models.PositiveIntegerField()
    users = models.PositiveIntegerField()
    seconds = models.FloatField()
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.imported_at:%Y-%m-%d %H:%M})"


class WatchlistEntry(models.Model):
    """A movie an account wants to watch: its "want to watch" list."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlist")
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="watchlist_entries")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "watchlist entries"
        ordering = ["-added_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "movie"], name="one_watchlist_entry_per_movie"),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} wants to watch {self.movie_id}"
