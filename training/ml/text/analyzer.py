"""Turn free-text feedback on recommendation lists into signed aspect signals.

Pipeline, for one text:

1. Clean (NFKC, straight quotes, no control characters, collapsed whitespace, at most
   `normalise.MAX_CHARS` characters) and tokenise; matching uses lowercase, accent- and
   apostrophe-free word keys.
2. Titles are found first, over the whole text, longest match first (rules in `titles`); their
   words are not read as genres, tags, cues or clause breaks ("Anything But Love").
3. Clauses: the text is split at `. , ; ! ?` and at the contrast words but / however / although /
   though / yet / whereas (and "except", which also flips, see 7). A clause is split again at
   and / or / plus / while when both halves carry their own sentiment word or cue ("I love
   comedies and hate horror", but not "too many horror and thriller films"). A clause made only
   of courtesy words joins the one before ("Westerns, please!").
4. Aspects in each clause: `genre` (MovieLens genres with common spellings), `decade` ("80s",
   "'80s", "1980s", "eighties"; era words give "old" or "recent"), `popularity` ("popular" or
   "niche"), `tag` (the caller's vocabulary; tags that are plain judgements such as "good" or
   "boring" are skipped) and `title`. Within an aspect the longest phrase wins; a title hides
   everything inside it; a tag and a genre may share words ("dark comedy" gives both). A head
   noun right after an aspect joins its span ("horror flicks"); "old" / "new" / "classic" count as
   eras only next to one or after a degree word ("old movies", "too old", "something newer").
5. Base sentiment: VADER's compound score for the clause with every aspect phrase replaced by a
   neutral word, so "horror" or "war" do not read as negative and "romance" not as positive
   (|compound| < 0.05 counts as 0). Aspect words that also judge ("funny", "classics") stay
   visible. VADER gets a few domain words (`lexicon.VADER_DOMAIN_WORDS`): "a classic" and "a gem"
   praise, "ok", "please" and "thanks" are neutral.
6. Polarity of each aspect mention, from the rule-based cues in its clause (`lexicon.CUES`):
   - the cue is the nearest one before the mention ("too"/"overly" only when right before it,
     intensifiers aside: "too damn scary"); failing that a "please" after it ("westerns please")
     or a quantity cue after a linking verb ("the horror was way too much"). "like" after a noun
     is a preposition, not a cue ("too many movies like Alien");
   - with a cue, the cue gives the sign and VADER the strength:
     polarity = sign * min(1, max(cue strength, |base|) + boost), where boost is 0.2 when an
     intensifier ("really", "way", "so", ...) comes within two words before the cue;
     "too many / too much / less / fewer / no more" give -, "more / want more / not enough" +,
     "love / like / want / fan of" +, "hate / sick of / can't stand" -;
   - a negator up to three words before a liking cue or an upward cue flips it and keeps 75% of
     its strength ("not a fan of horror", "don't want more horror"); downward quantity cues ignore
     negation ("not too many horror films" still asks for less horror);
   - a negator up to three words before the mention (and after the cue) flips the sign ("I want
     no horror", "something without gore"); with no cue it gives -max(0.5, |base|) ("no horror",
     "never westerns again"), reading "no X" as a request rather than a complaint;
   - with neither, polarity = base ("the comedies were great" +, "Toy Story is a classic" +,
     "the left one has comedies" 0: a neutral mention is still returned, with polarity 0).
7. A clause with aspects but no sentiment of its own takes the polarity of the clause before it
   when the two are only separated by a comma ("too many horror, thriller and war films"), the
   opposite one after "except" ("all great except the horror"), and a clause holding nothing but
   aspects takes the polarity of the comma-joined clause after it ("Toy Story, Alien: loved them").
8. `overall` / "list": a clause without aspects whose base is not 0 gives a signal about the
   list itself when the text names no aspect at all ("all terrible", "great!") or the clause
   points at the list ("great picks", "these were boring"). "nothing here" / "none of these"
   without a sentiment word give -0.4. Bare "ok", "nothing", gibberish give nothing.
9. Duplicates (same aspect and value) keep the strongest |polarity|, the earlier on a tie;
   signals are ordered by first mention. Polarities are rounded to 3 decimals.

`TextAnalysis.sentiment` is VADER's compound for the whole text with aspect phrases neutralised.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING

from training.ml.text.lexicon import (
    CONJUNCTIONS,
    CONTRAST_WORDS,
    COPULAS,
    COURTESY_WORDS,
    CUES,
    DECADE_WORDS,
    ERA_ALIASES,
    ERA_DEGREE_WORDS,
    EVALUATIVE_ALIASES,
    EVALUATIVE_WORDS,
    EVERYDAY_WORDS,
    EXCEPT_WORDS,
    FUNCTION_WORDS,
    GENRE_ALIASES,
    GRAMMAR_WORDS,
    HEAD_NOUNS,
    INTENSIFIERS,
    LIKE_PREPOSITION_HEADS,
    LIST_REFERENTS,
    LIST_REJECTION_FOLLOWERS,
    LIST_REJECTORS,
    NEGATORS,
    POPULARITY_ALIASES,
    VADER_DOMAIN_WORDS,
)
from training.ml.text.normalise import Token, clean, tokenise
from training.ml.text.phrases import Key, PhraseIndex, key_variants, phrase_key
from training.ml.text.titles import TitleIndex

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

NEUTRAL_THRESHOLD = 0.05
"""VADER compounds closer to 0 than this count as no sentiment (VADER's own convention)."""
INTENSIFIER_BOOST = 0.2
"""Added to a cue's strength when an intensifier ("really", "way") comes just before it."""
NEGATED_CUE_SCALE = 0.75
"""A negated liking cue is weaker than its opposite: "not a fan of" is milder than "hate"."""
NEGATED_MENTION_STRENGTH = 0.5
"""Strength of "no horror" / "without gore" when nothing else in the clause gives one."""
LIST_REJECTION_STRENGTH = 0.4
"""Strength of "nothing here" / "none of these" when VADER sees no sentiment."""
NEGATION_WINDOW = 3
"""A negator reaches this many words ahead (VADER uses the same window)."""
PREDICATE_VALENCE = 1.0
"""A VADER word at least this strong makes a half-clause carry its own sentiment (step 3)."""

_MASK = "thing"  # a word VADER has no valence for
_SENTENCE_END = re.compile(r"[.!?;]")
_NOT_LETTER = re.compile(r"[\W\d_]+")
_NOT_UPPER = re.compile(r"[^A-Z\u00c0-\u00de]+")
_DECADE_DIGITS = re.compile(r"^(?:(1[89]|20)(\d)0|(\d)0)s$")
_LINK_STRENGTH = {"start": 0, "and": 0, "comma": 1, "stop": 2, "contrast": 3, "except": 3}

_vader_instance: SentimentIntensityAnalyzer | None = None
_vader_lock = threading.Lock()


def _vader() -> SentimentIntensityAnalyzer:
    """The shared VADER analyzer, built on first use (loading its lexicon takes ~0.1 s)."""
    global _vader_instance
    if _vader_instance is None:
        with _vader_lock:
            if _vader_instance is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                analyzer = SentimentIntensityAnalyzer()
                analyzer.lexicon.update(VADER_DOMAIN_WORDS)
                _vader_instance = analyzer
    return _vader_instance


@dataclass(frozen=True)
class Signal:
    """One thing the text says about the list, e.g. genre Horror at -0.6 from "horror films"."""

    aspect: str  # genre | decade | title | tag | popularity | overall
    value: str  # genre name, "1980s"/"old"/"recent", movie id, tag, "popular"/"niche", "list"
    polarity: float  # in [-1, 1]; 0 is a neutral mention
    span: str  # the aspect's words as written (for a title, the title as matched in the text)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TextAnalysis:
    """Everything `TextAnalyzer.analyze` found in one text."""

    text: str  # as given
    normalised: str  # cleaned and lowercased
    tokens: list[str]  # lowercase word tokens of `normalised`
    sentiment: float  # VADER compound of the whole text, aspect words neutralised
    signals: list[Signal] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "normalised": self.normalised,
            "tokens": list(self.tokens),
            "sentiment": self.sentiment,
            "signals": [signal.as_dict() for signal in self.signals],
        }


@dataclass(frozen=True)
class _AspectPhrase:
    aspect: str
    values: tuple[str, ...]
    needs_head: bool = False  # era words like "old" count only in "old movies" / "too old"
    evaluative: bool = False  # left visible to VADER ("funny"), see EVALUATIVE_ALIASES


@dataclass(frozen=True)
class _CueSpec:
    direction: int
    strength: float
    kind: str  # quantity | preference | adjacent | request


@dataclass(frozen=True)
class _Mention:
    start: int  # token range
    end: int
    aspect: str
    values: tuple[str, ...]
    evaluative: bool = False


@dataclass(frozen=True)
class _Cue:
    start: int
    end: int
    spec: _CueSpec


@dataclass
class _Clause:
    start: int  # token range; a dropped contrast word or conjunction lies outside it
    end: int
    link: str  # how it follows the previous clause: start | stop | comma | contrast | except | and
    mentions: list[_Mention] = field(default_factory=list)
    cues: list[_Cue] = field(default_factory=list)
    negators: list[int] = field(default_factory=list)
    base: float = 0.0
    polarities: list[float] = field(default_factory=list)  # one per mention
    has_own_sentiment: bool = False


def decade_of(key: str) -> str | None:
    """The decade a word names: "80s", "'80s", "80's", "1980s", "eighties" -> "1980s".

    Two-digit decades from 20 up are read as the 1900s ("20s" -> "1920s"), "00s" and "10s" as
    the 2000s and 2010s.
    """
    if key in DECADE_WORDS:
        return DECADE_WORDS[key]
    match = _DECADE_DIGITS.match(key)
    if not match:
        return None
    century, digit, short = match.groups()
    if century:
        return f"{century}{digit}0s"
    return f"19{short}0s" if int(short) >= 2 else f"20{short}0s"


def _round(value: float) -> float:
    return round(max(-1.0, min(1.0, value)), 3) + 0.0  # + 0.0 turns -0.0 into 0.0


class TextAnalyzer:
    """Build once with the catalogue and tag vocabulary, then `analyze` any number of texts."""

    def __init__(self, titles: Iterable[tuple[int, str]] = (), tags: Iterable[str] = ()) -> None:
        vader = _vader()
        self._vader = vader
        self._strong_words = frozenset(
            word for word, valence in vader.lexicon.items() if abs(valence) >= PREDICATE_VALENCE
        )
        self._aspects: PhraseIndex[_AspectPhrase] = PhraseIndex()
        for phrase, genres in GENRE_ALIASES.items():
            evaluative = phrase in EVALUATIVE_ALIASES
            self._aspects.add_phrase(phrase, _AspectPhrase("genre", genres, evaluative=evaluative))
        for phrase, (era, needs_head) in ERA_ALIASES.items():
            evaluative = phrase in EVALUATIVE_ALIASES
            self._aspects.add_phrase(phrase, _AspectPhrase("decade", (era,), needs_head, evaluative))
        for phrase, level in POPULARITY_ALIASES.items():
            self._aspects.add_phrase(phrase, _AspectPhrase("popularity", (level,)))
        self._cues: PhraseIndex[_CueSpec] = PhraseIndex()
        for phrase, spec in CUES.items():
            self._cues.add_phrase(phrase, _CueSpec(*spec))
        self._tags: PhraseIndex[str] = PhraseIndex()
        for tag in tags:
            self._add_tag(tag)

        reserved: set[Key] = set()
        for index in (self._aspects, self._cues, self._tags):
            reserved.update(index.keys())
        sentiment_words = {word for word in vader.lexicon if word.isalpha()}
        self._titles = TitleIndex(
            titles,
            grammar_words=GRAMMAR_WORDS | sentiment_words,
            everyday_words=EVERYDAY_WORDS,
            reserved=reserved,
        )

    def _add_tag(self, tag: str) -> None:
        name = clean(tag)
        key = phrase_key(name)
        if (
            len("".join(key)) < 3
            or all(word in FUNCTION_WORDS or word in GRAMMAR_WORDS or word in HEAD_NOUNS for word in key)
            or (len(key) == 1 and (key[0] in EVALUATIVE_WORDS or key[0] in NEGATORS))
            or key in self._cues
        ):
            return
        for variant in key_variants(key):
            self._tags.add(variant, name)
            last = variant[-1]
            if last.isalpha() and not last.endswith("s"):
                self._tags.add((*variant[:-1], last + "s"), name)

    # -- analysis ------------------------------------------------------------------------

    def analyze(self, text: str) -> TextAnalysis:
        """The signals in one feedback text (steps 1-9 of the module docstring)."""
        if not isinstance(text, str):
            raise TypeError(f"feedback text must be str, not {type(text).__name__}")
        cleaned = clean(text)
        tokens = tokenise(cleaned)
        analysis = TextAnalysis(
            text=text,
            normalised=cleaned.lower(),
            tokens=[token.lower for token in tokens],
            sentiment=0.0,
        )
        if not tokens:
            return analysis
        keys = [token.key for token in tokens]
        gaps = [cleaned[tokens[i - 1].end : tokens[i].start] if i else "" for i in range(len(tokens))]

        sentence_starts = {0} | {i for i in range(1, len(tokens)) if _SENTENCE_END.search(gaps[i])}
        letters = _NOT_LETTER.sub("", cleaned)
        shouting = len(letters) >= 8 and len(_NOT_UPPER.sub("", letters)) > 0.7 * len(letters)
        title_of = [-1] * len(tokens)  # index of the title match covering each token
        titles = self._titles.find(
            cleaned, tokens, keys, sentence_starts=sentence_starts, capitals_count=not shouting
        )
        for number, (start, end, entry) in enumerate(titles):
            for i in range(start, end):
                title_of[i] = number
            if entry.ends_with_period and end < len(tokens):
                gaps[end] = gaps[end].replace(".", "", 1)  # "Monsters, Inc. is great"

        clauses = self._split_clauses(keys, gaps, title_of)
        covered = [title >= 0 for title in title_of]
        for start, end, entry in titles:
            clause = next(c for c in clauses if c.start <= start < c.end)
            clause.mentions.append(_Mention(start, end, "title", (str(entry.movie_id),)))
        for clause in clauses:
            self._find_aspects(clause, keys, covered)
        for clause in clauses:
            self._find_cues_and_negators(clause, keys, covered)
        clauses = [part for clause in clauses for part in self._split_at_conjunctions(clause, keys, covered)]

        for clause in clauses:
            clause.mentions.sort(key=lambda mention: (mention.start, mention.end))
            clause.base = self._base_sentiment(cleaned, tokens, clause)
            self._score_mentions(clause, keys)
        self._inherit(clauses, keys)

        all_mentions = [mention for clause in clauses for mention in clause.mentions]
        analysis.sentiment = _round(
            self._compound(self._masked(cleaned, tokens, 0, len(tokens), all_mentions, full=True))
        )
        signals: list[Signal] = []
        for clause in clauses:
            for mention, polarity in zip(clause.mentions, clause.polarities, strict=True):
                span = cleaned[tokens[mention.start].start : tokens[mention.end - 1].end]
                signals.extend(
                    Signal(mention.aspect, value, _round(polarity), span) for value in mention.values
                )
            overall = self._overall(clause, keys, text_has_aspects=bool(all_mentions))
            if overall is not None:
                span = cleaned[tokens[clause.start].start : tokens[clause.end - 1].end]
                signals.append(Signal("overall", "list", _round(overall), span))
        analysis.signals = _deduplicate(signals)
        return analysis

    # -- steps ---------------------------------------------------------------------------

    @staticmethod
    def _split_clauses(keys: Sequence[str], gaps: Sequence[str], title_of: Sequence[int]) -> list[_Clause]:
        clauses: list[_Clause] = []
        start, link = 0, "start"

        def close(end: int, next_start: int, next_link: str) -> None:
            nonlocal start, link
            if end > start:
                clauses.append(_Clause(start, end, link))
                link = next_link
            elif clauses:  # nothing between two breaks (", but"): the stronger break links on
                link = max(link, next_link, key=_LINK_STRENGTH.__getitem__)
            start = next_start

        for i, key in enumerate(keys):
            inside_title = i > 0 and title_of[i] >= 0 and title_of[i] == title_of[i - 1]
            if i > 0 and not inside_title:
                if _SENTENCE_END.search(gaps[i]):
                    close(i, i, "stop")
                elif "," in gaps[i]:
                    close(i, i, "comma")
            if title_of[i] < 0 and (key in CONTRAST_WORDS or key in EXCEPT_WORDS):
                close(i, i + 1, "except" if key in EXCEPT_WORDS else "contrast")
        close(len(keys), len(keys), "stop")

        merged: list[_Clause] = []
        for clause in clauses:
            courtesy = all(key in COURTESY_WORDS for key in keys[clause.start : clause.end])
            if courtesy and merged and clause.link in ("comma", "stop") and merged[-1].end == clause.start:
                merged[-1].end = clause.end
            else:
                merged.append(clause)
        return merged

    def _find_aspects(self, clause: _Clause, keys: Sequence[str], covered: list[bool]) -> None:
        """Genre, decade and popularity phrases, then tags, in the clause's uncovered words."""

        def is_blocked(i: int) -> bool:
            return covered[i]

        def accept(start: int, end: int, phrase: _AspectPhrase) -> bool:
            if not phrase.needs_head:
                return True
            return (end < clause.end and keys[end] in HEAD_NOUNS) or (
                start > clause.start and keys[start - 1] in ERA_DEGREE_WORDS
            )

        found: list[_Mention] = []
        for start, end, phrase in self._aspects.find(
            keys, clause.start, clause.end, blocked=is_blocked, accept=accept
        ):
            found.append(_Mention(start, end, phrase.aspect, phrase.values, phrase.evaluative))
        taken = {i for mention in found for i in range(mention.start, mention.end)}
        for i in range(clause.start, clause.end):
            if not covered[i] and i not in taken and (decade := decade_of(keys[i])):
                found.append(_Mention(i, i + 1, "decade", (decade,)))
        # A head noun right after an aspect phrase belongs to it: "horror flicks", "80s stuff".
        widened = []
        for mention in found:
            end = mention.end
            if end < clause.end and keys[end] in HEAD_NOUNS and not covered[end]:
                next_starts = any(other.start == end for other in found)
                end = end if next_starts else end + 1
            widened.append(_Mention(mention.start, end, mention.aspect, mention.values, mention.evaluative))
        for start, end, tag in self._tags.find(keys, clause.start, clause.end, blocked=is_blocked):
            widened.append(_Mention(start, end, "tag", (tag,)))
        clause.mentions.extend(widened)

    def _find_cues_and_negators(self, clause: _Clause, keys: Sequence[str], covered: list[bool]) -> None:
        in_mention = set(covered_positions(clause.mentions))
        in_mention |= {i for i in range(clause.start, clause.end) if covered[i]}

        def is_blocked(i: int) -> bool:
            return i in in_mention

        for start, end, spec in self._cues.find(keys, clause.start, clause.end, blocked=is_blocked):
            if keys[start:end] == ["like"] and start > clause.start:
                previous = start - 1
                if keys[previous] in LIKE_PREPOSITION_HEADS or previous in in_mention:
                    continue  # "movies like Alien", "comedies like Toy Story": a preposition
            clause.cues.append(_Cue(start, end, spec))
        in_cue = set(covered_positions(clause.cues))
        clause.negators = [
            i
            for i in range(clause.start, clause.end)
            if keys[i] in NEGATORS and i not in in_mention and i not in in_cue
        ]

    def _split_at_conjunctions(
        self, clause: _Clause, keys: Sequence[str], covered: list[bool]
    ) -> list[_Clause]:
        """Split at and/or/plus/while when both halves carry their own sentiment (step 3)."""
        in_mention = set(covered_positions(clause.mentions))
        cue_starts = {cue.start for cue in clause.cues if cue.spec.kind != "request"}

        def carries_sentiment(start: int, end: int) -> bool:
            return any(
                i in cue_starts
                or (i not in in_mention and (keys[i] in NEGATORS or keys[i] in self._strong_words))
                for i in range(start, end)
            )

        parts: list[_Clause] = []
        start = clause.start
        for i in range(clause.start, clause.end):
            if (
                keys[i] in CONJUNCTIONS
                and i not in in_mention
                and not covered[i]
                and carries_sentiment(start, i)
                and carries_sentiment(i + 1, clause.end)
            ):
                parts.append(_Clause(start, i, clause.link if not parts else "and"))
                start = i + 1
        if not parts:
            return [clause]
        parts.append(_Clause(start, clause.end, "and"))
        for part in parts:
            part.mentions = [m for m in clause.mentions if part.start <= m.start < part.end]
            part.cues = [c for c in clause.cues if part.start <= c.start < part.end]
            part.negators = [n for n in clause.negators if part.start <= n < part.end]
        return parts

    def _compound(self, text: str) -> float:
        compound = self._vader.polarity_scores(text)["compound"] if text else 0.0
        return compound if abs(compound) >= NEUTRAL_THRESHOLD else 0.0

    @staticmethod
    def _masked(
        cleaned: str,
        tokens: Sequence[Token],
        start: int,
        end: int,
        mentions: Sequence[_Mention],
        *,
        full: bool = False,
    ) -> str:
        """The text of tokens [start, end) with each aspect phrase replaced by a neutral word.

        Punctuation between the words is kept; `full` also keeps what precedes and follows, and
        otherwise only trailing "!" are kept (VADER reads them as emphasis).
        """
        if start >= end:
            return ""
        kept = {i for m in mentions if m.evaluative for i in range(m.start, m.end)}
        masked = {
            i
            for m in mentions
            if not any(i in kept for i in range(m.start, m.end))
            for i in range(m.start, m.end)
        }
        pieces: list[str] = [cleaned[: tokens[start].start]] if full else []
        for i in range(start, end):
            if i > start:
                if i in masked and i - 1 in masked:
                    continue  # one neutral word per masked phrase
                pieces.append(cleaned[tokens[i - 1].end : tokens[i].start])
            pieces.append(_MASK if i in masked else tokens[i].text)
        tail = cleaned[tokens[end - 1].end : tokens[end].start if end < len(tokens) else len(cleaned)]
        pieces.append(tail if full else "!" * min(tail.count("!"), 3))
        return "".join(pieces)

    def _base_sentiment(self, cleaned: str, tokens: Sequence[Token], clause: _Clause) -> float:
        return self._compound(self._masked(cleaned, tokens, clause.start, clause.end, clause.mentions))

    def _score_mentions(self, clause: _Clause, keys: Sequence[str]) -> None:
        """Polarity of each mention from its cue, negation and the clause's VADER score (step 6)."""
        base = clause.base
        clause.has_own_sentiment = base != 0.0
        clause.polarities = []
        for mention in clause.mentions:
            cue = self._cue_for(mention, clause, keys)
            cue_before = cue is not None and cue.end <= mention.start
            negated_mention = any(
                mention.start - NEGATION_WINDOW <= n < mention.start and (not cue_before or n >= cue.end)
                for n in clause.negators
            )
            if cue is not None:
                direction, strength = cue.spec.direction, cue.spec.strength
                flippable = cue.spec.kind == "preference" or direction > 0
                negated_cue = cue_before and any(
                    cue.start - NEGATION_WINDOW <= n < cue.start for n in clause.negators
                )
                if negated_cue and flippable:
                    direction, strength = -direction, strength * NEGATED_CUE_SCALE
                if negated_mention:
                    direction = -direction
                boost = (
                    INTENSIFIER_BOOST
                    if any(
                        keys[i] in INTENSIFIERS for i in range(max(clause.start, cue.start - 2), cue.start)
                    )
                    else 0.0
                )
                polarity = direction * min(1.0, max(strength, abs(base)) + boost)
                clause.has_own_sentiment = True
            elif negated_mention:
                polarity = -max(NEGATED_MENTION_STRENGTH, abs(base))
                clause.has_own_sentiment = True
            else:
                polarity = base
            clause.polarities.append(polarity)

    @staticmethod
    def _cue_for(mention: _Mention, clause: _Clause, keys: Sequence[str]) -> _Cue | None:
        for cue in reversed(clause.cues):
            if cue.end > mention.start:
                continue
            if cue.spec.kind == "adjacent" and any(
                keys[i] not in INTENSIFIERS for i in range(cue.end, mention.start)
            ):
                continue
            return cue
        for cue in clause.cues:
            if cue.start < mention.end:
                continue
            if cue.spec.kind == "request":
                return cue  # "westerns please", "sci-fi and horror please"
            if cue.spec.kind in ("quantity", "adjacent") and all(
                keys[i] in COPULAS or keys[i] in INTENSIFIERS for i in range(mention.end, cue.start)
            ):
                return cue  # "the horror was way too much"
        return None

    @staticmethod
    def _inherit(clauses: list[_Clause], keys: Sequence[str]) -> None:
        """Comma lists and "except" clauses borrow the polarity of their neighbour (step 7)."""

        def carried(clause: _Clause, *, last: bool) -> float:
            polar = [p for p in clause.polarities if p != 0.0]
            if polar:
                return polar[-1] if last else polar[0]
            return clause.base

        for previous, clause in pairwise(clauses):
            if clause.mentions and not clause.has_own_sentiment and clause.link in ("comma", "except"):
                sign = -1.0 if clause.link == "except" else 1.0
                inherited = sign * carried(previous, last=True)
                if inherited != 0.0:
                    clause.polarities = [inherited] * len(clause.mentions)
                    clause.has_own_sentiment = True
        for clause, following in reversed(list(pairwise(clauses))):
            in_mention = set(covered_positions(clause.mentions))
            only_aspects = bool(clause.mentions) and all(
                i in in_mention or keys[i] in FUNCTION_WORDS for i in range(clause.start, clause.end)
            )
            if only_aspects and not clause.has_own_sentiment and following.link == "comma":
                inherited = carried(following, last=False)
                if inherited != 0.0:
                    clause.polarities = [inherited] * len(clause.mentions)
                    clause.has_own_sentiment = True

    @staticmethod
    def _overall(clause: _Clause, keys: Sequence[str], *, text_has_aspects: bool) -> float | None:
        """A sentiment about the list itself from a clause with no aspect (step 8)."""
        if clause.mentions:
            return None
        words = keys[clause.start : clause.end]
        refers_to_list = any(word in LIST_REFERENTS for word in words)
        if clause.base != 0.0 and (refers_to_list or not text_has_aspects):
            return clause.base
        rejects_list = any(
            word in LIST_REJECTORS and following in LIST_REJECTION_FOLLOWERS
            for word, following in pairwise(words)
        )
        if rejects_list and clause.base == 0.0:
            return -LIST_REJECTION_STRENGTH
        return None


def covered_positions(spans: Iterable[_Mention | _Cue]) -> Iterable[int]:
    for span in spans:
        yield from range(span.start, span.end)


def _deduplicate(signals: Sequence[Signal]) -> list[Signal]:
    """One signal per (aspect, value): the strongest |polarity|, the earlier on a tie."""
    best: dict[tuple[str, str], Signal] = {}
    for signal in signals:
        key = (signal.aspect, signal.value)
        if key not in best or abs(signal.polarity) > abs(best[key].polarity):
            best[key] = signal
    order = {key: i for i, key in reversed(list(enumerate((s.aspect, s.value) for s in signals)))}
    return sorted(best.values(), key=lambda signal: order[(signal.aspect, signal.value)])
