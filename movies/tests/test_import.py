"""manage.py import_movielens: every release format, all-or-nothing validation, re-imports."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection

from movies.importers import bulk, services
from movies.models import DatasetImport, Genre, Movie, Rater, Rating, Tag
from movies.services import rating_set

pytestmark = pytest.mark.django_db

CSV_FILES: dict[str, list[str]] = {
    "movies.csv": [
        "movieId,title,genres",
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
        '2,"American President, The (1995)",Comedy|Drama|Romance',
        "3,Babylon 5,Sci-Fi",
        "4,Death Note: Desu nôto (2006\u20132007),(no genres listed)",
    ],
    "ratings.csv": [
        "userId,movieId,rating,timestamp",
        "1,1,4.0,964982703",
        "1,2,3.5,964981247",
        "2,1,5.0,1445714994",
        "2,3,0.5,1445715000",
        "3,4,2.5,1500000000",
    ],
    "tags.csv": [
        "userId,movieId,tag,timestamp",
        "2,1,funny,1445714994",
        '4,2,"politics, drama",1445714996',
    ],
    "links.csv": [
        "movieId,imdbId,tmdbId",
        "1,0114709,862",
        "2,0112346,9087",
        "3,0105946,",
        "4,0877057,13916",
    ],
}

ML_1M_FILES: dict[str, list[str]] = {
    "movies.dat": [
        "1::Toy Story (1995)::Animation|Children's|Comedy",
        "2::Jumanji (1995)::Adventure|Children's|Fantasy",
        "3::Ménage (Tenue de soirée) (1986)::Comedy|Drama",
    ],
    "ratings.dat": ["1::1::5::978300760", "1::2::3::978302109", "2::3::4::978301968"],
    "users.dat": ["1::F::1::10::48067", "2::M::56::16::70072"],
}

ML_10M_FILES: dict[str, list[str]] = {
    "movies.dat": ["1::Toy Story (1995)::Animation|Children|Comedy", "2::Heat (1995)::Action|Crime|Thriller"],
    "ratings.dat": ["15::1::4.5::1215184630", "20::2::3::1215184631"],
    "tags.dat": ["15::1::excellent!::1215184630", "21::2::tag with :: inside::1215184632"],
}


def _u_item_line(movie_id: int, title: str, release_date: str, genres: set[int]) -> str:
    flags = "|".join("1" if index in genres else "0" for index in range(19))
    return f"{movie_id}|{title}|{release_date}||http://us.imdb.com/M/title-exact?x|{flags}"


ML_100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip

ML_100K_FILES: dict[str, list[str]] = {
    "u.genre": [f"{name}|{index}" for index, name in enumerate(ML_100K_GENRES)] + [""],
    "u.item": [
        _u_item_line(1, "Toy Story (1995)", "01-Jan-1995", {3, 4, 5}),
        _u_item_line(2, "Kolya", "24-Jan-1997", {5}),
        _u_item_line(267, "unknown", "", {0}),
    ],
    "u.data": ["1\t1\t5\t874965758", "1\t2\t3\t876893171", "2\t267\t1\t878542960"],
    "u.user": ["1|24|M|technician|85711", "2|53|F|other|94043"],
}


def write_release(
    folder: Path, files: dict[str, list[str] | bytes], *, newline: str = "\n", encoding: str = "utf-8"
) -> Path:
    folder.mkdir(parents=True)
    for name, content in files.items():
        data = content if isinstance(content, bytes) else (newline.join(content) + newline).encode(encoding)
        (folder / name).write_bytes(data)
    return folder


def import_release(path: Path, *options: str) -> str:
    out = StringIO()
    call_command("import_movielens", str(path), "--no-progress", *options, stdout=out)
    return out.getvalue()


def database_state() -> dict[str, object]:
    """Everything an import may change, without primary keys that a re-import may renumber."""
    return {
        "genres": sorted(Genre.objects.values_list("name", flat=True)),
        "movies": list(
            Movie.objects.order_by("id").values_list(
                "id", "title", "year", "imdb_id", "tmdb_id", "num_ratings", "avg_rating"
            )
        ),
        "movie_genres": sorted(Movie.genres.through.objects.values_list("movie_id", "genre__name")),
        "raters": sorted(
            Rater.objects.values_list(
                "movielens_id", "user__username", "gender", "age", "occupation", "zip_code"
            ),
            key=str,
        ),
        "ratings": sorted(
            Rating.objects.values_list(
                "rater__movielens_id", "rater__user__username", "movie_id", "rating", "rated_at"
            ),
            key=str,
        ),
        "tags": sorted(
            Tag.objects.values_list("rater__movielens_id", "movie_id", "tag", "tagged_at"), key=str
        ),
        "imports": list(DatasetImport.objects.order_by("id").values_list("name", "fingerprint")),
        "accounts": get_user_model().objects.count(),
    }


def rating_constraints() -> dict[str, dict]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, Rating._meta.db_table)


# --- Formats ---------------------------------------------------------------------------------------


def test_it_imports_a_csv_release_with_titles_years_genres_and_links(tmp_path):
    output = import_release(write_release(tmp_path / "ml-test", CSV_FILES))

    assert "Imported ml-test (csv): 4 movies, 5 ratings, 2 tags, 4 users" in output
    assert "ratings/s" in output
    assert list(Movie.objects.order_by("id").values_list("id", "title", "year", "imdb_id", "tmdb_id")) == [
        (1, "Toy Story", 1995, "0114709", 862),
        (2, "American President, The", 1995, "0112346", 9087),
        (3, "Babylon 5", None, "0105946", None),
        (4, "Death Note: Desu nôto", 2006, "0877057", 13916),
    ]
    assert sorted(Movie.objects.get(id=1).genres.values_list("name", flat=True)) == [
        "Adventure", "Animation", "Children", "Comedy", "Fantasy",
    ]  # fmt: skip
    assert not Movie.objects.get(id=4).genres.exists()
    assert not Genre.objects.filter(name="(no genres listed)").exists()


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_it_reads_ratings_and_tags_with_aware_utc_timestamps(tmp_path, newline):
    import_release(write_release(tmp_path / "ml-test", CSV_FILES, newline=newline))

    rating = Rating.objects.get(rater__movielens_id=1, movie_id=1)
    assert rating.rating == 4.0
    assert rating.rated_at == datetime.fromtimestamp(964982703, tz=UTC)
    assert rating.rated_at.utcoffset().total_seconds() == 0
    tag = Tag.objects.get(rater__movielens_id=4)
    assert (tag.movie_id, tag.tag, tag.tagged_at) == (
        2,
        "politics, drama",
        datetime.fromtimestamp(1445714996, tz=UTC),
    )
    assert Rating.objects.filter(rated_at__gte=datetime(2015, 10, 24, 19, 29, 54, tzinfo=UTC)).count() == 3


def test_it_refreshes_each_movies_rating_count_and_average(tmp_path):
    import_release(write_release(tmp_path / "ml-test", CSV_FILES))

    stats = dict(Movie.objects.values_list("id", "num_ratings"))
    assert stats == {1: 2, 2: 1, 3: 1, 4: 1}
    assert Movie.objects.get(id=1).avg_rating == pytest.approx(4.5)


def test_it_records_the_import_with_its_fingerprint_and_counts(tmp_path):
    import_release(write_release(tmp_path / "ml-test", CSV_FILES))

    record = DatasetImport.objects.get()
    assert (record.name, record.format, record.movies, record.ratings, record.tags, record.users) == (
        "ml-test", "csv", 4, 5, 2, 4,
    )  # fmt: skip
    assert len(record.fingerprint) == 64 and record.seconds > 0
    assert record.source.endswith("ml-test")


def test_it_imports_dataset_users_as_raters_and_never_as_accounts(tmp_path):
    accounts = get_user_model().objects.count()

    import_release(write_release(tmp_path / "ml-test", CSV_FILES))

    assert get_user_model().objects.count() == accounts
    assert sorted(Rater.objects.values_list("movielens_id", flat=True)) == [1, 2, 3, 4]  # 4 only tagged
    assert not Rater.objects.filter(movielens_id__isnull=False, user__isnull=False).exists()


def test_it_imports_an_ml_1m_release_with_latin_1_titles_and_demographics(tmp_path):
    output = import_release(write_release(tmp_path / "ml-1m", ML_1M_FILES, encoding="latin-1"))

    assert "Imported ml-1m (dat): 3 movies, 3 ratings, 0 tags, 2 users" in output
    movie = Movie.objects.get(id=3)
    assert (movie.title, movie.year) == ("Ménage (Tenue de soirée)", 1986)
    assert sorted(movie.genres.values_list("name", flat=True)) == ["Comedy", "Drama"]
    assert list(
        Rater.objects.order_by("movielens_id").values_list("gender", "age", "occupation", "zip_code")
    ) == [
        ("F", 1, "K-12 student", "48067"),
        ("M", 56, "self-employed", "70072"),
    ]
    assert Rating.objects.get(rater__movielens_id=1, movie_id=1).rated_at == datetime.fromtimestamp(
        978300760, tz=UTC
    )


def test_it_imports_ml_10m_tags_even_with_the_separator_inside_a_tag(tmp_path):
    import_release(write_release(tmp_path / "ml-10M100K", ML_10M_FILES, encoding="latin-1"))

    assert sorted(Tag.objects.values_list("rater__movielens_id", "tag")) == [
        (15, "excellent!"),
        (21, "tag with :: inside"),
    ]
    assert Rating.objects.get(rater__movielens_id=15).rating == 4.5
    assert DatasetImport.objects.get().name == "ml-10M100K"


def test_it_imports_an_ml_100k_release_with_genre_flags_release_years_and_demographics(tmp_path):
    output = import_release(write_release(tmp_path / "ml-100k", ML_100K_FILES, encoding="latin-1"))

    assert "Imported ml-100k (100k): 3 movies, 3 ratings, 0 tags, 2 users" in output
    assert list(Movie.objects.order_by("id").values_list("id", "title", "year")) == [
        (1, "Toy Story", 1995),
        (2, "Kolya", 1997),  # no year in the title: the release date's
        (267, "unknown", None),
    ]
    assert sorted(Movie.objects.get(id=1).genres.values_list("name", flat=True)) == [
        "Animation",
        "Children's",
        "Comedy",
    ]
    assert not Movie.objects.get(id=267).genres.exists()  # the "unknown" flag is no genre
    assert list(
        Rater.objects.order_by("movielens_id").values_list("age", "gender", "occupation", "zip_code")
    ) == [
        (24, "M", "technician", "85711"),
        (53, "F", "other", "94043"),
    ]
    assert Rating.objects.get(rater__movielens_id=2).rated_at == datetime.fromtimestamp(878542960, tz=UTC)


def test_it_imports_a_release_from_its_zip(tmp_path):
    folder = write_release(tmp_path / "unpacked" / "ml-zipped", CSV_FILES)
    archive = tmp_path / "ml-zipped.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for file in sorted(folder.iterdir()):
            zipped.write(file, f"ml-zipped/{file.name}")

    output = import_release(archive)

    assert "Imported ml-zipped (csv): 4 movies, 5 ratings, 2 tags, 4 users" in output
    record = DatasetImport.objects.get()
    assert record.source == str(archive)
    # The same files give the same fingerprint, zipped or not.
    from movies.importers.sources import release_source_open

    assert record.fingerprint == release_source_open(path=folder).fingerprint()


@pytest.mark.django_db(transaction=True)  # the real commit path, as manage.py runs it
def test_it_imports_the_bundled_ml_latest_small(tmp_path):
    output = import_release(settings.BUNDLED_DATASET_DIR)

    assert "9,742 movies, 100,836 ratings, 3,683 tags, 610 users" in output
    assert (Movie.objects.count(), Rating.objects.count(), Rater.objects.count(), Tag.objects.count()) == (
        9742, 100836, 610, 3683,
    )  # fmt: skip
    toy_story = Movie.objects.get(id=1)
    assert (toy_story.title, toy_story.year, toy_story.imdb_id, toy_story.tmdb_id) == (
        "Toy Story",
        1995,
        "0114709",
        862,
    )
    assert toy_story.num_ratings == Rating.objects.filter(movie_id=1).count() == 215


# --- Re-imports --------------------------------------------------------------------------------------


def test_reimporting_the_same_release_leaves_the_same_state(tmp_path):
    release = write_release(tmp_path / "ml-test", CSV_FILES)
    import_release(release)
    first = database_state()
    rater_pks = dict(Rater.objects.values_list("movielens_id", "id"))

    import_release(release)

    second = database_state()
    assert second.pop("imports") == first.pop("imports") * 2
    assert second == first
    assert dict(Rater.objects.values_list("movielens_id", "id")) == rater_pks


def test_a_site_accounts_rating_survives_a_reimport_and_counts_in_the_movie_stats(tmp_path, alice):
    release = write_release(tmp_path / "ml-test", CSV_FILES)
    import_release(release)
    rating_set(user=alice, movie_id=3, value=4.5)

    import_release(release)

    assert Rating.objects.get(rater__user=alice).rating == 4.5
    movie = Movie.objects.get(id=3)
    assert (movie.num_ratings, movie.avg_rating) == (2, pytest.approx(2.5))


def test_a_different_release_needs_replace(tmp_path, alice):
    import_release(write_release(tmp_path / "ml-test", CSV_FILES))
    rating_set(user=alice, movie_id=2, value=3.0)
    before = database_state()
    other = write_release(tmp_path / "ml-1m", ML_1M_FILES, encoding="latin-1")

    with pytest.raises(CommandError, match=r"holds the release 'ml-test'.*--replace"):
        import_release(other)

    assert database_state() == before


def test_replace_swaps_the_dataset_users_and_keeps_movies_site_accounts_rated(tmp_path, alice):
    import_release(write_release(tmp_path / "ml-test", CSV_FILES))
    rating_set(user=alice, movie_id=4, value=3.0)  # movie 4 is not in ml-1m

    output = import_release(write_release(tmp_path / "ml-1m", ML_1M_FILES, encoding="latin-1"), "--replace")

    assert "Imported ml-1m (dat)" in output
    assert sorted(Movie.objects.values_list("id", flat=True)) == [1, 2, 3, 4]
    assert Movie.objects.get(id=3).title == "Ménage (Tenue de soirée)"
    # ml-1m's user 1 is not ml-test's user 1: the old dataset users went, with their ratings and tags.
    assert list(
        Rater.objects.filter(movielens_id__isnull=False).values_list("movielens_id", "occupation")
    ) == [
        (1, "K-12 student"),
        (2, "self-employed"),
    ]
    assert not Tag.objects.exists()
    assert Rating.objects.filter(rater__movielens_id__isnull=False).count() == 3
    assert Rating.objects.get(rater__user=alice).movie_id == 4
    assert (Movie.objects.get(id=4).num_ratings, Movie.objects.get(id=1).num_ratings) == (1, 1)


# --- All or nothing ----------------------------------------------------------------------------------

MALFORMED_CSV = [
    ("a row with a missing field", "ratings.csv", ["userId,movieId,rating,timestamp", "1,1,4.0,964982703", "1,2,3.5"], "ratings.csv, line 3"),
    ("a row with an extra field", "ratings.csv", ["userId,movieId,rating,timestamp", "1,1,4.0,964982703,7"], "ratings.csv, line 2"),
    ("a non-numeric user id", "ratings.csv", ["userId,movieId,rating,timestamp", "1,1,4.0,9", "x,1,4.0,9"], "ratings.csv, line 3: user id 'x'"),
    ("an unparsable timestamp", "ratings.csv", ["userId,movieId,rating,timestamp", "1,1,4.0,yesterday"], "ratings.csv, line 2: timestamp"),
    ("an unknown movie id", "ratings.csv", ["userId,movieId,rating,timestamp", "1,1,4.0,9", "1,99,4.0,9"], "ratings.csv, line 3: movie id 99 is not in movies.csv"),
    ("a rating above five", "ratings.csv", ["userId,movieId,rating,timestamp", "1,1,5.5,9"], "ratings.csv, line 2: rating 5.5 is outside 0.5..5"),
    ("a rating of zero", "ratings.csv", ["userId,movieId,rating,timestamp", "1,1,4,9", "1,2,0,9"], "ratings.csv, line 3: rating 0 is outside"),
    ("a rating off the half-star grid", "ratings.csv", ["userId,movieId,rating,timestamp", "1,1,3.3,9"], "ratings.csv, line 2: rating 3.3 is not a multiple of 0.5"),
    ("a duplicate rating", "ratings.csv", ["userId,movieId,rating,timestamp", "2,1,4,9", "1,1,4,9", "1,2,4,9", "1,1,3,9"], "ratings.csv, line 5: user 1 rates movie 1 a second time (first on line 3)"),
    ("an unknown movie in a tag", "tags.csv", ["userId,movieId,tag,timestamp", "1,77,funny,9"], "tags.csv, line 2: movie id 77 is not in movies.csv"),
    ("a wrong header", "ratings.csv", ["user,movie,rating,timestamp", "1,1,4,9"], "ratings.csv, line 1: expected the header"),
    ("a NUL character in a tag", "tags.csv", ["userId,movieId,tag,timestamp", "1,1,funny,9", "1,2,fun\x00ny,9"], "tags.csv, line 3: the tag contains a NUL character (byte 0x00)"),
    ("a 200,000-character title", "movies.csv", [*CSV_FILES["movies.csv"], "5," + "y" * 200_000 + ",Drama"], "movies.csv, line 6: the title is longer than 512 characters"),
    ("a 200,000-character user id", "ratings.csv", ["userId,movieId,rating,timestamp", "1,1,4,9", "1" * 200_000 + ",1,4,9"], "ratings.csv, line 3: user id '1111111111111111111111111111111111111111'... (200,000 characters) is out of range"),
    ("a rating of NaN", "ratings.csv", ["userId,movieId,rating,timestamp", "1,1,4,9", "1,2,NaN,9"], "ratings.csv, line 3: rating 'NaN' is not a finite number"),
    ("a duplicate movie after a title spanning two lines", "movies.csv", ["movieId,title,genres", '1,"Two', 'Lines (1995)",Drama', "2,Heat (1995),Action", "1,Again (1999),Drama"], "movies.csv, line 5: movie id 1 appears twice (first on line 2)"),
]  # fmt: skip


@pytest.fixture
def existing_data(tmp_path, alice):
    """A release already imported under the same name, plus a site account's rating."""
    import_release(write_release(tmp_path / "before" / "ml-test", CSV_FILES))
    rating_set(user=alice, movie_id=1, value=2.0)
    return database_state()


@pytest.mark.parametrize(
    ("case", "filename", "lines", "message"), MALFORMED_CSV, ids=[case[0] for case in MALFORMED_CSV]
)
def test_a_malformed_csv_release_is_rejected_naming_file_and_line_and_changes_nothing(
    tmp_path, existing_data, case, filename, lines, message
):
    release = write_release(tmp_path / "ml-test", {**CSV_FILES, filename: lines})

    with pytest.raises(CommandError) as raised:
        import_release(release)

    assert message in str(raised.value)
    assert database_state() == existing_data


def test_invalid_utf_8_in_a_csv_release_is_rejected_naming_the_line(tmp_path, existing_data):
    movies = "\n".join(CSV_FILES["movies.csv"][:3]).encode() + "\n5,Ménage (1986),Comedy\n".encode("latin-1")
    release = write_release(tmp_path / "ml-test", {**CSV_FILES, "movies.csv": movies})

    with pytest.raises(
        CommandError, match=r"movies\.csv, line 4: is not valid UTF-8 \(byte 0xe9 at column 4\)"
    ):
        import_release(release)

    assert database_state() == existing_data


def test_a_nul_character_in_a_dat_title_is_rejected_naming_file_and_line(tmp_path):
    files = {**ML_1M_FILES, "movies.dat": [*ML_1M_FILES["movies.dat"], "4::Null\x00 (1999)::Drama"]}

    with pytest.raises(CommandError, match=r"movies\.dat, line 4: the title contains a NUL character"):
        import_release(write_release(tmp_path / "ml-1m", files, encoding="latin-1"))

    assert not Movie.objects.exists()


def test_a_malformed_dat_release_is_rejected_naming_file_and_line(tmp_path):
    files = {**ML_1M_FILES, "ratings.dat": ["1::1::5::978300760", "1::2::3"]}

    with pytest.raises(CommandError, match=r"ratings\.dat, line 2: expected 4 '::'-separated fields"):
        import_release(write_release(tmp_path / "ml-1m", files, encoding="latin-1"))

    assert not Movie.objects.exists() and not DatasetImport.objects.exists()


def test_an_ml_100k_rating_out_of_range_is_rejected_naming_file_and_line(tmp_path):
    files = {**ML_100K_FILES, "u.data": ["1\t1\t5\t874965758", "1\t2\t6\t876893171"]}

    with pytest.raises(CommandError, match=r"u\.data, line 2: rating 6 is outside 0\.5\.\.5"):
        import_release(write_release(tmp_path / "ml-100k", files, encoding="latin-1"))

    assert not Movie.objects.exists()


def test_a_failure_while_writing_rolls_back_everything_including_dropped_indexes(
    tmp_path, existing_data, monkeypatch
):
    monkeypatch.setattr(bulk, "INDEX_REBUILD_MIN_ROWS", 1)
    constraints = rating_constraints()

    def fail() -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "movie_stats_refresh", fail)
    changed = {**CSV_FILES, "ratings.csv": [*CSV_FILES["ratings.csv"], "3,1,1.0,1500000001"]}

    with pytest.raises(RuntimeError, match="disk full"):
        import_release(write_release(tmp_path / "ml-test", changed))

    assert database_state() == existing_data
    assert rating_constraints() == constraints


def test_a_large_import_recreates_exactly_the_indexes_and_constraints_it_dropped(
    tmp_path, alice, monkeypatch
):
    release = write_release(tmp_path / "ml-test", CSV_FILES)
    import_release(release)
    rating_set(user=alice, movie_id=1, value=4.0)  # leaves a deferred foreign-key check pending on PostgreSQL
    constraints = rating_constraints()
    monkeypatch.setattr(bulk, "INDEX_REBUILD_MIN_ROWS", 1)

    import_release(release)

    assert rating_constraints() == constraints
    assert Rating.objects.count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_dangling_reference_written_during_the_import_is_caught_before_commit(tmp_path, monkeypatch):
    write_ratings = services._ratings_write

    def write_ratings_and_one_for_a_missing_movie(**kwargs) -> None:
        write_ratings(**kwargs)
        Rating.objects.bulk_create(
            [Rating(rater=Rater.objects.first(), movie_id=999_999, rating=3.0, rated_at=datetime.now(tz=UTC))]
        )

    monkeypatch.setattr(services, "_ratings_write", write_ratings_and_one_for_a_missing_movie)

    with pytest.raises(IntegrityError):
        import_release(write_release(tmp_path / "ml-test", CSV_FILES))

    assert not Movie.objects.exists() and not Rating.objects.exists() and not DatasetImport.objects.exists()


def test_the_command_rejects_a_folder_without_a_release(tmp_path):
    (tmp_path / "empty").mkdir()

    with pytest.raises(CommandError, match="no MovieLens release found"):
        import_release(tmp_path / "empty")
