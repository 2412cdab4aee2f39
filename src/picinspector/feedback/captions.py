"""Reference descriptions written from quality labels or measurements, and a check of what a text claims.

`describe` turns the six 0-100 scores (any may be missing) and a scene into a few plain sentences: a
verdict, one statement per attribute that is clearly low or high, and a suggestion for the worst
problem. Every statement follows one table, `BANDS`: a score below ``low`` earns the low claim
("blurry"), a score at or above ``high`` the high claim ("sharp"), and in between the text says nothing
or hedges ("reasonably sharp"), which is not a claim. The wording is drawn from several templates per
statement with a NumPy generator, so a fixed seed gives the same text.

`CLAIMS` reads claims back out of any text (a generated caption, or a vision-language model's answer):
each claim kind has regular expressions and a truth test against the scores or scene labels, judged on
the same bands. `contradictions` lists the claims that the labels contradict, with a `MARGIN` so that a
borderline value is not counted; `contradiction_rate` sums that over many texts.

The claim reader is deliberately simple: a claim counts when a pattern matches and, within the same
clause, the words just before it hold no negation ("not blurry", "no noise", "free of noise"), no hedge
("slightly noisy", "reasonably sharp"), and the clause does not limit it to part of the frame ("the
background is blurry"). It will miss paraphrases and can be fooled by long-range negation.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..datasets import CaptionSample, Sample
from ..report import SCORE_NAMES
from ..scene import SCENES
from .rules import verdict

__all__ = [
    "BANDS", "CLAIMS", "DEFAULT_PROMPT", "MARGIN", "Band", "Claim", "band_of", "captions_from_labels",
    "captions_from_measures", "captions_from_reports", "contradiction_rate", "contradictions", "describe",
    "extract_claims",
]

#: The user turn stored with generated captions.
DEFAULT_PROMPT = "Describe the technical quality of this photo and suggest one improvement."

#: Points of a 0-100 score by which a claim must miss its band before it counts as contradicted.
MARGIN = 10.0


# --------------------------------------------------------------------------------------------------
# Bands: the one table that decides what may be said about a score


@dataclass(frozen=True)
class Band:
    """What a score allows a text to claim.

    Attributes
    ----------
    low : float
        A score below ``low`` makes ``low_claim`` true.
    high : float
        A score at or above ``high`` makes ``high_claim`` true. In between, neither is.
    low_claim, high_claim : str
        Claim kinds (keys of `CLAIMS`).
    """

    low: float
    high: float
    low_claim: str
    high_claim: str


#: Score name -> band. Quality follows `picinspector.feedback.rules.verdict` (poor below 50, good from
#: 65); brightness rises with exposure (SPAQ), so both of its ends are problems; noisiness is 100 when
#: clean. The attribute thresholds sit near those at which `rules` reports a finding.
BANDS: dict[str, Band] = {
    "quality": Band(50.0, 65.0, "low_quality", "high_quality"),
    "sharpness": Band(35.0, 65.0, "blurry", "sharp"),
    "noisiness": Band(40.0, 75.0, "noisy", "clean"),
    "brightness": Band(25.0, 85.0, "dark", "bright"),
    "contrast": Band(35.0, 80.0, "low_contrast", "high_contrast"),
    "colorfulness": Band(25.0, 75.0, "dull_colours", "vivid_colours"),
}

#: Claims that are problems, for the suggestion (the other band claims are praise).
_PROBLEMS = ("blurry", "noisy", "dark", "bright", "low_contrast", "dull_colours")


def band_of(name: str, value: float) -> str:
    """"low", "mid" or "high": where ``value`` falls in ``BANDS[name]``."""
    band = BANDS[name]
    return "low" if value < band.low else "high" if value >= band.high else "mid"


def _scores(scores: Mapping[str, Any] | None) -> dict[str, float]:
    """Known, finite scores as floats (None and NaN mean missing); ValueError for anything else."""
    out: dict[str, float] = {}
    for name, value in (scores or {}).items():
        if name not in SCORE_NAMES:
            raise ValueError(f"unknown score {name!r}; expected some of {', '.join(SCORE_NAMES)}")
        if value is None:
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"score {name!r} is {value!r}, not a number") from None
        if math.isnan(value):
            continue
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"score {name!r} is {value!r}, outside 0-100")
        out[name] = value
    return out


def _scene_labels(labels: str | Iterable[str] | None) -> frozenset[str]:
    if labels is None:
        return frozenset()
    labels = frozenset([labels] if isinstance(labels, str) else labels)
    unknown = sorted(labels - set(SCENES))
    if unknown:
        raise ValueError(f"unknown scene label(s) {', '.join(map(repr, unknown))}; expected names from "
                         f"{', '.join(SCENES)}")
    return labels


# --------------------------------------------------------------------------------------------------
# Templates

#: (score, band) -> sentences; "" says nothing. Low/high sentences must state their band's claim and
#: no other; mid sentences must state none (tests/test_captions.py reads every draw back).
_STATEMENTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("sharpness", "low"): ("The photo is blurry.", "It is blurred and lacks fine detail.",
                           "Fine detail is lost to blur.", "The image looks out of focus."),
    ("sharpness", "mid"): ("", "It is reasonably sharp.", "Focus is acceptable but not crisp."),
    ("sharpness", "high"): ("It is sharp.", "Details are crisp and in focus.",
                            "The photo is sharp, with crisp detail."),
    ("noisiness", "low"): ("It is noisy.", "Visible noise covers the image.",
                           "The image is grainy, with visible noise."),
    ("noisiness", "mid"): ("", "There is a little noise.", "Only slight noise is visible."),
    ("noisiness", "high"): ("It is free of visible noise.", "There is no visible noise.",
                            "The image is clean, without noise."),
    ("brightness", "low"): ("It is dark and underexposed.", "The photo is underexposed.", "The exposure is too dark."),
    ("brightness", "mid"): ("", "The exposure is about right.", "Brightness is moderate."),
    ("brightness", "high"): ("It is very bright, close to overexposed.", "The photo is overexposed and too bright.",
                             "It looks too bright."),
    ("contrast", "low"): ("The contrast is low and the image looks flat.", "It is flat, with low contrast.",
                          "Tones look flat and lack contrast."),
    ("contrast", "mid"): ("", "Contrast is moderate.", "Contrast is adequate."),
    ("contrast", "high"): ("Contrast is strong.", "It has good contrast.", "It has punchy, high contrast."),
    ("colorfulness", "low"): ("The colours are dull and muted.", "Colours look muted.", "It has dull, muted colours."),
    ("colorfulness", "mid"): ("", "Colours are natural.", "Colours are moderately saturated."),
    ("colorfulness", "high"): ("The colours are vivid.", "It has vibrant colours.", "Colours are rich and saturated."),
}

#: The verdict on quality; ``{word}`` is `rules.verdict`'s word, ``{q}`` the score.
_VERDICT_SENTENCES = (
    "Overall quality is {word} ({q}/100).",
    "The overall quality is {word}, {q} out of 100.",
    "{Word} overall quality ({q}/100).",
    "All in all, {a} {word}-quality photo ({q}/100).",
)

#: Scene -> noun phrases ("others" gets no sentence), and the sentences that carry them.
_SCENE_PHRASES: dict[str, tuple[str, ...]] = {
    "animal": ("an animal",),
    "cityscape": ("a cityscape", "a city scene"),
    "human": ("a person", "a portrait of a person"),
    "indoor": ("an indoor scene", "an interior"),
    "landscape": ("a landscape",),
    "night": ("a night scene", "a scene at night"),
    "plant": ("a plant", "plants or flowers"),
    "still_life": ("a still life",),
}
_SCENE_SENTENCES = ("A photo of {what}.", "The picture shows {what}.", "This is {what}.")

#: Problem claim -> what to do about it (lower case, ends with a full stop), like `rules` suggests.
_TIPS: dict[str, tuple[str, ...]] = {
    "blurry": (("focus on the subject (single-point autofocus, or tap to focus on a phone) and hold the camera "
                "steady or use a faster shutter speed."),
               "use a faster shutter speed or a support, and check the focus at 100% before moving on."),
    "noisy": ("use a lower ISO with more light or a longer exposure on a support, and apply noise reduction.",),
    "dark": ("add exposure (+1 EV or more with exposure compensation), add light, or lift the exposure in editing.",),
    "bright": ("reduce the exposure (negative exposure compensation) or meter on the highlights.",),
    "low_contrast": ("set the black and white points with levels or a tone curve, and keep haze and flare out.",),
    "dull_colours": ("raise vibrance or saturation a little, or shoot in better light.",),
}
_TIP_SENTENCES = ("First fix: {tip}", "To improve it, {tip}", "Suggested fix: {tip}", "The first thing to fix: {tip}")
_NOTE_SENTENCES = ("Measured: {note}.", "The measurements show {note}.")
_ALL_GOOD = ("Nothing stands out as needing a fix.", "No single problem stands out.")


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _severity(claim: str, name: str, value: float) -> float:
    """How far into its problem band a score is, 0 (at the threshold) to 1 (at the end of the scale)."""
    band = BANDS[name]
    if claim == band.high_claim:
        return (value - band.high) / max(100.0 - band.high, 1e-9)
    return (band.low - value) / max(band.low, 1e-9)


def describe(scores: Mapping[str, Any], scene: str | None, rng: np.random.Generator, *,
             note: str | None = None) -> str:
    """A few plain sentences about a photo, each true of its scores.

    Parameters
    ----------
    scores : mapping
        Some of `picinspector.report.SCORE_NAMES` -> 0-100 (higher is better; ``brightness`` rises
        with exposure; ``noisiness`` is 100 when clean). None or NaN means missing.
    scene : str or None
        One of `picinspector.scene.SCENES`; None and "others" add no scene sentence.
    rng : numpy.random.Generator
        Picks the wording and the order of the praise; the same state gives the same text.
    note : str, optional
        A measured fact to quote before the suggestion (e.g. a finding's message), already known to
        be true of the image.

    Returns
    -------
    str
        The scene, the verdict on quality, one sentence per attribute outside its middle band
        (problems first, worst first; middle bands are skipped or hedged), the note, and a
        suggestion for the worst problem.

    Raises
    ------
    ValueError
        An unknown score name or scene, a score outside 0-100, or nothing to describe (no score).

    Notes
    -----
    The bands are `BANDS`; the verdict word is `picinspector.feedback.rules.verdict`'s.
    """
    values = _scores(scores)
    if scene is not None and scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; expected one of {', '.join(SCENES)}")
    if not values:
        raise ValueError("nothing to describe: no score is given")
    sentences = []
    if scene in _SCENE_PHRASES:
        sentences.append(_pick(rng, _SCENE_SENTENCES).format(what=_pick(rng, _SCENE_PHRASES[scene])))
    if "quality" in values:
        q = values["quality"]
        word = verdict(q)
        template = _pick(rng, _VERDICT_SENTENCES)
        sentences.append(template.format(word=word, Word=word.capitalize(), q=f"{q:.0f}",
                                         a="an" if word[0] in "aeiou" else "a"))
    problems: list[tuple[float, str, str]] = []
    others: list[str] = []
    for name in SCORE_NAMES[1:]:
        if name not in values:
            continue
        where = band_of(name, values[name])
        text = _pick(rng, _STATEMENTS[(name, where)])
        claim = {"low": BANDS[name].low_claim, "high": BANDS[name].high_claim}.get(where)
        if claim in _PROBLEMS:
            problems.append((_severity(claim, name, values[name]), claim, text))
        elif text:
            others.append(text)
    problems.sort(key=lambda p: -p[0])
    sentences += [text for _, _, text in problems]
    sentences += [others[i] for i in rng.permutation(len(others))]
    if note:
        sentences.append(_pick(rng, _NOTE_SENTENCES).format(note=note[0].lower() + note[1:].rstrip(".")))
    if problems:
        sentences.append(_pick(rng, _TIP_SENTENCES).format(tip=_pick(rng, _TIPS[problems[0][1]])))
    elif not note and len(values) > 1 and values.get("quality", 100.0) >= BANDS["quality"].high:
        sentences.append(_pick(rng, _ALL_GOOD))
    return " ".join(sentences)


# --------------------------------------------------------------------------------------------------
# Claims

Test = Callable[[Mapping[str, float], frozenset, float], "bool | None"]


@dataclass(frozen=True)
class Claim:
    """A kind of statement a text can make about a photo, and how to check it.

    Attributes
    ----------
    patterns : tuple of compiled regex
        Any match (not negated, hedged or limited to a part of the frame) makes the claim.
    test : callable
        ``test(scores, scene_labels, margin) -> bool or None``: whether the claim holds (with
        ``margin`` points of tolerance), None when the truth does not say (a missing score, no labels).
    graded : bool
        A quality statement: hedges ("slightly", "reasonably") and weak negators ("low noise",
        "avoid blur") cancel it. Scene claims are not graded ("a little girl" is still a person).
    partial : compiled regex or None
        Words that, anywhere in the clause, limit the claim to a part of the frame ("the background
        is blurry", "noise in the shadows"); such a match is not a claim about the whole photo.
    """

    patterns: tuple[re.Pattern[str], ...]
    test: Test
    graded: bool = True
    partial: re.Pattern[str] | None = None


def _band_test(name: str, side: str) -> Test:
    band = BANDS[name]

    def test(scores: Mapping[str, float], scenes: frozenset, margin: float) -> bool | None:
        value = scores.get(name)
        if value is None:
            return None
        return value < band.low + margin if side == "low" else value >= band.high - margin

    return test


def _scene_test(scene: str) -> Test:
    def test(scores: Mapping[str, float], scenes: frozenset, margin: float) -> bool | None:
        return (scene in scenes) if scenes else None

    return test


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


_COLOUR = r"colou?r(?:s|ation)?"
_DULL_WORDS = r"dull|muted|drab|faded|washed[- ]out|subdued|pale|lifeless|weak"
_DULL = rf"(?:{_DULL_WORDS})"
_VIVID = r"(?:vivid|vibrant|rich|bold|saturated|strong|bright|lively|brilliant|intense|deep)"
_LINK = r"(?:is|are|looks?|seems?|appears?|remains?)"
_NO = r"(?:free (?:of|from)|no|without) (?:(?:visible|noticeable|obvious|apparent|any|much) )?"
#: Nouns after "dark" that describe the content ("a dark background"), not the exposure.
_DARK_THINGS = (r"background|backdrop|areas?|tones?|shadows?|clothe?s|clothing|colou?rs?|hair|sky|wood|green|blue|"
                r"red|brown|grey|gray|parts?|regions?|spots?|corners?|patch(?:es)?|suit|coat|fur|eyes")
_GOOD = r"(?:excellent|good|great|high|superb|outstanding)"
_HIGH = r"(?:high|good|great|excellent)"
_LOW = r"(?:low|poor|bad|weak|insufficient|lacking)"
_BAD = r"(?:poor|bad|low|terrible|awful|mediocre|weak)"
_PHOTO = r"(?:quality|photo(?:graph)?|image|picture|shot)"
#: Subjects for which "... is clear" speaks of sharpness (not "the sky is clear", "it is clear that").
_WHOLE = r"(?:image|photo|picture|shot|it|details?|subject|textures?|edges?)"

_BAND_PATTERNS: dict[str, tuple[str, ...]] = {
    "blurry": (r"\bblurr(?:y|ed|ing|iness)\b", r"\bblur\b(?![- ]?(?:free|less))", r"\bout[- ]of[- ]focus\b",
               r"\bunsharp\b", r"\b(?:looks?|appears?|seems?|rather|too|overly) soft\b",
               r"\b(?:image|photo|picture|shot|it|focus) is soft\b",
               rf"\b(?:lacks?|lacking|lack of|no|{_LOW}) (?:\w+ )?(?:sharpness|focus|clarity)\b",
               rf"\b(?:sharpness|focus|clarity) (?:of (?:the|this) \w+ )?{_LINK} (?:\w+ )?{_LOW}\b"),
    "sharp": (r"\bsharp(?:ly)?\b(?! (?:contrast|shadows?|angles?|turns?|drop)\b)", r"\bcrisp(?:ly)?\b",
              r"\bin (?:sharp |good |perfect |clear )?focus\b", r"\bwell[- ]focused\b",
              rf"\b{_NO}(?:blur|blurring|motion blur)\b", rf"\b{_HIGH} (?:\w+ )?(?:sharpness|clarity)\b",
              rf"\b(?:sharpness|focus|clarity) (?:of (?:the|this) \w+ )?{_LINK} (?:\w+ )?{_HIGH}\b",
              rf"\b{_WHOLE} {_LINK} (?:\w+ )?clear\b(?! that)"),
    "noisy": (r"\bnois(?:e|y|iness)\b(?![- ]?(?:free|less|reduction|levels?)\b)",
              r"(?<!wood )\bgrain(?:y|iness)?\b(?![- ]?(?:free|less)\b)"),
    "clean": (r"\b(?:noise|grain)[- ]?(?:free|less)\b", rf"\b{_NO}(?:noise|grain)\b",
              r"\bclean (?:image|photo|picture|shot|result|look|capture)\b", rf"\b{_LINK} clean\b"),
    "dark": (r"\bunder-?expos(?:ed|ure)\b", rf"\bdark\b(?!-|\s+(?:{_DARK_THINGS})\b)",
             r"\b(?:dim|dimly lit|poorly lit|murky|gloomy)\b",
             r"\b(?:insufficient|inadequate) (?:exposure|light(?:ing)?)\b",
             rf"\b(?:exposure|light(?:ing)?) {_LINK} (?:\w+ )?(?:insufficient|inadequate|too low|too weak)\b"),
    "bright": (r"\bover-?expos(?:ed|ure)\b", r"\b(?:too|very|overly|extremely|excessively) bright\b(?! colou?rs?\b)",
               r"\bblown[- ]?out\b", r"\bexcessive (?:exposure|brightness|light(?:ing)?)\b",
               rf"\b(?:exposure|brightness|light(?:ing)?) {_LINK} (?:\w+ )?(?:excessive|too high|too strong)\b"),
    "low_contrast": (r"\b(?:low|weak|poor|little|reduced|lacking|limited)[- ]contrast\b",
                     r"\black(?:s|ing)? (?:of )?(?:\w+ )?contrast\b",
                     rf"\bcontrast {_LINK} (?:\w+ )?(?:low|weak|poor|flat|lacking|limited)\b",
                     r"\bflat\b(?! (?:colou?rs?|surfaces?|ground|land|terrain|roofs?|tables?|screens?|lay)\b)",
                     r"\bhazy\b"),
    "high_contrast": (r"\b(?:high|strong|good|rich|plenty of|punchy|deep|bold)[- ]contrast\b",
                      rf"\bcontrast {_LINK} (?:\w+ )?(?:high|strong|good|punchy|rich|excellent)\b",
                      r"\bcontrasty\b", r"\bpunchy\b"),
    "dull_colours": (rf"\b{_DULL}(?:,? (?:and |or )?\w+)? {_COLOUR}\b(?! cast)",
                     rf"\b{_COLOUR} {_LINK} (?:\w+ )?(?:{_DULL_WORDS}|desaturated)\b",
                     r"\b(?:de|under)-?saturated\b", r"\bcolou?rless\b", r"\bmuted\b",
                     rf"\b(?:lacks?|lacking|lack of|little) {_COLOUR}\b",
                     rf"\b{_LOW} (?:colou?r )?saturation\b", rf"\bsaturation {_LINK} (?:\w+ )?{_LOW}\b"),
    "vivid_colours": (rf"\b(?<!-){_VIVID}(?:,? (?:and |or )?\w+)? {_COLOUR}\b(?! cast)",
                      rf"\b{_COLOUR} (?:{_LINK}|pops?) (?:\w+ )?{_VIVID}\b", r"\bcolou?rful\b", r"\bvivid(?:ly)?\b",
                      r"\bvibrant\b", r"\b(?<!-)(?:over-?)?saturated\b",
                      rf"\b(?:{_HIGH}|rich|strong) (?:colou?r )?saturation\b",
                      rf"\bsaturation {_LINK} (?:\w+ )?(?:{_HIGH}|rich|strong)\b"),
    "high_quality": (rf"\b{_GOOD}(?: overall)?[- ]{_PHOTO}\b", rf"\bquality (?:is|was|looks|seems) (?:\w+ )?{_GOOD}\b"),
    "low_quality": (rf"\b{_BAD}(?: overall)?[- ]{_PHOTO}\b", rf"\bquality (?:is|was|looks|seems) (?:\w+ )?{_BAD}\b"),
}

#: Words that limit a claim to part of the frame, per claim kind.
_PARTIAL: dict[str, str] = {
    "blurry": r"\b(?:background|backdrop|bokeh|behind|foreground|depth of field|corners?)\b",
    "dark": r"\b(?:background|backdrop|shadows?|corners?|parts?|areas?|regions?|edges|sky)\b",
    "bright": r"\b(?:sky|highlights?|windows?|lamps?|lights?|sun|clouds?|parts?|areas?|regions?|background)\b",
    "noisy": r"\b(?:shadows?|dark (?:areas|parts|regions)|sky)\b",
}

#: Scene -> the words that name it (a regex alternation, matched as whole words).
_SCENE_WORDS: dict[str, str] = {
    "animal": r"animals?|dogs?|cats?|birds?|horses?|pets?|pupp(?:y|ies)|kittens?|cows?|sheep|wildlife|insects?",
    "cityscape": r"cityscapes?|city|cities|streets?|skylines?|urban|downtown|buildings?",
    "human": (r"portraits?|persons?|people|man|men|woman|women|girls?|boys?|child(?:ren)?|kids?|bab(?:y|ies)|"
              r"faces?|selfies?|humans?"),
    "indoor": r"indoors?|interiors?|(?:in|inside) (?:a|the) (?:room|house|building)",
    "landscape": r"landscapes?|scenery|mountains?|countryside|seascapes?|coastlines?|beach(?:es)?|valleys?|hills?",
    "night": r"night(?:time|-time)?|nocturnal",
    "plant": r"plants?|flowers?|blossoms?|succulents?|houseplants?|potted",
    "still_life": r"still[- ]li(?:fe|fes)",
}


def _band_claims() -> dict[str, Claim]:
    out = {}
    for name, band in BANDS.items():
        for side, kind in (("low", band.low_claim), ("high", band.high_claim)):
            partial = _PARTIAL.get(kind)
            out[kind] = Claim(_rx(*_BAND_PATTERNS[kind]), _band_test(name, side),
                              partial=re.compile(partial, re.IGNORECASE) if partial else None)
    return out


#: Claim kind -> `Claim`: the six bands' low and high claims, then ``scene:<name>`` for every scene but
#: "others". Judged against scores with `BANDS` and against the image's scene labels.
CLAIMS: dict[str, Claim] = {
    **_band_claims(),
    **{f"scene:{scene}": Claim(_rx(rf"\b(?:{words})\b"), _scene_test(scene), graded=False)
       for scene, words in _SCENE_WORDS.items()},
}

_BOUNDARY = re.compile(r"[.;:!?,()\[\]\n]|\b(?:but|although|though|however|whereas|while|yet|except)\b",
                       re.IGNORECASE)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_NEGATION = re.compile(r"\b(?:not|no|never|without|nor|neither|hardly|barely|scarcely|none|lacks?|lacking|"
                       r"free (?:of|from)|absence of|lack of|rather than|instead of)\b|n't\b")
_INNER_NEGATION = re.compile(r"\b(?:not|never|hardly|barely|neither|nor)\b|n't\b")
_WEAK_NEGATION = re.compile(r"\b(?:low|little|minimal|less|reduced?|reduces|reducing|avoid(?:s|ing|ed)?|"
                            r"prevent(?:s|ing)?|remove|fix|correct)\b")
_HEDGE = re.compile(r"\b(?:slight(?:ly)?|somewhat|a little|a bit|a touch|a tad|fairly|reasonably|moderately|"
                    r"mildly|acceptably|relatively|mostly|largely|partly|partially|some|marginally|borderline)\b")


class _Clauses:
    """Clause limits of a text (punctuation and contrastive conjunctions), for the negation window."""

    def __init__(self, text: str):
        marks = list(_BOUNDARY.finditer(text))
        self.starts = [m.end() for m in marks]
        self.ends = [m.start() for m in marks]
        self.length = len(text)

    def around(self, start: int, end: int) -> tuple[int, int]:
        """Start and end of the clause holding ``text[start:end]``."""
        i = bisect.bisect_right(self.starts, start)
        j = bisect.bisect_left(self.ends, end)
        return (self.starts[i - 1] if i else 0), (self.ends[j] if j < len(self.ends) else self.length)


def _counts(text: str, match: re.Match[str], claim: Claim, clauses: _Clauses) -> bool:
    """Whether a pattern match is a claim: not negated, hedged or limited to part of the frame."""
    lo, hi = clauses.around(match.start(), match.end())
    words = _WORD.findall(text[lo:match.start()].lower())
    span = match.group(0).lower()
    if _NEGATION.search(" ".join(words[-4:])) or _INNER_NEGATION.search(span):
        return False
    if claim.graded:
        near = " ".join(words[-2:])
        if _WEAK_NEGATION.search(near) or _HEDGE.search(near) or _HEDGE.search(span):
            return False
    return claim.partial is None or not claim.partial.search(text[lo:hi])


def extract_claims(text: str) -> set[str]:
    """The claim kinds a text makes about its photo.

    Parameters
    ----------
    text : str

    Returns
    -------
    set of str
        Keys of `CLAIMS` with at least one counted match (see the module notes: negated, hedged and
        part-of-the-frame mentions do not count).

    Examples
    --------
    >>> sorted(extract_claims("A sharp photo, not blurry, with no noise."))
    ['clean', 'sharp']
    """
    text = text.replace("\u2019", "'")
    clauses = _Clauses(text)
    return {kind for kind, claim in CLAIMS.items()
            if any(_counts(text, m, claim, clauses) for p in claim.patterns for m in p.finditer(text))}


def _judge(text: str, scores: Mapping[str, Any], scene_labels: Any, margin: float) -> dict[str, bool | None]:
    values, labels = _scores(scores), _scene_labels(scene_labels)
    return {kind: CLAIMS[kind].test(values, labels, margin) for kind in sorted(extract_claims(text))}


def contradictions(text: str, scores: Mapping[str, Any], scene_labels: str | Iterable[str] | None = None,
                   margin: float = MARGIN) -> list[str]:
    """The claims of a text that its photo's scores or scene labels contradict.

    Parameters
    ----------
    text : str
    scores : mapping
        Score name -> 0-100, as for `describe` (missing scores judge nothing).
    scene_labels : str or iterable of str, optional
        The photo's scene label(s); empty or None judges no scene claim.
    margin : float
        Points by which a score must miss a claim's band to contradict it: "blurry" is contradicted
        when sharpness >= 35 + margin, "sharp" when sharpness < 65 - margin. 0 checks the bands
        exactly (what `describe` obeys).

    Returns
    -------
    list of str
        Contradicted claim kinds, sorted.
    """
    return [kind for kind, ok in _judge(text, scores, scene_labels, margin).items() if ok is False]


def contradiction_rate(texts: Sequence[str], truths: Sequence[Mapping[str, Any]],
                       margin: float = MARGIN) -> dict[str, Any]:
    """How often texts contradict their photos' labels.

    Parameters
    ----------
    texts : sequence of str
        E.g. a model's descriptions.
    truths : sequence of mapping
        One per text: ``{"scores": {...}, "scenes": [...]}`` ("scenes" optional), e.g. the ``meta`` of
        the `CaptionSample` the text was written for.
    margin : float
        See `contradictions`.

    Returns
    -------
    dict
        ``n_texts``; ``n_claims`` (claims the truth could judge) and ``n_unjudged`` (claims about a
        missing score or unknown scene); ``n_contradicted``; ``n_texts_contradicted`` (texts with at
        least one); ``rate_per_text`` (``n_texts_contradicted / n_texts``); ``contradictions_per_text``
        (``n_contradicted / n_texts``); ``rate_per_claim`` (``n_contradicted / n_claims``, None when no
        claim was judged); ``per_kind``: kind -> ``{"claims", "contradicted"}``; ``margin``.

    Raises
    ------
    ValueError
        ``texts`` and ``truths`` differ in length, or are empty.
    """
    if len(texts) != len(truths):
        raise ValueError(f"{len(texts)} texts but {len(truths)} truths; expected one truth per text")
    if not texts:
        raise ValueError("no texts to check")
    per_kind: dict[str, dict[str, int]] = {}
    n_claims = n_unjudged = n_contradicted = n_texts_contradicted = 0
    for text, truth in zip(texts, truths):
        judged = _judge(text, truth.get("scores") or {}, truth.get("scenes"), margin)
        bad = 0
        for kind, ok in judged.items():
            if ok is None:
                n_unjudged += 1
                continue
            counts = per_kind.setdefault(kind, {"claims": 0, "contradicted": 0})
            counts["claims"] += 1
            n_claims += 1
            if ok is False:
                counts["contradicted"] += 1
                bad += 1
        n_contradicted += bad
        n_texts_contradicted += bad > 0
    return {
        "n_texts": len(texts), "n_claims": n_claims, "n_unjudged": n_unjudged, "n_contradicted": n_contradicted,
        "n_texts_contradicted": n_texts_contradicted, "rate_per_text": n_texts_contradicted / len(texts),
        "contradictions_per_text": n_contradicted / len(texts),
        "rate_per_claim": n_contradicted / n_claims if n_claims else None,
        "per_kind": dict(sorted(per_kind.items())), "margin": margin,
    }


# --------------------------------------------------------------------------------------------------
# Captions for datasets


def _rng(seed: int, path: str) -> np.random.Generator:
    """A generator for one image: the same seed and path give the same text, whatever the order."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([int(seed), zlib.crc32(os.fsencode(path))])


def captions_from_labels(samples: Iterable[Sample], seed: int = 0,
                         prompt: str | None = DEFAULT_PROMPT) -> list[CaptionSample]:
    """Reference descriptions of a labelled IQA dataset, written from its human labels.

    Parameters
    ----------
    samples : iterable of picinspector.datasets.Sample
        ``mos01`` gives quality (``100 * mos01``), ``attributes`` the five attribute scores (SPAQ),
        ``scenes`` the scene (the first label is described). A dataset with only a MOS gets a
        quality-only description.
    seed : int
        Non-negative; the wording of each image depends on the seed and its path only.
    prompt : str or None
        The user turn stored with every caption.

    Returns
    -------
    list of picinspector.datasets.CaptionSample
        In sample order, ``meta`` = ``{"source": "labels", "scores", "scenes"}`` (+ ``subset``), so
        that `contradiction_rate` can judge texts against it. Samples with no MOS and no attribute
        score are left out.

    Raises
    ------
    ValueError
        A score outside 0-100, an unknown scene, or a bad seed, naming the image.
    """
    out = []
    for sample in samples:
        scores = {k: v for k, v in sample.attributes.items() if k in SCORE_NAMES}
        if sample.mos01 is not None:
            scores["quality"] = 100.0 * sample.mos01
        scene = sample.scenes[0] if sample.scenes else None
        try:
            scores = _scores(scores)
            if not scores:
                continue
            text = describe(scores, scene, _rng(seed, sample.path))
        except ValueError as exc:
            raise ValueError(f"{sample.path}: {exc}") from None
        meta: dict[str, Any] = {"source": "labels", "scores": scores, "scenes": list(sample.scenes)}
        if sample.subset is not None:
            meta["subset"] = sample.subset
        out.append(CaptionSample(sample.path, text, prompt, meta))
    return out


def captions_from_reports(rows: Iterable[Mapping[str, Any]], seed: int = 0, prompt: str | None = DEFAULT_PROMPT,
                          min_scene_confidence: float = 0.4) -> list[CaptionSample]:
    """Reference descriptions written from PicInspector's own reports.

    Parameters
    ----------
    rows : iterable of dict
        ``Report.to_dict()`` rows (e.g. from `picinspector.batch.iter_rows`).
    seed : int
        As for `captions_from_labels`.
    prompt : str or None
        The user turn stored with every caption.
    min_scene_confidence : float
        The scene label is described (and used as truth) only from this confidence up; the CLI calls
        a guess below 0.4 weak.

    Returns
    -------
    list of picinspector.datasets.CaptionSample
        In row order. The text quotes the message of the worst non-info finding when the message makes
        no claim that the scores contradict (`contradictions` with margin 0). ``meta`` holds
        ``source`` ("measures"), ``scores``, ``scenes`` (the label when described, else empty),
        ``scene_guess``, ``scene_confidence``, ``findings`` (kinds), ``engine`` and ``version``.

    Raises
    ------
    ValueError
        An error row (filter them out first; `captions_from_measures` does), or bad scores (none at
        all, or outside 0-100), naming the path.
    TypeError
        A row that is not a report of a file (no ``scores`` mapping, or no ``path``).
    """
    out = []
    for row in rows:
        if "error" in row:
            raise ValueError(f"{row.get('path')}: an error row ({row['error'].get('kind')}), not a report")
        if not isinstance(row.get("scores"), Mapping) or not isinstance(row.get("path"), str):
            raise TypeError(f"{row.get('path')}: not a report of an image file (no 'scores' mapping or 'path')")
        scene_info = row.get("scene") or {}
        guess, conf = scene_info.get("label"), scene_info.get("confidence")
        scene = guess if guess is not None and conf is not None and conf >= min_scene_confidence else None
        labels = [scene] if scene else []
        note = next((f["message"] for f in row.get("findings", []) if f.get("severity") != "info"), None)
        try:
            scores = _scores({k: row["scores"].get(k) for k in SCORE_NAMES})
            if note is not None and contradictions(note, scores, labels, margin=0.0):
                note = None
            text = describe(scores, scene, _rng(seed, row["path"]), note=note)
        except ValueError as exc:
            raise ValueError(f"{row['path']}: {exc}") from None
        meta = {"source": "measures", "scores": scores, "scenes": labels, "scene_guess": guess,
                "scene_confidence": conf, "findings": [f.get("kind") for f in row.get("findings", [])],
                "engine": row.get("engine"), "version": row.get("version")}
        out.append(CaptionSample(row["path"], text, prompt, meta))
    return out


def captions_from_measures(paths: Sequence[str], seed: int = 0, jobs: int = 1, inspector_options: Any = None,
                           prompt: str | None = DEFAULT_PROMPT) -> tuple[list[CaptionSample], list[dict[str, Any]]]:
    """Analyse images and describe them from the measurements (`captions_from_reports`).

    Parameters
    ----------
    paths : sequence of str
        Image files.
    seed : int
        As for `captions_from_labels`.
    jobs : int
        Worker processes (see `picinspector.batch.iter_rows`).
    inspector_options : dict or Inspector, optional
        Passed to `picinspector.batch.iter_rows`.
    prompt : str or None
        The user turn stored with every caption.

    Returns
    -------
    (list of CaptionSample, list of dict)
        Captions in input order, and the error rows (``{"path", "error": {"kind", "message"}}``) of
        the images that could not be analysed, for the caller to report.

    Raises
    ------
    ValueError
        ``jobs < 1`` or invalid inspector options (before any image is read), see `iter_rows`.
    """
    from contextlib import closing

    from ..batch import iter_rows

    order: dict[str, int] = {}
    for i, path in enumerate(paths):
        order.setdefault(path, i)
    with closing(iter_rows(list(paths), jobs=jobs, inspector_options=inspector_options)) as rows:
        done = sorted(rows, key=lambda r: order.get(r.get("path"), len(order)))
    errors = [r for r in done if "error" in r]
    return captions_from_reports([r for r in done if "error" not in r], seed=seed, prompt=prompt), errors
