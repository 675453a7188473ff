"""Free-text feedback turned into aspect signals."""

from __future__ import annotations

import pytest

from training.ml.text import Signal, TextAnalysis, TextAnalyzer

CATALOGUE = [
    (1, "Toy Story (1995)"),
    (2571, "Matrix, The (1999)"),
    (68954, "Up (2009)"),
    (6, "Heat (1995)"),
    (1214, "Alien (1979)"),
    (166643, "It (2017)"),
    (260, "Star Wars: Episode IV - A New Hope (1977)"),
    (4886, "Monsters, Inc. (2001)"),
]
TAGS = ["dark comedy", "twist ending", "atmospheric", "time travel", "superhero", "good"]


@pytest.fixture(scope="module")
def analyzer() -> TextAnalyzer:
    return TextAnalyzer(titles=CATALOGUE, tags=TAGS)


def sign(polarity: float) -> str:
    return "+" if polarity > 0 else "-" if polarity < 0 else "0"


def summary(analysis: TextAnalysis) -> set[tuple[str, str, str]]:
    return {(s.aspect, s.value, sign(s.polarity)) for s in analysis.signals}


# (text, expected signals as (aspect, value, sign of polarity); "0" is a neutral mention)
CASES: list[tuple[str, set[tuple[str, str, str]]]] = [
    # quantity and negation
    ("left has too many horror films", {("genre", "Horror", "-")}),
    ("not a fan of horror", {("genre", "Horror", "-")}),
    ("I don't like westerns", {("genre", "Western", "-")}),
    ("no more horror please", {("genre", "Horror", "-")}),
    ("never show me westerns again", {("genre", "Western", "-")}),
    ("something without gore would be nice", {("genre", "Horror", "-")}),
    ("no horror", {("genre", "Horror", "-")}),
    ("I'm not into musicals", {("genre", "Musical", "-")}),
    ("can't stand musicals", {("genre", "Musical", "-")}),
    ("I don't mind horror", {("genre", "Horror", "+")}),
    ("not enough comedies", {("genre", "Comedy", "+")}),
    ("don't want more horror", {("genre", "Horror", "-")}),
    ("the horror was way too much", {("genre", "Horror", "-")}),
    ("too scary for me", {("genre", "Horror", "-")}),
    # contrast and clauses: each aspect takes its own clause's polarity
    ("loved the comedies but too many horror films", {("genre", "Comedy", "+"), ("genre", "Horror", "-")}),
    ("I love comedies and hate horror", {("genre", "Comedy", "+"), ("genre", "Horror", "-")}),
    ("the comedies were great, the horror was boring", {("genre", "Comedy", "+"), ("genre", "Horror", "-")}),
    ("all great except the horror", {("overall", "list", "+"), ("genre", "Horror", "-")}),
    ("kids movies are fine but not cartoons", {("genre", "Children", "+"), ("genre", "Animation", "-")}),
    ("Great list, though a bit too much horror.", {("overall", "list", "+"), ("genre", "Horror", "-")}),
    # several genres, spellings
    ("I love rom-coms", {("genre", "Romance", "+"), ("genre", "Comedy", "+")}),
    ("more action and adventure please", {("genre", "Action", "+"), ("genre", "Adventure", "+")}),
    (
        "too many horror, thriller and war movies",
        {("genre", "Horror", "-"), ("genre", "Thriller", "-"), ("genre", "War", "-")},
    ),
    ("less action, more drama", {("genre", "Action", "-"), ("genre", "Drama", "+")}),
    ("science fiction is my favourite", {("genre", "Sci-Fi", "+")}),
    ("loved the docs", {("genre", "Documentary", "+")}),
    ("noir please", {("genre", "Film-Noir", "+")}),
    ("animated movies are great", {("genre", "Animation", "+")}),
    ("Westerns, please!", {("genre", "Western", "+")}),
    ("scary movies are the best", {("genre", "Horror", "+")}),
    ("sick of superhero movies", {("genre", "Action", "-"), ("tag", "superhero", "-")}),
    # decades
    ("more 80s sci-fi please", {("decade", "1980s", "+"), ("genre", "Sci-Fi", "+")}),
    ("the nineties were great", {("decade", "1990s", "+")}),
    ("I'm tired of '90s stuff", {("decade", "1990s", "-")}),
    ("give me 1970s horror", {("decade", "1970s", "+"), ("genre", "Horror", "+")}),
    ("too many old movies", {("decade", "old", "-")}),
    ("classics please", {("decade", "old", "+")}),
    (
        "Toy Story and Alien are classics",
        {("title", "1", "+"), ("title", "1214", "+"), ("decade", "old", "+")},
    ),
    ("more recent stuff please", {("decade", "recent", "+")}),
    # titles
    ("Toy Story is a classic", {("title", "1", "+")}),
    ("the Matrix was amazing", {("title", "2571", "+")}),
    ("I loved Up", {("title", "68954", "+")}),
    ("Up was great", {("overall", "list", "+")}),
    ("things heat up quickly", set()),
    ("I loved 'Heat'", {("title", "6", "+")}),
    ("Toy Story is funny", {("title", "1", "+"), ("genre", "Comedy", "+")}),
    (
        "Toy Story, the Matrix and Alien were great",
        {("title", "1", "+"), ("title", "2571", "+"), ("title", "1214", "+")},
    ),
    ("too many movies like Alien", {("title", "1214", "-")}),
    ("It was great", {("overall", "list", "+")}),
    ("star wars was great", {("title", "260", "+")}),
    ("Monsters, Inc. bored me", {("title", "4886", "-")}),
    # tags
    (
        "I'd like more dark comedy with a twist ending",
        {("tag", "dark comedy", "+"), ("tag", "twist ending", "+"), ("genre", "Comedy", "+")},
    ),
    ("too much time travel", {("tag", "time travel", "-")}),
    ("atmospheric stuff please", {("tag", "atmospheric", "+")}),
    ("good picks", {("overall", "list", "+")}),  # "good" is a judgement, not a tag
    # popularity
    ("too mainstream", {("popularity", "popular", "-")}),
    ("too popular", {("popularity", "popular", "-")}),
    ("I want more obscure stuff", {("popularity", "niche", "+")}),
    ("hidden gems please", {("popularity", "niche", "+")}),
    # a request after a complaint keeps its own direction instead of inheriting the complaint's
    (
        "too mainstream, show me some hidden gems",
        {("popularity", "popular", "-"), ("popularity", "niche", "+")},
    ),
    ("in the mood for a 90s comedy", {("decade", "1990s", "+"), ("genre", "Comedy", "+")}),
    ("looking for horror, not romance", {("genre", "Horror", "+"), ("genre", "Romance", "-")}),
    ("fewer blockbusters, more indie films", {("popularity", "popular", "-"), ("popularity", "niche", "+")}),
    # intensity
    ("way too many horror films", {("genre", "Horror", "-")}),
    ("really loved the documentaries", {("genre", "Documentary", "+")}),
    # the list as a whole
    ("great picks", {("overall", "list", "+")}),
    ("all terrible", {("overall", "list", "-")}),
    ("nothing here", {("overall", "list", "-")}),
    ("None of these appeal to me", {("overall", "list", "-")}),
    ("meh", {("overall", "list", "-")}),
    # neutral mentions and no signal at all
    ("the left one has comedies", {("genre", "Comedy", "0")}),
    ("80's and 90's action", {("decade", "1980s", "0"), ("decade", "1990s", "0"), ("genre", "Action", "0")}),
    ("ok", set()),
    ("asdf", set()),
    ("", set()),
    ("   \n\t ", set()),
    ("😀🎬", set()),
    ("the left one", set()),
    ("thanks", set()),
    ("Nothing to add.", set()),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[text or "<empty>" for text, _ in CASES])
def test_it_extracts_the_expected_signals(analyzer, text, expected):
    assert summary(analyzer.analyze(text)) == expected


def test_the_table_covers_at_least_forty_sentences():
    assert len(CASES) >= 40


@pytest.mark.parametrize("text", [text for text, _ in CASES])
def test_every_polarity_lies_between_minus_one_and_one(analyzer, text):
    analysis = analyzer.analyze(text)
    assert all(-1.0 <= signal.polarity <= 1.0 for signal in analysis.signals)
    assert -1.0 <= analysis.sentiment <= 1.0


def polarity(analyzer: TextAnalyzer, text: str, aspect: str, value: str) -> float:
    (signal,) = [s for s in analyzer.analyze(text).signals if (s.aspect, s.value) == (aspect, value)]
    return signal.polarity


def test_an_intensifier_strengthens_the_cue(analyzer):
    plain = polarity(analyzer, "too many horror films", "genre", "Horror")
    intensified = polarity(analyzer, "way too many horror films", "genre", "Horror")
    assert intensified < plain < 0


def test_a_negated_liking_is_milder_than_its_opposite(analyzer):
    negated = polarity(analyzer, "I don't love horror", "genre", "Horror")
    opposite = polarity(analyzer, "I hate horror", "genre", "Horror")
    assert opposite < negated < 0


def test_duplicates_keep_the_strongest_polarity(analyzer):
    analysis = analyzer.analyze("horror is ok, but I really love horror")
    horror = [s for s in analysis.signals if s.value == "Horror"]
    assert len(horror) == 1
    assert horror[0].polarity == 1.0


def test_a_title_signal_carries_the_movie_id_and_the_words_matched(analyzer):
    (signal,) = analyzer.analyze("The Matrix was amazing").signals
    assert signal == Signal(aspect="title", value="2571", polarity=signal.polarity, span="The Matrix")


def test_spans_quote_the_original_words(analyzer):
    signals = analyzer.analyze("Way too many HORROR flicks").signals
    assert [(s.value, s.span) for s in signals] == [("Horror", "HORROR flicks")]


def test_analysis_reports_the_normalised_text_tokens_and_sentiment(analyzer):
    analysis = analyzer.analyze("  Loved   the COMEDIES!  ")
    assert analysis.text == "  Loved   the COMEDIES!  "
    assert analysis.normalised == "loved the comedies!"
    assert analysis.tokens == ["loved", "the", "comedies"]
    assert analysis.sentiment > 0


def test_analysis_as_dict_is_plain_data(analyzer):
    data = analyzer.analyze("not a fan of horror").as_dict()
    assert set(data) == {"text", "normalised", "tokens", "sentiment", "signals"}
    assert data["signals"] == [
        {"aspect": "genre", "value": "Horror", "polarity": data["signals"][0]["polarity"], "span": "horror"}
    ]


def test_signals_are_immutable():
    signal = Signal(aspect="genre", value="Horror", polarity=-0.6, span="horror")
    with pytest.raises(AttributeError):
        signal.polarity = 0.5  # type: ignore[misc]


def test_empty_text_gives_an_empty_analysis(analyzer):
    analysis = analyzer.analyze("")
    assert (analysis.tokens, analysis.sentiment, analysis.signals) == ([], 0.0, [])


@pytest.mark.parametrize("value", [None, 42, b"too many horror films", ["horror"]])
def test_it_rejects_text_that_is_not_a_string(analyzer, value):
    with pytest.raises(TypeError):
        analyzer.analyze(value)


def test_an_analyzer_without_catalogue_or_tags_still_reads_genres():
    analysis = TextAnalyzer().analyze("not a fan of horror")
    assert summary(analysis) == {("genre", "Horror", "-")}
