"""Plates (docs/thai-plates.md): normalisation, the province a read names, the plate's format and its
look-alike key. Pure functions, no I/O after the province file is read at import.

`data/thai_provinces.csv` lists the 77 provinces with their ISO 3166-2:TH codes, English names and the
other spellings cameras send (กทม for Bangkok), plus Betong (เบตง), whose plates carry its own name but
whose code is Yala's.
"""

import csv
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources

MAX_PLATE_LENGTH = 32

THAI_DIGITS = "๐๑๒๓๔๕๖๗๘๙"
# Separators people and cameras put inside plates; zero-width characters are
# common in Thai text typed on phones and must not split a plate in two.
_DROPPED = " \t\r\n\u00a0\u2007\u202f\u3000-\u2010\u2011\u2012\u2013\u2014\u2212.\u200b\u200c\u200d\ufeff"

_TABLE = {ord(thai): ord(arabic) for thai, arabic in zip(THAI_DIGITS, "0123456789", strict=True)}
_TABLE.update({ord(ch): None for ch in _DROPPED})
# Only ASCII letters are upper-cased: str.upper() would turn "ß" into "SS".
_TABLE.update({code: code - 32 for code in range(ord("a"), ord("z") + 1)})


def normalize_plate(text: str) -> str:
    """Return the comparable form of a plate: NFC, Thai digits as 0-9, no separators, Latin upper-case."""
    return unicodedata.normalize("NFC", text).translate(_TABLE)


def is_valid_normalized(plate: str) -> bool:
    """Tell whether a normalised plate is storable: 1 to MAX_PLATE_LENGTH characters, all printable."""
    return 0 < len(plate) <= MAX_PLATE_LENGTH and plate.isprintable()


def match_type(entry_text: str, read_text: str) -> str:
    """Say how a read matched an entry whose normalised plates are equal: 'exact' or 'normalized'."""
    return "exact" if entry_text == read_text else "normalized"


# --- Provinces --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Province:
    code: str  # ISO 3166-2:TH, "TH-10" …
    name_th: str  # the canonical Thai name, as the file spells it
    name_en: str


def _load_provinces() -> tuple[tuple[Province, ...], dict[str, Province], dict[str, Province]]:
    text = resources.files(__package__).joinpath("data/thai_provinces.csv").read_text("utf-8")
    provinces: list[Province] = []
    by_spelling: dict[str, Province] = {}
    by_code: dict[str, Province] = {}
    for row in csv.DictReader(text.splitlines()):
        province = Province(row["code"].strip(), row["name_th"].strip(), row["name_en"].strip())
        provinces.append(province)
        # A code's first row is the province it stands for: TH-95 alone is Yala (ยะลา), not Betong.
        by_code.setdefault(province.code, province)
        spellings = [province.name_th, province.name_en, *(row["also_written"] or "").split("|")]
        for spelling in filter(None, (s.strip() for s in spellings)):
            by_spelling.setdefault(normalize_plate(spelling), province)
    for code, province in by_code.items():  # "TH-10" normalises to "TH10"
        by_spelling.setdefault(normalize_plate(code), province)
    return tuple(provinces), by_spelling, by_code


PROVINCES, _BY_SPELLING, _BY_CODE = _load_provinces()
PROVINCE_CODES = tuple(sorted(_BY_CODE))
_LONGEST_SPELLING = max(map(len, _BY_SPELLING))


def province_by_code(code: str | None) -> Province | None:
    """The province an ISO 3166-2:TH code stands for (`TH-10`, any case), or None."""
    return _BY_CODE.get(code.strip().upper()) if code else None


def find_province(text: str | None) -> Province | None:
    """The province a camera's text names: the Thai name or another spelling (กทม), the English name in
    any case and spacing, or the code (`TH-10`); None when it names none."""
    return _BY_SPELLING.get(normalize_plate(text)) if text else None


# --- Parsing a read's plate -------------------------------------------------------------------------

TH_CAR = r"[1-9]?[ก-ฮ]{1,3}[0-9]{1,4}"  # optional leading digit, 1-3 Thai consonants, 1-4 digits
TH_NUMERIC = r"[0-9]+"  # commercial plates: digits only
PLATE_FORMATS = ("th_car", "th_numeric", "other")
_TH_CAR = re.compile(TH_CAR)
_TH_NUMERIC = re.compile(TH_NUMERIC)
_THAI_PLATE = re.compile(f"{TH_CAR}|{TH_NUMERIC}")
_THAI_LETTERS = re.compile(r"[\u0e01-\u0e4e]+")
_SERIES = re.compile(r"[1-9]?[ก-ฮ]{1,3}")  # a motorcycle plate's first line


@dataclass(frozen=True)
class ParsedPlate:
    """What a read's plate text and `province` field say (docs/thai-plates.md "What a record keeps")."""

    normalized: str  # the plate without its province
    province: str | None  # the canonical Thai name, or the text as sent when it is not recognised
    province_code: str | None  # TH-10 …, or None when unknown
    format: str  # th_car, th_numeric or other


def plate_format(normalized: str) -> str:
    """`th_car`, `th_numeric` or `other`, for a normalised plate without its province."""
    if _TH_CAR.fullmatch(normalized):
        return "th_car"
    return "th_numeric" if _TH_NUMERIC.fullmatch(normalized) else "other"


def parse_plate(text: str, province_field: str | None = None) -> ParsedPlate:
    """Split a read's plate text into the plate and the province it carries, wherever the camera put it
    (after a space, a hyphen or a newline, abbreviated, in English, or between a motorcycle plate's
    series and number); the `province` field, when sent, wins over the text's."""
    whole = normalize_plate(text)
    plate, named, as_sent = _split(whole)
    if named is None and as_sent:
        as_sent = _tail_as_sent(text, plate)
    field = (province_field or "").strip()
    if field:
        named, as_sent = find_province(field), field
    if named is not None:
        return ParsedPlate(plate, named.name_th, named.code, plate_format(plate))
    return ParsedPlate(plate, as_sent or None, None, plate_format(plate))


def _split(whole: str) -> tuple[str, Province | None, str | None]:
    """(plate, the province named, or the unrecognised Thai text after a Thai plate)."""
    if _THAI_PLATE.fullmatch(whole):
        return whole, None, None
    # The province after the plate, the longest spelling first: "1กข1234กรุงเทพมหานคร", "กข1234CHIANGMAI".
    for cut in range(max(1, len(whole) - _LONGEST_SPELLING), len(whole)):
        named = _BY_SPELLING.get(whole[cut:])
        if named is not None and (_THAI_PLATE.fullmatch(whole[:cut]) or not whole[cut].isascii()):
            return whole[:cut], named, None
    # Before the plate: "กรุงเทพมหานคร1กข1234".
    for cut in range(min(len(whole) - 1, _LONGEST_SPELLING), 0, -1):
        named = _BY_SPELLING.get(whole[:cut])
        if named is not None and _THAI_PLATE.fullmatch(whole[cut:]):
            return whole[cut:], named, None
    # Between a motorcycle plate's series and its number: "1กขกรุงเทพมหานคร123".
    digits = re.search(r"(?<![0-9])[0-9]{1,4}$", whole)
    if digits:
        for end in range(1, min(4, digits.start()) + 1):
            if _SERIES.fullmatch(whole[:end]):
                named = _BY_SPELLING.get(whole[end:digits.start()])
                if named is not None:
                    return whole[:end] + digits.group(), named, None
    # Thai letters after a Thai plate's digits are a province, even one the file does not know.
    head = _THAI_PLATE.match(whole)
    if head and _THAI_LETTERS.fullmatch(whole[head.end():]):
        return head.group(), None, whole[head.end():]
    return whole, None, None


def _tail_as_sent(text: str, plate: str) -> str:
    """The part of the raw text after the plate, as the camera wrote it."""
    text = unicodedata.normalize("NFC", text)
    for cut in range(len(text) + 1):
        if normalize_plate(text[:cut]) == plate:
            return text[cut:].strip(_DROPPED)
    return ""


# --- Look-alike keys ---------------------------------------------------------------------------------

# Characters OCR confuses on plates (docs/thai-plates.md "Look-alikes"): each class maps to its first.
LOOKALIKE_CLASSES = ("ขฃชซ", "คฅดต", "บปษ", "ผฝ", "พฟฬ", "ถภฎฏ", "รธ", "ทฑ", "ลส",
                     "0ODQ", "1IL", "2Z", "5S", "6G", "8B")
_KEY_TABLE = {ord(ch): ord(cls[0]) for cls in LOOKALIKE_CLASSES for ch in cls}
_CLASS_OF = {ch: cls for cls in LOOKALIKE_CLASSES for ch in cls}
FUZZY_MIN_LENGTH = 5  # one edit counts only when both plates have this many normalised characters


def lookalike_key(normalized: str) -> str:
    """The plate with each character replaced by its look-alike class: look-alikes have equal keys."""
    return normalized.translate(_KEY_TABLE)


def within_one_edit(a: str, b: str) -> bool:
    """Tell whether one character inserted, deleted or substituted turns `a` into `b` (or they are equal)."""
    if len(a) > len(b):
        a, b = b, a
    if len(b) - len(a) > 1:
        return False
    start = 0
    while start < len(a) and a[start] == b[start]:
        start += 1
    if len(a) == len(b):
        return a[start + 1:] == b[start + 1:]
    return a[start:] == b[start + 1:]


def similar_regexes(normalized: str) -> list[str]:
    """Anchored regular expressions whose union matches the plates similar to `normalized`: look-alikes,
    or (at FUZZY_MIN_LENGTH characters or more) one edit away from a look-alike. The syntax is common to
    Python's `re` and PostgreSQL's, so the database's trigram index answers each one."""
    parts = [_class_of(ch) for ch in normalized]
    found = ["^" + "".join(parts) + "$"]
    if len(parts) >= FUZZY_MIN_LENGTH:
        for i in range(len(parts) + 1):
            found.append("^" + "".join(parts[:i]) + "." + "".join(parts[i:]) + "$")  # one inserted
        for i in range(len(parts)):
            found.append("^" + "".join(parts[:i]) + "." + "".join(parts[i + 1:]) + "$")  # one substituted
        if len(parts) > FUZZY_MIN_LENGTH:
            for i in range(len(parts)):
                found.append("^" + "".join(parts[:i] + parts[i + 1:]) + "$")  # one deleted
    return list(dict.fromkeys(found))


def _class_of(ch: str) -> str:
    cls = _CLASS_OF.get(ch)
    if cls is not None:
        return f"[{cls}]"
    return "\\" + ch if ch in ".^$*+?{}[]\\|()" else ch


# --- Patterns ----------------------------------------------------------------------------------------

PATTERN_WILDCARDS = "*?"


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Compile a blacklist pattern (`*` any run, possibly empty, `?` one character) for the whole
    normalised plate."""
    parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.DOTALL)


def pattern_prefix(pattern: str) -> str:
    """The literal characters a pattern starts with, before its first wildcard."""
    for i, ch in enumerate(pattern):
        if ch in PATTERN_WILDCARDS:
            return pattern[:i]
    return pattern
