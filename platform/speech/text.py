"""English text front-end: validation, normalisation, SSML-lite and chunking.

Pipeline: ``prepare(text)`` = validate -> parse (plain or <speak>) -> normalise
each segment -> split into chunks of <= max_chunk_chars. Framework-free.
"""

from __future__ import annotations

import math
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from typing import Any

from speech.engines.base import CONTROL_RANGES
from speech.errors import CodedError

DEFAULT_MAX_LENGTH = 5000
DEFAULT_MAX_CHUNK_CHARS = 250
MAX_BREAK_MS = 10_000
# SSML prosody may not leave the ranges of the request controls it scales.
RATE_RANGE = CONTROL_RANGES["speed"]
PITCH_RANGE_ST = CONTROL_RANGES["pitch"]


class TextError(CodedError):
    pass


@dataclass(frozen=True)
class Segment:
    """A run of text sharing prosody. ``rate``/``pitch_st`` are relative overrides."""

    text: str
    rate: float = 1.0
    pitch_st: float = 0.0
    pause_after_ms: int = 0

    @property
    def overrides(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.rate != 1.0:
            out["rate"] = self.rate
        if self.pitch_st != 0.0:
            out["pitch_st"] = self.pitch_st
        return out


# ------------------------------------------------------------------ numbers

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
MAX_SPOKEN_INT = 10**15  # beyond this, digits are read one by one


def _below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = []
    if hundreds:
        parts.append(f"{_ONES[hundreds]} hundred")
    if rest:
        if rest < 20:
            parts.append(_ONES[rest])
        else:
            tens, ones = divmod(rest, 10)
            parts.append(_TENS[tens] + (f"-{_ONES[ones]}" if ones else ""))
    return " ".join(parts)


def number_to_words(n: int) -> str:
    """Cardinal in US English without "and": 1234 -> one thousand two hundred thirty-four."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= MAX_SPOKEN_INT:
        return digits_to_words(str(n))
    if n < 1000:
        return _ONES[n] if n < 20 else _below_1000(n)
    parts = []
    for value, name in _SCALES:
        if n >= value:
            count, n = divmod(n, value)
            parts.append(f"{_below_1000(count)} {name}")
    if n:
        parts.append(_below_1000(n))
    return " ".join(parts)


def ordinal_to_words(n: int) -> str:
    words = number_to_words(n)
    head, sep, last = words.rpartition(" ")
    pre, hy, tail = last.rpartition("-")
    if tail in _ORDINAL_IRREGULAR:
        tail = _ORDINAL_IRREGULAR[tail]
    elif tail.endswith("y"):
        tail = tail[:-1] + "ieth"
    else:
        tail += "th"
    return f"{head}{sep}{pre}{hy}{tail}"


def digits_to_words(digits: str) -> str:
    return " ".join(_ONES[int(d)] for d in digits if d.isdigit())


def int_words(digits: str) -> str:
    """Cardinal for a digit string; very long ones never reach int() (CPython caps it)."""
    digits = digits.replace(",", "")
    if len(digits) > 15:
        return digits_to_words(digits)
    return number_to_words(int(digits))


def decimal_to_words(text: str) -> str:
    """'-3.14' -> 'minus three point one four'; '1,200' -> 'one thousand two hundred'."""
    text = text.replace(",", "")
    neg = text.startswith("-")
    text = text.lstrip("+-")
    whole, _, frac = text.partition(".")
    out = int_words(whole) if whole else "zero"
    if frac:
        out += " point " + digits_to_words(frac)
    return ("minus " + out) if neg else out


def year_to_words(y: int) -> str:
    """1905 -> nineteen oh five, 2000 -> two thousand, 2026 -> twenty twenty-six."""
    if y < 1000 or y >= 10000 or (2000 <= y <= 2009) or y % 1000 == 0:
        return number_to_words(y)
    hi, lo = divmod(y, 100)
    if lo == 0:
        return f"{number_to_words(hi)} hundred"
    if lo < 10:
        return f"{number_to_words(hi)} oh {number_to_words(lo)}"
    return f"{number_to_words(hi)} {number_to_words(lo)}"


def _plural_number_word(words: str) -> str:
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


# -------------------------------------------------------------- normaliser

_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_MONTH_ABBR = {m[:3].lower(): i + 1 for i, m in enumerate(_MONTHS)}
_MONTH_ABBR["sept"] = 9
_MONTH_RE = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)


def _month_num(name: str) -> int:
    key = name.lower().rstrip(".")
    return _MONTH_ABBR.get(key[:4] if key.startswith("sept") else key[:3], 0)


def _date_words(year: int | None, month: int, day: int) -> str:
    out = f"{_MONTHS[month - 1]} {ordinal_to_words(day)}"
    return out + (f", {year_to_words(year)}" if year is not None else "")


def _iso_date(m: re.Match) -> str:
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m[0]
    return _date_words(y, mo, d)


def _slash_date(m: re.Match) -> str:
    a, b, y = int(m[1]), int(m[2]), int(m[3])
    if len(m[3]) == 2:
        y += 2000 if y < 50 else 1900
    # US order (M/D/Y) unless the first field cannot be a month
    mo, d = (a, b) if a <= 12 else (b, a)
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m[0]
    return _date_words(y, mo, d)


def _month_name_date(m: re.Match) -> str:
    month = _month_num(m["mon"])
    day = int(m["day"])
    if not month or not 1 <= day <= 31:
        return m[0]
    return _date_words(int(m["year"]) if m["year"] else None, month, day)


def _day_month_date(m: re.Match) -> str:
    month = _month_num(m["mon"])
    day = int(m["day"])
    if not month or not 1 <= day <= 31:
        return m[0]
    out = f"the {ordinal_to_words(day)} of {_MONTHS[month - 1]}"
    return out + (f", {year_to_words(int(m['year']))}" if m["year"] else "")


def _ampm(s: str | None) -> str:
    if not s:
        return ""
    return " a m" if s.lower().startswith("a") else " p m"


def _time(m: re.Match) -> str:
    h, mi = int(m["h"]), int(m["m"])
    if h > 23 or mi > 59:
        return m[0]
    suffix = _ampm(m["ampm"])
    hw = number_to_words(h)
    if mi == 0:
        if suffix:
            return hw + suffix
        return f"{hw} hundred" if h == 0 or h > 12 else f"{hw} o'clock"
    mw = f"oh {number_to_words(mi)}" if mi < 10 else number_to_words(mi)
    return f"{hw} {mw}{suffix}"


def _hour_ampm(m: re.Match) -> str:
    h = int(m[1])
    return number_to_words(h) + _ampm(m[2]) if 1 <= h <= 12 else m[0]


_CURRENCY = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "sen", "sen"),
}
_SCALE_WORDS = {"k": "thousand", "m": "million", "bn": "billion", "b": "billion"}


def _money(symbol: str, amount: str, scale: str | None) -> str:
    one, many, sub_one, sub_many = _CURRENCY[symbol]
    amount = amount.replace(",", "")
    if scale:
        scale = _SCALE_WORDS.get(scale.lower(), scale.lower())
        return f"{decimal_to_words(amount)} {scale} {many}"
    whole, _, frac = amount.partition(".")
    if len(frac) > 2:
        return f"{decimal_to_words(amount)} {many}"
    units = int(whole[-16:] or "0")  # only used for singular/plural and zero checks
    cents = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if units or not cents:
        parts.append(f"{int_words(whole or '0')} {one if units == 1 else many}")
    if cents:
        parts.append(f"{number_to_words(cents)} {sub_one if cents == 1 else sub_many}")
    return " and ".join(parts)


# final "." is kept when it also ends the sentence
_AMPM = r"[aApP]\.?[mM](?:\.(?!\s+[A-Z]|\s*$))?(?![A-Za-z])"
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SCALE_RE = r"(?:thousand|million|billion|trillion|bn|[kKmMbB])\b"

# (pattern, replacement) in order; earlier rules must consume digits that later
# generic number rules would otherwise mangle (dates before times before numbers).
_RULES: list[tuple[re.Pattern, Any]] = [
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), _iso_date),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b"), _slash_date),
    (
        re.compile(
            rf"\b(?P<mon>{_MONTH_RE})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b"
            r"(?:,?\s+(?P<year>\d{4})\b)?"
        ),
        _month_name_date,
    ),
    (
        re.compile(
            rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{_MONTH_RE})\b\.?"
            r"(?:,?\s+(?P<year>\d{4})\b)?"
        ),
        _day_month_date,
    ),
    (
        re.compile(
            r"\b(?P<h>\d{1,2}):(?P<m>\d{2})(?::\d{2})?"
            rf"(?:\s*(?P<ampm>{_AMPM}))?"
        ),
        _time,
    ),
    (re.compile(rf"\b(\d{{1,2}})\s*({_AMPM})"), _hour_ampm),
    (
        re.compile(rf"([$€£¥])\s?({_NUM})(?:\s?({_SCALE_RE}))?"),
        lambda m: _money(m[1], m[2], m[3]),
    ),
    (
        re.compile(rf"(?<![\w.])({_NUM})\s?({_SCALE_RE})?\s?([€£])"),
        lambda m: _money(m[3], m[1], m[2]),
    ),
    (
        re.compile(rf"(?<![\w.])(-?)({_NUM})\s?%"),
        lambda m: decimal_to_words(m[1] + m[2]) + " percent",
    ),
    (
        re.compile(r"\b(\d{2})?(\d)0s\b"),
        lambda m: _plural_number_word(
            year_to_words(int(m[1] + m[2] + "0")) if m[1] else number_to_words(int(m[2]) * 10)
        ),
    ),
    # bare years only after a preposition that signals one ("since 1905")
    (
        re.compile(
            r"\b((?:in|since|by|from|until|till|before|after|during|year|circa)\s+)"
            r"(1[1-9]\d\d|20\d\d)\b(?![,.]\d)",
            re.IGNORECASE,
        ),
        lambda m: m[1] + year_to_words(int(m[2])),
    ),
    (
        re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+)(st|nd|rd|th)\b", re.IGNORECASE),
        lambda m: _ordinal_digits(m[1]),
    ),
    (re.compile(r"#\s?(\d+)\b"), lambda m: "number " + int_words(m[1])),
    (
        re.compile(r"\bNo\.\s?(\d+)\b"),
        lambda m: "number " + int_words(m[1]),
    ),
    # Generic numbers: minus only when it is a sign (not a hyphen/range) and the
    # number is not glued to letters (MP3, COVID-19 are left to the phonemiser).
    (
        re.compile(rf"(?<![^\s(\[])-(?:{_NUM})(?!\.\d)(?!\w)"),
        lambda m: decimal_to_words(m[0]),
    ),
    (
        re.compile(rf"(?<![\w.])({_NUM})(?!\.\d)(?![A-Za-z\d])"),
        lambda m: _plain_number(m[1]),
    ),
    (re.compile(r"(?<![\w.])\.(\d+)\b"), lambda m: "point " + digits_to_words(m[1])),
]


def _ordinal_digits(digits: str) -> str:
    digits = digits.replace(",", "")
    return ordinal_to_words(int(digits)) if len(digits) <= 15 else digits_to_words(digits)


def _plain_number(s: str) -> str:
    digits = s.replace(",", "")
    whole = digits.partition(".")[0]
    if len(whole) > 1 and whole.startswith("0") and "," not in s:
        # leading zeros (codes, "007") are read digit by digit
        out = digits_to_words(whole)
        frac = digits.partition(".")[2]
        return out + (" point " + digits_to_words(frac) if frac else "")
    return decimal_to_words(digits)


# Abbreviation -> (expansion, may end a sentence). Case-sensitive on purpose.
_ABBREVIATIONS: dict[str, tuple[str, bool]] = {
    "Mr.": ("Mister", False),
    "Mrs.": ("Missus", False),
    "Ms.": ("Miz", False),
    "Prof.": ("Professor", False),
    "Gen.": ("General", False),
    "Capt.": ("Captain", False),
    "Sgt.": ("Sergeant", False),
    "Rev.": ("Reverend", False),
    "Hon.": ("Honorable", False),
    "Jr.": ("Junior", True),
    "Sr.": ("Senior", True),
    "Ave.": ("Avenue", True),
    "Rd.": ("Road", True),
    "Blvd.": ("Boulevard", True),
    "Mt.": ("Mount", False),
    "Ft.": ("Fort", False),
    "vs.": ("versus", False),
    "etc.": ("et cetera", True),
    "e.g.": ("for example", False),
    "i.e.": ("that is", False),
    "approx.": ("approximately", False),
    "Inc.": ("Incorporated", True),
    "Ltd.": ("Limited", True),
    "Corp.": ("Corporation", True),
    "Co.": ("Company", True),
    "Dept.": ("Department", True),
    "Univ.": ("University", True),
    "min.": ("minutes", True),
    "hrs.": ("hours", True),
}
_ABBR_RE = re.compile(
    r"(?<![\w.])("
    + "|".join(re.escape(a) for a in sorted(_ABBREVIATIONS, key=len, reverse=True))
    + r")(?=\s|$|[,;:!?)\"'])"
)
# Ambiguous pair: title before a capitalised name, street type otherwise.
_DR_ST_RE = re.compile(r"(?<![\w.])(Dr|St)\.(\s+(?=[A-Z])|)")


def _expand_abbr(m: re.Match) -> str:
    word, can_end = _ABBREVIATIONS[m[1]]
    rest = m.string[m.end() :]
    # Keep the full stop when the abbreviation also ends the sentence.
    if can_end and (not rest.strip() or re.match(r"\s+[A-Z\"']", rest)):
        return word + "."
    return word


_STREET_CONTEXT = re.compile(
    r"(?:\b\d+[a-z]*|\b(?:on|at|in|off|to|from|near|of))\s+(?:[A-Z][\w'-]*\s+){1,3}$"
)


def _expand_dr_st(m: re.Match) -> str:
    title = {"Dr": "Doctor", "St": "Saint"}
    place = {"Dr": "Drive", "St": "Street"}
    if m[2]:  # followed by a capitalised word: "Dr. Smith", "St. Louis" ...
        # ... unless it closes an address: "on Main St. The next ..."
        if _STREET_CONTEXT.search(m.string[: m.start()]):
            return place[m[1]] + "." + m[2]
        return title[m[1]] + m[2]
    return place[m[1]] + "."


_SYMBOLS = [
    (re.compile(r"\s*&\s*"), " and "),
    (re.compile(r"(?<=\s)\+(?=\s)"), "plus"),
    (re.compile(r"(?<=\s)=(?=\s)"), "equals"),
    (re.compile(r"[\u2018\u2019]"), "'"),
    (re.compile(r"[\u201c\u201d]"), '"'),
    (re.compile(r"[\u2013\u2014]"), ", "),  # dashes: a short pause reads better
    (re.compile(r"\u2026"), "..."),
]


def normalize_text(text: str) -> str:
    """Expand numbers, money, dates, times and abbreviations into words."""
    text = unicodedata.normalize("NFKC", text)
    for pat, rep in _SYMBOLS:
        text = pat.sub(rep, text)
    text = _DR_ST_RE.sub(_expand_dr_st, text)
    text = _ABBR_RE.sub(_expand_abbr, text)
    for pat, rep in _RULES:
        text = pat.sub(rep, text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r" ([,.;:!?])", r"\1", text)
    return text.strip()


# ------------------------------------------------------------------ splitting

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_CLAUSE_SPLIT = re.compile(r"(?<=[,;:])\s+")


def _pack(pieces: list[str], max_chars: int) -> list[str]:
    out: list[str] = []
    cur = ""
    for p in pieces:
        cand = f"{cur} {p}" if cur else p
        if len(cand) <= max_chars:
            cur = cand
        else:
            if cur:
                out.append(cur)
            cur = p
    if cur:
        out.append(cur)
    return out


def _split_words(text: str, max_chars: int) -> list[str]:
    words: list[str] = []
    for w in text.split():
        # a single over-long token is cut hard; nothing else can be done with it
        words += [w[i : i + max_chars] for i in range(0, len(w), max_chars)]
    return _pack(words, max_chars)


def split_sentences(text: str, max_chars: int = DEFAULT_MAX_CHUNK_CHARS) -> list[str]:
    """Split into sentences; long ones are cut at , ; : then at word boundaries.

    Every returned chunk is non-empty and <= max_chars.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    out: list[str] = []
    for sent in _SENTENCE_SPLIT.split(text):
        sent = " ".join(sent.split())
        if not sent:
            continue
        if len(sent) <= max_chars:
            out.append(sent)
            continue
        clauses: list[str] = []
        for clause in _CLAUSE_SPLIT.split(sent):
            clauses += [clause] if len(clause) <= max_chars else _split_words(clause, max_chars)
        out += _pack(clauses, max_chars)
    return out


# ------------------------------------------------------------------- SSML-lite

_SSML_HINT = re.compile(r"<\s*/?\s*(speak|break|prosody)\b", re.IGNORECASE)
_RATE_WORDS = {
    "x-slow": 0.6,
    "slow": 0.8,
    "medium": 1.0,
    "default": 1.0,
    "fast": 1.25,
    "x-fast": 1.6,
}
_PITCH_WORDS = {
    "x-low": -4.0,
    "low": -2.0,
    "medium": 0.0,
    "default": 0.0,
    "high": 2.0,
    "x-high": 4.0,
}
_BREAK_STRENGTH = {
    "none": 0,
    "x-weak": 100,
    "weak": 200,
    "medium": 400,
    "strong": 700,
    "x-strong": 1000,
}
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SUPPORTED_ELEMENTS = ("speak", "break", "prosody")


def _ssml_error(msg: str) -> TextError:
    return TextError("invalid_ssml", msg)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _check_attrs(el: ET.Element, allowed: set[str]) -> None:
    for key in el.attrib:
        if key not in allowed:
            raise _ssml_error(
                f"unsupported attribute {_local(key)!r} on <{_local(el.tag)}>; "
                f"allowed: {', '.join(sorted(_local(a) for a in allowed)) or 'none'}"
            )


def parse_break_ms(el: ET.Element) -> int:
    _check_attrs(el, {"time", "strength"})
    if (el.text or "").strip() or len(el):
        raise _ssml_error("<break/> must be empty")
    if "time" in el.attrib:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", el.attrib["time"])
        if not m:
            raise _ssml_error(f"bad break time {el.attrib['time']!r}; use e.g. '500ms' or '1.5s'")
        ms = float(m[1]) * (1000 if m[2] == "s" else 1)
    else:
        strength = el.attrib.get("strength", "medium")
        if strength not in _BREAK_STRENGTH:
            raise _ssml_error(
                f"bad break strength {strength!r}; allowed: {', '.join(_BREAK_STRENGTH)}"
            )
        ms = _BREAK_STRENGTH[strength]
    if ms > MAX_BREAK_MS:
        raise _ssml_error(f"break of {ms:g} ms exceeds the {MAX_BREAK_MS} ms maximum")
    return int(round(ms))


def parse_rate(value: str) -> float:
    v = value.strip()
    if v in _RATE_WORDS:
        r = _RATE_WORDS[v]
    elif m := re.fullmatch(r"([+-])(\d+(?:\.\d+)?)%", v):
        r = 1.0 + (1 if m[1] == "+" else -1) * float(m[2]) / 100
    elif m := re.fullmatch(r"(\d+(?:\.\d+)?)%", v):
        r = float(m[1]) / 100
    elif re.fullmatch(r"\d+(?:\.\d+)?", v):
        r = float(v)
    else:
        raise _ssml_error(
            f"bad prosody rate {value!r}; use {', '.join(_RATE_WORDS)}, '80%', '+10%' or '0.8'"
        )
    if not RATE_RANGE[0] <= r <= RATE_RANGE[1]:
        raise _ssml_error(f"prosody rate {value!r} is outside {RATE_RANGE[0]}..{RATE_RANGE[1]}x")
    return r


def parse_pitch(value: str) -> float:
    v = value.strip()
    if v in _PITCH_WORDS:
        st = _PITCH_WORDS[v]
    elif m := re.fullmatch(r"([+-]?\d+(?:\.\d+)?)st", v):
        st = float(m[1])
    elif m := re.fullmatch(r"([+-])(\d+(?:\.\d+)?)%", v):
        factor = 1.0 + (1 if m[1] == "+" else -1) * float(m[2]) / 100
        if factor <= 0:
            raise _ssml_error(f"bad prosody pitch {value!r}")
        st = 12 * math.log2(factor)
    else:
        raise _ssml_error(
            f"bad prosody pitch {value!r}; use {', '.join(_PITCH_WORDS)}, '+2st' or '-10%'"
            " (absolute Hz values are not supported)"
        )
    lo, hi = PITCH_RANGE_ST
    if not lo <= st <= hi:
        raise _ssml_error(f"prosody pitch {value!r} is outside {lo:+g}..{hi:+g} semitones")
    return st


class _SegmentBuilder:
    def __init__(self) -> None:
        self.segments: list[Segment] = []

    def text(self, s: str | None, rate: float, pitch: float) -> None:
        if not s or not s.strip():
            return
        s = " ".join(s.split())
        last = self.segments[-1] if self.segments else None
        if last and not last.pause_after_ms and (last.rate, last.pitch_st) == (rate, pitch):
            self.segments[-1] = replace(last, text=f"{last.text} {s}".strip())
        else:
            self.segments.append(Segment(s, rate, pitch))

    def pause(self, ms: int) -> None:
        if not self.segments:
            self.segments.append(Segment("", pause_after_ms=ms))
        else:
            last = self.segments[-1]
            self.segments[-1] = replace(last, pause_after_ms=last.pause_after_ms + ms)


def parse_ssml(text: str) -> list[Segment]:
    """Plain text -> one segment; ``<speak>`` -> prosody/break-aware segments.

    Unsupported elements/attributes raise ``invalid_ssml`` instead of being dropped.
    """
    stripped = text.strip()
    if not stripped.startswith("<speak"):
        if _SSML_HINT.search(text):
            raise _ssml_error("SSML tags must be wrapped in a <speak> root element")
        return [Segment(stripped)]
    if re.search(r"<!(DOCTYPE|ENTITY)", stripped, re.IGNORECASE):
        # no DTDs: closes entity-expansion and external-entity attacks
        raise _ssml_error("DOCTYPE/ENTITY declarations are not allowed")
    try:
        # stdlib parser is safe here: DTDs (entity expansion, external entities)
        # were rejected above and expat never fetches anything
        root = ET.fromstring(stripped)  # noqa: S314
    except ET.ParseError as e:
        raise _ssml_error(f"malformed XML: {e}") from None
    if _local(root.tag) != "speak":
        raise _ssml_error("root element must be <speak>")
    _check_attrs(root, {"version", _XML_LANG})
    lang = root.attrib.get(_XML_LANG)
    if lang and not lang.lower().startswith("en"):
        raise _ssml_error(f"xml:lang {lang!r} is not supported; only English (en-*)")

    builder = _SegmentBuilder()

    def walk(el: ET.Element, rate: float, pitch: float) -> None:
        builder.text(el.text, rate, pitch)
        for child in el:
            tag = _local(child.tag)
            if tag == "break":
                builder.pause(parse_break_ms(child))
            elif tag == "prosody":
                _check_attrs(child, {"rate", "pitch"})
                r = rate * parse_rate(child.attrib["rate"]) if "rate" in child.attrib else rate
                p = pitch + parse_pitch(child.attrib["pitch"]) if "pitch" in child.attrib else pitch
                if not RATE_RANGE[0] <= r <= RATE_RANGE[1]:
                    raise _ssml_error(f"nested prosody rate {r:.2f}x is out of range")
                if not PITCH_RANGE_ST[0] <= p <= PITCH_RANGE_ST[1]:
                    raise _ssml_error(f"nested prosody pitch {p:+.1f}st is out of range")
                walk(child, r, p)
            else:
                raise _ssml_error(
                    f"unsupported element <{tag}>; supported: {', '.join(SUPPORTED_ELEMENTS)}"
                )
            builder.text(child.tail, rate, pitch)

    walk(root, 1.0, 0.0)
    return builder.segments


# ------------------------------------------------------------------ validation

_SPEAKABLE = re.compile(r"[^\W_]", re.UNICODE)  # any letter or digit


def validate_text(text: Any, max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """Length is counted on the raw input, markup included (bounds parser work)."""
    if not isinstance(text, str):
        raise TextError("text_invalid", "text must be a string")
    if not text.strip():
        raise TextError("text_empty", "text is empty")
    if len(text) > max_length:
        raise TextError(
            "text_too_long", f"text has {len(text)} characters; the maximum is {max_length}"
        )
    if "\x00" in text:
        raise TextError("text_invalid", "text contains NUL characters")
    return text


def prepare(
    text: str,
    max_chunk_chars: int = DEFAULT_MAX_CHUNK_CHARS,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> list[Segment]:
    """Validate, parse, normalise and chunk. Each chunk is <= max_chunk_chars.

    A chunk with empty text carries only a pause (leading ``<break>``).
    """
    validate_text(text, max_length)
    chunks: list[Segment] = []
    for seg in parse_ssml(text):
        parts = split_sentences(normalize_text(seg.text), max_chunk_chars) if seg.text else []
        if not parts:
            if seg.pause_after_ms:
                chunks.append(Segment("", pause_after_ms=seg.pause_after_ms))
            continue
        for i, part in enumerate(parts):
            pause = seg.pause_after_ms if i == len(parts) - 1 else 0
            chunks.append(Segment(part, seg.rate, seg.pitch_st, pause))
    if not any(_SPEAKABLE.search(c.text) for c in chunks):
        raise TextError("text_unspeakable", "text has no speakable content")
    return chunks
