"""Sentence boundaries: the fast scan agrees with the pattern that defines them."""

from __future__ import annotations

import random
import re

from sigwatch.detect.evidence import _boundaries, _clause_breaks

# The definition: a run of . ! ? before a space, quote, bracket or the end; a slash or bullet
# between spaces; a line break — matched left to right.
DEFINITION = re.compile(r"[.!?]+(?=[\s\"')\]]|$)|\s[/•]\s|\n")


def test_boundaries_match_their_definition_on_every_short_mix_of_tricky_characters():
    rng = random.Random(7)
    alphabet = "ab1 .!?/•\n\t\u00a0\"')]"
    texts = ["", "a.b", "end.", "Wait... what?! Yes.", "a / b • c", "a\n/ b", "x.\n/ y", "a /\nb"]
    texts += ["".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(20_000)]
    for text in texts:
        expected = [match.span() for match in DEFINITION.finditer(text)]
        assert _boundaries(text) == expected, repr(text)


CLAUSE_BREAK = re.compile(r"[,;|–—]|\s-\s")


def test_clause_breaks_match_their_definition():
    rng = random.Random(11)
    alphabet = "ab ,;|–—-\t\n"
    texts = ["", "a - b", "a-b", " - - ", "a, b - c; d"]
    texts += ["".join(rng.choices(alphabet, k=rng.randint(1, 10))) for _ in range(20_000)]
    for text in texts:
        expected = [match.start() for match in CLAUSE_BREAK.finditer(text)]
        assert _clause_breaks(text) == expected, repr(text)
