"""Blacklists for the benchmarks: realistic plates, exact-only or mixed, and a read that hits each entry.

A `mixed` list is as SPEC §9 "Speed" sets it: a quarter of the entries are not `exact` (look-alike,
one-edit and pattern entries); some entries and reads name a province, as cameras and operators do.
"""

import random
from dataclasses import dataclass

from lprserver.plates import FUZZY_MIN_LENGTH, LOOKALIKE_CLASSES, PROVINCES, lookalike_key

from .common import random_plate

MIXES = ("exact", "mixed")
# The share of each mode in a mixed list; the rest (75 %) is exact.
MIXED_SHARES = (("lookalike", 0.10), ("fuzzy", 0.10), ("pattern", 0.05))
PROVINCE_SHARE = 0.3  # of the entries that are not exact, and of their hits, that name a province
_CLASS_OF = {ch: cls for cls in LOOKALIKE_CLASSES for ch in cls}
_PROVINCES = [p for p in PROVINCES if p.name_th != "เบตง"]


@dataclass(frozen=True)
class BenchEntry:
    text: str  # as an operator types it: a pattern keeps its wildcards, a province may follow the plate
    match: str
    province_code: str | None
    hit: str  # a plate text a camera might send that this entry matches (look-alike, one edit away …)


def make_entries(count: int, mix: str = "exact", seed: int = 7) -> list[BenchEntry]:
    """`count` entries, each plate once per mode; exact-only or mixed (see MIXED_SHARES)."""
    rng = random.Random(seed)
    modes = [("exact", 1.0)] if mix == "exact" else [*MIXED_SHARES, ("exact", 1.0)]
    seen: set[tuple[str, str]] = set()
    entries: list[BenchEntry] = []
    wanted = {mode: round(share * count) for mode, share in modes[:-1]}
    wanted["exact"] = count - sum(wanted.values())
    for mode, number in wanted.items():
        made = 0
        while made < number:
            entry = _entry(rng, mode)
            key = (lookalike_key(entry.text.split(" ")[0]), mode)
            if key in seen:
                continue
            seen.add(key)
            entries.append(entry)
            made += 1
    rng.shuffle(entries)
    return entries


def _entry(rng: random.Random, mode: str) -> BenchEntry:
    province = rng.choice(_PROVINCES) if mode != "exact" and rng.random() < PROVINCE_SHARE else None
    if mode == "exact":
        plate = random_plate(rng)
        return BenchEntry(plate, mode, None, plate)
    if mode == "lookalike":
        plate = _plate_with(rng, lambda p: any(ch in _CLASS_OF for ch in p))
        hit = _lookalike_of(rng, plate)
    elif mode == "fuzzy":
        plate = _plate_with(rng, lambda p: len(p) >= FUZZY_MIN_LENGTH + 1)
        hit = _one_edit(rng, plate)
    else:
        plate, hit = _pattern(rng)
    text = f"{plate} {province.name_th}" if province else plate
    hit = f"{hit} {province.name_th}" if province else hit
    return BenchEntry(text, mode, province.code if province else None, hit)


def _plate_with(rng: random.Random, check) -> str:
    while True:
        plate = random_plate(rng)
        if check(plate):
            return plate


def _lookalike_of(rng: random.Random, plate: str) -> str:
    """The plate with one character a camera confuses read as another of its class (ข as ช, 0 as O)."""
    spots = [i for i, ch in enumerate(plate) if ch in _CLASS_OF]
    i = rng.choice(spots)
    other = rng.choice([ch for ch in _CLASS_OF[plate[i]] if ch != plate[i]])
    return plate[:i] + other + plate[i + 1:]


def _one_edit(rng: random.Random, plate: str) -> str:
    """One digit read wrong, dropped, or doubled: the misreads of a dirty or tilted plate."""
    spots = [i for i, ch in enumerate(plate) if ch.isdigit()]
    i = rng.choice(spots)
    roll = rng.random()
    if roll < 0.5:
        return plate[:i] + rng.choice([d for d in "0123456789" if d != plate[i]]) + plate[i + 1:]
    if roll < 0.75:
        return plate[:i] + plate[i + 1:]
    return plate[:i] + plate[i] + plate[i:]


def _pattern(rng: random.Random) -> tuple[str, str]:
    """A pattern as operators write them, and a plate it matches: a series and the first digits
    (`กข12*`), one digit unknown (`1กข?234`), the first character unknown (`?ข1234`), or the four
    digits of any series (`*1234`)."""
    plate = _plate_with(rng, lambda p: sum(ch.isdigit() for ch in p) >= 3 and not p[:2].isascii())
    digits = next(i for i, ch in enumerate(plate) if ch.isdigit() and i > 0)
    kind = rng.random()
    if kind < 0.5:
        cut = digits + rng.randint(1, 2)
        return plate[:cut] + "*", plate[:cut] + "".join(rng.choices("0123456789", k=rng.randint(0, 2)))
    if kind < 0.8:
        i = rng.randrange(digits, len(plate))
        return plate[:i] + "?" + plate[i + 1:], plate[:i] + rng.choice("0123456789") + plate[i + 1:]
    if kind < 0.95 or len(plate) - digits < 4:
        return "?" + plate[1:], rng.choice("กขคงจชซดตบปพมรลวสห") + plate[1:]
    return "*" + plate[digits:], rng.choice("กขคงจชซดตบปพมรลวสห") + rng.choice("กขคงจ") + plate[digits:]
