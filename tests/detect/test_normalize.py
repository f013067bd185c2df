"""Normalisation: full-width forms, look-alike letters, whole-word key text, offsets back."""

from __future__ import annotations

import random

from sigwatch.detect.normalize import (
    _URL,
    NormalizedText,
    extract_cashtags,
    extract_handles,
    extract_urls,
    key_form,
    key_text_of,
)


def test_full_width_and_cyrillic_look_alikes_fold_to_latin():
    text = NormalizedText("Ｂｉｎａｎｃｅ will list АRВ")  # Cyrillic А and В

    assert text.folded == "Binance will list ARB"
    assert text.key_text == " binance will list arb "


def test_invisible_characters_do_not_split_words():
    assert key_text_of("air\u200bdrop") == " airdrop "


def test_emoji_and_symbols_break_words_like_punctuation():
    assert key_text_of("Thread🧵what’s next—ARB…") == " thread what s next arb "
    assert key_text_of("USDⓈ-Margined") == " usds margined "


def test_key_text_turns_punctuation_into_single_spaces():
    assert (
        key_text_of("Trading: from 8:00 | Pair: ARB/USDT!!") == " trading from 8 00 pair arb usdt "
    )
    assert key_form("Pre-Market") == "pre market"


def test_spans_map_back_to_the_original_text():
    original = "ﬁrst: Ａｒｂｉｔｒｕｍ lists"
    text = NormalizedText(original)
    key_start = text.key_text.index("arbitrum")
    start, end = text.folded_span(key_start, key_start + len("arbitrum"))

    first, last = text.original_span(start, end)

    assert original[first:last] == "Ａｒｂｉｔｒｕｍ"


def test_urls_handles_and_cashtags_are_extracted():
    text = "gm @arbitrum, $arb to the moon https://arbitrum.io/blog?x=1 (not an email a@b.c)"

    assert [u for _, _, u in extract_urls(text)] == ["https://arbitrum.io/blog?x=1"]
    assert [h for _, _, h in extract_handles(text)] == ["arbitrum"]
    assert [c for _, _, c in extract_cashtags(text)] == ["ARB"]


def test_spans_map_back_past_an_emoji():
    original = "🧵 Ａｒｂｉｔｒｕｍ lists 🚀"
    text = NormalizedText(original)
    key_start = text.key_text.index("lists")
    start, end = text.folded_span(key_start, key_start + len("lists"))

    first, last = text.original_span(start, end)

    assert original[first:last] == "lists"


def test_urls_are_found_as_the_url_pattern_finds_them_from_the_start():
    # extract_urls starts the pattern where the first URL could begin; it must find the same
    rng = random.Random(3)
    alphabet = "ahtps:/w.WHTPS x\u0130é"
    texts = ["see https://t.co/abc", "www.x.io and http://a.b", "HTTPS://X.COM", "ahttps://x"]
    texts += ["".join(rng.choices(alphabet, k=rng.randint(1, 14))) for _ in range(50_000)]
    for text in texts:
        expected = [(m.start(), m.end(), m.group(0)) for m in _URL.finditer(text)]
        assert extract_urls(text) == expected, repr(text)
