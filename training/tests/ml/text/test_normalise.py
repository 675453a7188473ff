"""Clean-up and tokenisation of feedback text."""

from __future__ import annotations

import pytest

from training.ml.text.normalise import MAX_CHARS, clean, match_key, normalise, tokenise, words


def test_it_applies_nfkc_so_fullwidth_letters_and_ligatures_become_plain():
    fullwidth_horror = "\uff28\uff2f\uff32\uff32\uff2f\uff32"
    assert normalise(f"{fullwidth_horror} \ufb01lms") == "horror films"


def test_it_straightens_curly_quotes_and_apostrophes():
    assert clean("I don\u2019t like \u201cUp\u201d") == 'I don\'t like "Up"'


def test_it_drops_control_and_zero_width_characters():
    assert clean("too\x00 many\u200b horror\x07 films") == "too many horror films"


def test_it_collapses_whitespace_including_newlines_and_tabs():
    assert clean("  loved \n\n the\tcomedies   ") == "loved the comedies"


def test_it_caps_the_length():
    assert len(clean("horror " * 1000)) <= MAX_CHARS


def test_normalise_lowercases_but_clean_keeps_case_for_title_detection():
    assert clean("I loved Up") == "I loved Up"
    assert normalise("I loved Up") == "i loved up"


@pytest.mark.parametrize("value", [None, 42, b"horror", ["horror"]])
def test_it_rejects_text_that_is_not_a_string(value):
    with pytest.raises(TypeError):
        clean(value)


def test_tokens_keep_apostrophes_and_hyphens():
    assert words("Don't like sci-fi, rom-coms or kid-friendly stuff!") == [
        "don't",
        "like",
        "sci-fi",
        "rom-coms",
        "or",
        "kid-friendly",
        "stuff",
    ]


def test_tokens_keep_a_leading_apostrophe_only_before_a_decade():
    assert words("'80s and 80's, but 'Up' is quoted") == ["'80s", "and", "80's", "but", "up", "is", "quoted"]


def test_tokens_drop_punctuation_and_emoji():
    assert words("great!!! 😀 picks...") == ["great", "picks"]
    assert words("😀🎬") == []


def test_tokens_carry_their_offsets_into_the_cleaned_text():
    text = clean("loved  'Heat'")
    (loved, heat) = tokenise(text)
    assert text[heat.start : heat.end] == "Heat"
    assert (loved.text, heat.text) == ("loved", "Heat")


def test_match_keys_drop_case_apostrophes_and_accents():
    assert match_key("Don't") == "dont"
    assert match_key("Amélie") == "amelie"
    assert match_key("'80s") == "80s"
