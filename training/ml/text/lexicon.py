"""Word lists the feedback-text analyzer matches against: aspects, cues, negators, common words.

Every phrase is written the way a reader would type it; `phrases.phrase_key` turns it into the
lowercase, apostrophe-free token tuple that matching uses, and hyphenated words also match
joined ("scifi") and split ("sci fi") spellings, so they are listed once here.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Aspect words that also judge ("Toy Story is funny", "the comedies weren't funny", "these are
# classics"): VADER still reads them when scoring the clause, while other aspect words are hidden
# from it.
EVALUATIVE_ALIASES: frozenset[str] = frozenset({"funny", "funnier", "classics"})

GENRE_ALIASES: dict[str, tuple[str, ...]] = {
    # Action
    "action": ("Action",),
    "action-packed": ("Action",),
    "superhero": ("Action",),
    "superheroes": ("Action",),
    "superheros": ("Action",),
    "super-hero": ("Action",),
    "super-heroes": ("Action",),
    "martial arts": ("Action",),
    "kung fu": ("Action",),
    # Adventure
    "adventure": ("Adventure",),
    "adventures": ("Adventure",),
    "adventurous": ("Adventure",),
    "swashbuckler": ("Adventure",),
    "swashbucklers": ("Adventure",),
    # Animation
    "animation": ("Animation",),
    "animations": ("Animation",),
    "animated": ("Animation",),
    "cartoon": ("Animation",),
    "cartoons": ("Animation",),
    "anime": ("Animation",),
    "stop-motion": ("Animation",),
    # Children
    "children": ("Children",),
    "children's": ("Children",),
    "kids": ("Children",),
    "kid's": ("Children",),
    "kiddie": ("Children",),
    "kid-friendly": ("Children",),
    "family": ("Children",),
    "family-friendly": ("Children",),
    # Comedy
    "comedy": ("Comedy",),
    "comedies": ("Comedy",),
    "comedic": ("Comedy",),
    "funny": ("Comedy",),
    "funnier": ("Comedy",),
    "humor": ("Comedy",),
    "humour": ("Comedy",),
    "humorous": ("Comedy",),
    "slapstick": ("Comedy",),
    "parody": ("Comedy",),
    "parodies": ("Comedy",),
    "spoof": ("Comedy",),
    "spoofs": ("Comedy",),
    "dark comedy": ("Comedy",),
    "black comedy": ("Comedy",),
    "rom-com": ("Romance", "Comedy"),
    "rom-coms": ("Romance", "Comedy"),
    "romantic comedy": ("Romance", "Comedy"),
    "romantic comedies": ("Romance", "Comedy"),
    "dramedy": ("Comedy", "Drama"),
    "dramedies": ("Comedy", "Drama"),
    # Crime
    "crime": ("Crime",),
    "crimes": ("Crime",),
    "gangster": ("Crime",),
    "gangsters": ("Crime",),
    "mafia": ("Crime",),
    "mob": ("Crime",),
    "heist": ("Crime",),
    "heists": ("Crime",),
    "cops": ("Crime",),
    # Documentary
    "documentary": ("Documentary",),
    "documentaries": ("Documentary",),
    "docs": ("Documentary",),
    "docu": ("Documentary",),
    "docuseries": ("Documentary",),
    # Drama
    "drama": ("Drama",),
    "dramas": ("Drama",),
    "dramatic": ("Drama",),
    "melodrama": ("Drama",),
    "melodramas": ("Drama",),
    "tearjerker": ("Drama",),
    "tearjerkers": ("Drama",),
    "tear-jerker": ("Drama",),
    "tear-jerkers": ("Drama",),
    # Fantasy
    "fantasy": ("Fantasy",),
    "fantasies": ("Fantasy",),
    "fantastical": ("Fantasy",),
    "fairy tale": ("Fantasy",),
    "fairy tales": ("Fantasy",),
    "fairy-tale": ("Fantasy",),
    "sword and sorcery": ("Fantasy",),
    # Film-Noir
    "noir": ("Film-Noir",),
    "noirs": ("Film-Noir",),
    "film-noir": ("Film-Noir",),
    "films noir": ("Film-Noir",),
    "neo-noir": ("Film-Noir",),
    # Horror
    "horror": ("Horror",),
    "horrors": ("Horror",),
    "scary": ("Horror",),
    "scarier": ("Horror",),
    "scariest": ("Horror",),
    "spooky": ("Horror",),
    "creepy": ("Horror",),
    "slasher": ("Horror",),
    "slashers": ("Horror",),
    "gore": ("Horror",),
    "gory": ("Horror",),
    "zombie": ("Horror",),
    "zombies": ("Horror",),
    # IMAX
    "imax": ("IMAX",),
    # Musical
    "musical": ("Musical",),
    "musicals": ("Musical",),
    # Mystery
    "mystery": ("Mystery",),
    "mysteries": ("Mystery",),
    "whodunit": ("Mystery",),
    "whodunits": ("Mystery",),
    "whodunnit": ("Mystery",),
    "whodunnits": ("Mystery",),
    "detective": ("Mystery",),
    "detectives": ("Mystery",),
    # Romance
    "romance": ("Romance",),
    "romances": ("Romance",),
    "romantic": ("Romance",),
    "chick flick": ("Romance",),
    "chick flicks": ("Romance",),
    # Sci-Fi
    "sci-fi": ("Sci-Fi",),
    "sci-fis": ("Sci-Fi",),
    "science fiction": ("Sci-Fi",),
    "science-fiction": ("Sci-Fi",),
    "sf": ("Sci-Fi",),
    "space opera": ("Sci-Fi",),
    "space operas": ("Sci-Fi",),
    # Thriller
    "thriller": ("Thriller",),
    "thrillers": ("Thriller",),
    "suspense": ("Thriller",),
    "suspenseful": ("Thriller",),
    # War
    "war": ("War",),
    "wars": ("War",),
    "wartime": ("War",),
    "wwii": ("War",),
    "ww2": ("War",),
    "world war": ("War",),
    # Western
    "western": ("Western",),
    "westerns": ("Western",),
    "cowboy": ("Western",),
    "cowboys": ("Western",),
    "spaghetti western": ("Western",),
    "spaghetti westerns": ("Western",),
}

# Decades written out; digits ("80s", "'80s", "1980s", "80's") are parsed by `decade_of`.
DECADE_WORDS: dict[str, str] = {
    "twenties": "1920s",
    "thirties": "1930s",
    "forties": "1940s",
    "fifties": "1950s",
    "sixties": "1960s",
    "seventies": "1970s",
    "eighties": "1980s",
    "nineties": "1990s",
    "noughties": "2000s",
    "aughts": "2000s",
}

# Era phrases. The bool says the phrase only counts next to a head noun ("old movies") or after
# a degree word ("too old", "something newer"), because "old" and "new" are too common alone.
ERA_ALIASES: dict[str, tuple[str, bool]] = {
    "old": ("old", True),
    "older": ("old", True),
    "oldies": ("old", False),
    "classics": ("old", False),
    "classic": ("old", True),
    "old-school": ("old", False),
    "vintage": ("old", False),
    "black and white": ("old", False),
    "black-and-white": ("old", False),
    "silent": ("old", True),
    "golden age": ("old", False),
    "dated": ("old", False),
    "recent": ("recent", False),
    "newer": ("recent", False),
    "new releases": ("recent", False),
    "latest releases": ("recent", False),
    "new": ("recent", True),
    "modern": ("recent", True),
    "contemporary": ("recent", True),
}

POPULARITY_ALIASES: dict[str, str] = {
    "mainstream": "popular",
    "popular": "popular",
    "blockbuster": "popular",
    "blockbusters": "popular",
    "big-budget": "popular",
    "crowd-pleaser": "popular",
    "crowd-pleasers": "popular",
    "commercial": "popular",
    "well-known": "popular",
    "famous": "popular",
    "obvious": "popular",
    "box office hits": "popular",
    "obscure": "niche",
    "niche": "niche",
    "indie": "niche",
    "indies": "niche",
    "independent": "niche",
    "hidden gem": "niche",
    "hidden gems": "niche",
    "gems": "niche",
    "underrated": "niche",
    "lesser-known": "niche",
    "less known": "niche",
    "little-known": "niche",
    "unknown": "niche",
    "arthouse": "niche",
    "art-house": "niche",
    "cult": "niche",
    "cult classics": "niche",
    "under the radar": "niche",
    "deep cuts": "niche",
    "off the beaten path": "niche",
    "offbeat": "niche",
}

# Nouns absorbed into a preceding aspect phrase: "horror flicks", "80s stuff", "old movies".
HEAD_NOUNS: frozenset[str] = _words(
    "movie movies film films flick flicks ones stuff titles pictures cinema shows picks "
    "genre genres releases stories"
)

# Words that make an "only with a head noun" era phrase count anyway ("too old", "something newer").
ERA_DEGREE_WORDS: frozenset[str] = _words("too so very way more much bit something anything")

# Directional cues: phrase -> (direction, strength, kind).
# kind "quantity": a request about how much of the aspect ("too many", "more"), negation-proof
#   when it points down ("not too many horror films" still asks for less horror);
# kind "preference": a liking verb ("love", "not a fan of"), flipped by a preceding negator;
# kind "adjacent": "too"/"overly" right before the aspect ("too mainstream", "too scary");
# kind "request": "please", which also counts when it follows the aspect ("westerns please").
CUES: dict[str, tuple[int, float, str]] = {
    # less of the aspect
    "too many": (-1, 0.6, "quantity"),
    "too much": (-1, 0.6, "quantity"),
    "so many": (-1, 0.5, "quantity"),
    "so much": (-1, 0.5, "quantity"),
    "less": (-1, 0.6, "quantity"),
    "fewer": (-1, 0.6, "quantity"),
    "no more": (-1, 0.7, "quantity"),
    "enough with": (-1, 0.6, "quantity"),
    "enough of": (-1, 0.6, "quantity"),
    "had enough of": (-1, 0.7, "quantity"),
    "stop": (-1, 0.6, "quantity"),
    "too": (-1, 0.6, "adjacent"),
    "overly": (-1, 0.6, "adjacent"),
    "excessively": (-1, 0.6, "adjacent"),
    # more of the aspect
    "more": (1, 0.6, "quantity"),
    "more like": (1, 0.6, "quantity"),
    "want more": (1, 0.7, "quantity"),
    "need more": (1, 0.7, "quantity"),
    "not enough": (1, 0.6, "quantity"),
    "too few": (1, 0.6, "quantity"),
    "too little": (1, 0.6, "quantity"),
    "lacks": (1, 0.5, "quantity"),
    "lacking": (1, 0.5, "quantity"),
    "can't get enough of": (1, 0.8, "quantity"),
    "give me": (1, 0.5, "quantity"),
    "show me": (1, 0.5, "quantity"),
    "how about": (1, 0.4, "quantity"),
    "what about": (1, 0.4, "quantity"),
    # liking
    "love": (1, 0.8, "preference"),
    "loved": (1, 0.8, "preference"),
    "loving": (1, 0.8, "preference"),
    "loves": (1, 0.8, "preference"),
    "like": (1, 0.5, "preference"),
    "liked": (1, 0.5, "preference"),
    "likes": (1, 0.5, "preference"),
    "enjoy": (1, 0.6, "preference"),
    "enjoyed": (1, 0.6, "preference"),
    "adore": (1, 0.8, "preference"),
    "prefer": (1, 0.5, "preference"),
    "preferred": (1, 0.5, "preference"),
    "want": (1, 0.5, "preference"),
    "wanted": (1, 0.5, "preference"),
    "would like": (1, 0.5, "preference"),
    "fan of": (1, 0.5, "preference"),
    "into": (1, 0.4, "preference"),
    "looking for": (1, 0.5, "preference"),
    "in the mood for": (1, 0.6, "preference"),
    "don't mind": (1, 0.3, "preference"),
    "wouldn't mind": (1, 0.3, "preference"),
    "please": (1, 0.4, "request"),
    "pls": (1, 0.4, "request"),
    "plz": (1, 0.4, "request"),
    # disliking
    "hate": (-1, 0.8, "preference"),
    "hated": (-1, 0.8, "preference"),
    "hates": (-1, 0.8, "preference"),
    "dislike": (-1, 0.6, "preference"),
    "disliked": (-1, 0.6, "preference"),
    "can't stand": (-1, 0.8, "preference"),
    "sick of": (-1, 0.7, "preference"),
    "tired of": (-1, 0.6, "preference"),
    "bored of": (-1, 0.6, "preference"),
    "fed up with": (-1, 0.7, "preference"),
    "could do without": (-1, 0.6, "preference"),
    "avoid": (-1, 0.6, "preference"),
}

NEGATORS: frozenset[str] = _words(
    "not no never nothing none without neither nor hardly barely nobody nowhere cannot "
    "dont doesnt didnt isnt arent wasnt werent wont cant couldnt wouldnt shouldnt havent "
    "hasnt hadnt aint"
)

INTENSIFIERS: frozenset[str] = _words(
    "really very so way far much extremely super totally absolutely seriously truly "
    "incredibly insanely terribly awfully damn definitely"
)

# Clause splitters besides punctuation. "except" also flips the polarity it inherits
# ("all good except the horror films").
CONTRAST_WORDS: frozenset[str] = _words("but however although though yet whereas")
EXCEPT_WORDS: frozenset[str] = frozenset({"except"})
# A clause split further at these when both halves carry their own sentiment
# ("I love comedies and hate horror").
CONJUNCTIONS: frozenset[str] = _words("and or plus while")
# Clauses made only of these are courtesy, merged back ("Westerns, please!").
COURTESY_WORDS: frozenset[str] = _words("please pls plz thanks thank you thx")

# "like" after one of these is a preposition ("movies like Alien"), not a liking verb.
LIKE_PREPOSITION_HEADS: frozenset[str] = HEAD_NOUNS | _words("something anything things thing one")

# Words that show a mention-free clause is about the list itself ("great picks", "all terrible").
LIST_REFERENTS: frozenset[str] = _words(
    "list lists pick picks recommendation recommendations recs rec selection selections choice "
    "choices suggestion suggestions these this those them they it all everything nothing one "
    "ones set lineup movies films stuff both left right here mix variety"
)
# Mention-free "nothing/none" clauses that reject the list without a sentiment word ("nothing here").
LIST_REJECTORS: frozenset[str] = frozenset({"nothing", "none"})
# ...when followed by one of these: "nothing here", "none of these", "nothing I'd watch".
LIST_REJECTION_FOLLOWERS: frozenset[str] = _words(
    "here for of in on i id im that worth appeals appealing grabbed grabs stood stands jumps caught"
)

# Words allowed between an aspect and a quantity cue that follows it ("the horror was a bit too
# much").
COPULAS: frozenset[str] = _words("is was are were s been be feels felt seems seem seemed just a bit little")

# VADER adjustments for this domain: praise words it lacks ("a classic", "a gem", British
# "favourite"), complaints about recommendations, and words that say nothing about the list but
# VADER scores as clearly positive: non-committal "ok" and courtesy ("please", "thanks"; the cue
# rules already read "westerns please" as a request).
VADER_DOMAIN_WORDS: dict[str, float] = {
    "ok": 0.0,
    "okay": 0.0,
    "please": 0.0,
    "pls": 0.0,
    "plz": 0.0,
    "thanks": 0.0,
    "thank": 0.0,
    "thx": 0.0,
    "favourite": 2.0,
    "favourites": 1.8,
    "appealing": 1.5,
    "rocks": 2.0,
    "rules": 1.5,
    "classic": 2.0,
    "classics": 1.5,
    "gem": 2.0,
    "meh": -1.5,
    "overrated": -1.5,
    "forgettable": -1.5,
    "predictable": -1.0,
    "generic": -1.0,
    "bland": -1.2,
    "cliche": -1.0,
    "cliched": -1.2,
    "formulaic": -1.0,
    "samey": -1.0,
}

# Small words a capitalised title may keep lowercase ("Lord of the Rings", "Dances with Wolves").
FUNCTION_WORDS: frozenset[str] = _words(
    "a an the of and or in on at to for with by from as into nor but de la le les des du el los "
    "las y und der die das di da del von van"
)

# Words that judge rather than describe. A caller's tag that is one of these ("good", "boring")
# is not matched as a tag: it is the evaluation of the list, not something the list is about.
EVALUATIVE_WORDS: frozenset[str] = _words("""
    good great bad awesome amazing brilliant excellent perfect fantastic wonderful superb
    terrible awful horrible boring dull stupid dumb masterpiece enjoyable entertaining fun
    interesting lovely beautiful clever smart intelligent disappointing ridiculous nonsense
    annoying cool sweet original creative innovative sophisticated hilarious overrated
    mediocre bland forgettable predictable generic classic gem meh ok okay fine nice best worst
    """)

# Grammar words and very frequent words. A title made only of these (after dropping a leading
# article), like "It", "Up" or "Inside Out", needs quotes or a capital that does not merely start
# a sentence ("It was great" is not the film); the analyzer adds VADER's sentiment words
# ("Love it!") and every aspect/cue/tag phrase to this tier.
GRAMMAR_WORDS: frozenset[str] = _words("""
    a about above after again against all almost alone along already also although always am
    among an and another any anyone anything are around as at away back be because become been
    before being below best better between big both but by came can cant come could day days
    did didnt do does doesnt doing done dont down during each else end enough even ever every
    everyone everything few find first for found four from full get gets getting give go goes
    going gone good got great had has have having he her here hers herself him himself his how
    however i if in inside instead into is isnt it its itself just keep kind know last least
    left less let like little long look lot lots made make many may me mean might mine more most
    much must my myself need never new next nice no none nor not nothing now of off often oh old
    on once one only onto or other others our ours out outside over own part pretty quite rather
    real really right said same saw say see seen seem seems several she should show side since so
    some someone something sometimes soon still such sure take than that thats the their theirs
    them then there these they thing things think this those though through time times to today
    together too took under until up upon us very want was way we well went were what when where
    which while who whole whom why will with within without would yes yet you your yours
    yourself actually again tomorrow yesterday later forever
    zero one two three four five six seven eight nine ten eleven twelve hundred thousand
    """)

# Everyday and movie-talk nouns. A title made only of these and grammar words ("Heat", "Alien",
# "Home Alone") needs quotes or capitals, but a capital at the start of a sentence is enough
# ("Heat is a masterpiece").
EVERYDAY_WORDS: frozenset[str] = _words("""
    man men woman women girl girls boy boys kid friend friends mother father brother brothers
    sister sisters son daughter wife husband baby people world city town home house room night
    nights life heat speed crash signs frozen cars drive split glass rush contact gravity arrival
    network fury brave ghost ghosts wild hook rope clue twins taken hero heroes legend shine chase
    dream dreams love war game games play player fight run road water fire ice light dark black
    white red blue green gold money power truth lies secret secrets heaven hell sun moon morning
    evening summer winter spring fall storm rain snow wind island beach river sea ocean space
    beginning lost found missing wanted hidden free dead alive story
    alien aliens monster monsters robot robots vampire vampires werewolf werewolves shark sharks
    dinosaur dinosaurs spy spies pirate pirates ninja witch witches dragon dragons killer killers
    soldier soldiers sequel sequels remake remakes trilogy franchise plot ending actor actors
    actress cast director soundtrack music scene scenes character characters script twist movie
    movies film films cinema screen
    """)
