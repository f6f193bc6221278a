"""SMS length maths: the GSM-7 and UCS-2 alphabets, transliteration, septets and segments.

Length is counted the way carriers bill it (PROTOCOLS.md §7.4): GSM-7 text takes 160 septets in
one segment (153 each when split), `€ [ ] { } ~ ^ | \\` taking two; a single character outside
GSM-7 switches the whole text to UCS-2 at 70 (67) characters. So typographic marks (’ “ ” – — …)
are transliterated and emoji dropped, keeping GSM-7 wherever the words themselves allow; text in
another script (Cyrillic, CJK) is kept as UCS-2 and cut to fit that budget.
"""

from __future__ import annotations

import unicodedata
from typing import Final, Literal

SMS_MAXLEN: Final = 160
Encoding = Literal["GSM-7", "UCS-2"]
#: (one segment, per segment when split) for each encoding.
_SEGMENT: Final[dict[str, tuple[int, int]]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}
_ELLIPSIS: Final = "..."

# GSM 03.38 default alphabet (1 septet each) and its extension table (2 septets: ESC + char).
_GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT: Final = frozenset("^{}\\[~]|€")
# Common non-GSM characters with a faithful GSM spelling; anything else is transliterated
# (é stays, ô → o) or dropped (emoji).
_REPLACE: Final[dict[str, str]] = {
    "“": '"',
    "”": '"',
    "„": '"',
    "«": '"',
    "»": '"',
    "‘": "'",
    "’": "'",
    "‚": "'",
    "`": "'",
    "´": "'",
    "—": "-",
    "–": "-",
    "‐": "-",
    "−": "-",
    "…": "...",
    "•": "*",
    "·": "*",
    "×": "x",
    "÷": "/",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
    "±": "+/-",
    "→": "->",
    "←": "<-",
    "↑": "up",
    "↓": "down",
    "¢": "c",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "œ": "oe",
    "Œ": "OE",
    "ı": "i",
    "\t": " ",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
}


def _gsm_char(ch: str) -> str | None:
    """`ch` in GSM-7: itself, a faithful spelling, its base letter, "" (drop), or None (no way)."""
    if ch in _GSM_BASIC or ch in _GSM_EXT:
        return ch
    if ch in _REPLACE:
        return _REPLACE[ch]
    # Accented letters outside GSM (ô, ł, ā): keep the base letter when that is GSM.
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and all(c in _GSM_BASIC for c in base):
        return base
    category = unicodedata.category(ch)
    if category[0] in "LN":
        return None  # a letter or digit of another script: only UCS-2 can carry it
    return ""  # emoji, symbols, marks, controls: decoration an SMS can do without


def to_gsm7(text: str) -> str:
    """Text in the GSM-7 alphabet on one line: typographic marks replaced, the rest dropped."""
    out = "".join(_gsm_char(ch) or "" for ch in text)
    return " ".join(out.split())  # newlines and runs of spaces collapse to one space


def _as_gsm7(text: str) -> str | None:
    """`text` in GSM-7 without losing a word, or None when it has letters GSM-7 lacks."""
    out: list[str] = []
    for ch in text:
        g = _gsm_char(ch)
        if g is None:
            return None
        out.append(g)
    return " ".join("".join(out).split())


def _as_ucs2(text: str) -> str:
    """`text` for a UCS-2 message: kept as written, on one line, without control characters."""
    kept = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C")
    return " ".join(kept.split())


def gsm7_length(text: str) -> int:
    """Septets `text` takes (extension characters such as `€` and `[` count twice)."""
    return sum(2 if ch in _GSM_EXT else 1 for ch in text)


def ucs2_length(text: str) -> int:
    """UTF-16 code units `text` takes (an emoji outside the BMP counts twice)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in its alphabet, else UCS-2."""
    return "GSM-7" if all(ch in _GSM_BASIC or ch in _GSM_EXT for ch in text) else "UCS-2"


def _units(text: str, encoding: Encoding) -> int:
    return gsm7_length(text) if encoding == "GSM-7" else ucs2_length(text)


def segment_budget(encoding: Encoding, max_segments: int) -> int:
    """Units that fit in `max_segments` segments: 160/306 septets, or 70/134 UCS-2 characters."""
    single, split = _SEGMENT[encoding]
    return single if max_segments <= 1 else split * max_segments


def segments(text: str) -> int:
    """Segments a carrier bills for `text`."""
    encoding = encoding_of(text)
    units = _units(text, encoding)
    single, split = _SEGMENT[encoding]
    return 1 if units <= single else -(-units // split)


def _fit(text: str, budget: int, encoding: Encoding, ellipsis: str = _ELLIPSIS) -> str:
    """`text` cut to at most `budget` units, ending in `ellipsis` when it had to be cut."""
    if _units(text, encoding) <= budget:
        return text
    room = budget - _units(ellipsis, encoding)
    if room <= 0:
        return ""
    out: list[str] = []
    used = 0
    for ch in text:
        cost = _units(ch, encoding)
        if used + cost > room:
            break
        out.append(ch)
        used += cost
    return "".join(out).rstrip() + ellipsis
