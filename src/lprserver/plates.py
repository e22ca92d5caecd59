"""Plate normalisation (README "The pages": how plates are compared): pure functions, no I/O."""

import unicodedata

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
