from django.contrib import admin

from .models import DatasetImport, Genre, Movie, Rater, Rating, Tag, WatchlistEntry


@admin.register(Genre)
class GenreAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Movie)
class MovieAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "year", "num_ratings", "avg_rating"]
    list_filter = ["genres", "year"]
    search_fields = ["title", "=id", "imdb_id"]
    filter_horizontal = ["genres"]
    readonly_fields = ["num_ratings", "avg_rating"]
    show_full_result_count = False


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = ["id", "movielens_id", "user", "gender", "age", "occupation"]
    list_filter = ["gender", "occupation"]
    search_fields = ["=movielens_id", "user__username"]
    raw_id_fields = ["user"]
    show_full_result_count = False


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ["rater", "movie", "rating", "rated_at"]
    list_filter = ["rating", ("rater__user", admin.EmptyFieldListFilter)]
    search_fields = ["movie__title", "=rater__movielens_id", "rater__user__username"]
    raw_id_fields = ["rater", "movie"]
    list_select_related = ["rater", "movie"]
    show_full_result_count = False


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["tag", "movie", "rater", "tagged_at"]
    search_fields = ["tag", "movie__title"]
    raw_id_fields = ["rater", "movie"]
    list_select_related = ["rater", "movie"]
    show_full_result_count = False


@admin.register(DatasetImport)
class DatasetImportAdmin(admin.ModelAdmin):
    list_display = ["name", "format", "movies", "ratings", "users", "tags", "seconds", "imported_at"]
    list_filter = ["format", "name"]
    search_fields = ["name", "source"]
    readonly_fields = [field.name for field in DatasetImport._meta.fields]


@admin.register(WatchlistEntry)
class WatchlistEntryAdmin(admin.ModelAdmin):
    list_display = ["user", "movie", "added_at"]
    search_fields = ["user__username", "movie__title", "=movie__id"]
    raw_id_fields = ["user", "movie"]
    list_select_related = ["user", "movie"]
