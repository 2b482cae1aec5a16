"""Which class a challenge's prompt names: "Select all images with buses" -> the run's `bus`."""

from __future__ import annotations

import difflib
import re
from typing import Sequence

from hardsight.errors import UnknownTargetError

# Words that name the same thing in prompts and in class names (compared after singularising).
SYNONYMS = [
    {"hydrant", "fire hydrant"},
    {"crosswalk", "pedestrian crossing", "zebra crossing", "crossing", "cross walk"},
    {"palm", "palm tree"},
    {"motorcycle", "motorbike", "motor bike", "motor cycle"},
    {"bicycle", "bike", "cycle"},
    {"traffic light", "traffic signal", "stoplight", "stop light"},
    {"stair", "staircase", "stairway", "step"},
    {"car", "automobile"},
]
_PROMPT = re.compile(r"^(?:select|click|choose|pick)\s+(?:on\s+)?(?:all\s+)?(?:the\s+)?"
                     r"(?:images|squares|tiles|pictures|cells)\s+(?:with|of|containing|showing|that show)\s+")
_ARTICLES = {"a", "an", "the", "some", "any", "all"}


def _normalise(text: str) -> str:
    text = re.sub(r"[_\-]+", " ", text.lower())
    text = re.sub(r"[^a-z0-9 ]+", "", text)
    text = _PROMPT.sub("", " ".join(text.split()))
    words = text.split()
    while len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def _forms(phrase: str) -> set[str]:
    """The phrase with its last word as written and as each plausible singular, with and without spaces."""
    *head, last = phrase.split() or [""]
    singulars = {last}
    if last.endswith("s") and not last.endswith("ss"):
        singulars.add(last[:-1])
    if last.endswith("es"):
        singulars.add(last[:-2])
    if last.endswith("sses"):  # "busses"
        singulars.add(last[:-3])
    if last.endswith("ies"):
        singulars.add(last[:-3] + "y")
    forms = {" ".join([*head, s]) for s in singulars if s}
    return forms | {f.replace(" ", "") for f in forms}


def _with_synonyms(forms: set[str]) -> set[str]:
    out = set(forms)
    for group in SYNONYMS:
        if any(g in forms or g.replace(" ", "") in forms for g in group):
            out |= {f for g in group for f in _forms(g)}
    return out


def resolve_target(name: str, classes: Sequence[str]) -> str:
    """The class a prompt names: "buses" -> "Bus", "Traffic lights" -> "Traffic Light", "hydrants" -> "Hydrant"."""
    asked, forms = _normalise(name), _forms(_normalise(name))
    by_class = {c: _forms(_normalise(c)) for c in classes}
    for matches in (lambda c: _normalise(c) == asked,  # as written, then singular/plural, then a synonym
                    lambda c: bool(by_class[c] & forms),
                    lambda c: bool(by_class[c] & _with_synonyms(forms))):
        for c in classes:
            if matches(c):
                return c
    spelled = {_normalise(c): c for c in classes}
    close = [spelled[m] for m in difflib.get_close_matches(asked, spelled, n=3, cutoff=0.6)]
    hint = f" (close: {', '.join(close)})" if close else ""
    raise UnknownTargetError(f"unknown target {name!r}{hint}; the run's classes are: {', '.join(classes)}. "
                      f"Pass one of them with --target")
