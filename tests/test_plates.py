import pytest

from lprserver.plates import MAX_PLATE_LENGTH, is_valid_normalized, match_type, normalize_plate


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("กข1234", "กข1234"),
        ("กข 1234", "กข1234"),
        ("กข-1234", "กข1234"),
        ("กข๑๒๓๔", "กข1234"),
        ("กข.1234", "กข1234"),
        ("  กข  ๑๒-๓๔ ", "กข1234"),
        ("1กข 234", "1กข234"),
        ("abc-1234", "ABC1234"),
        ("Abc 12.34", "ABC1234"),
        ("ก\u200bข1234", "กข1234"),  # zero-width space typed on a phone
        ("กข\u00a01234", "กข1234"),  # no-break space
        ("กข\u20131234", "กข1234"),  # en dash
        ("๙๙๙๙", "9999"),
        ("ฒษ5678", "ฒษ5678"),
    ],
)
def test_normalize_plate(raw, normalized):
    assert normalize_plate(raw) == normalized


def test_thai_vowels_and_tone_marks_are_kept():
    assert normalize_plate("กิ่ง 12") == "กิ่ง12"


def test_normalization_is_nfc():
    decomposed = "e\u0301"  # e + combining acute
    assert normalize_plate(decomposed) == "\u00e9"


def test_only_ascii_latin_is_upper_cased():
    assert normalize_plate("straße") == "STRAßE"


def test_normalizing_twice_changes_nothing():
    for plate in ["กข 1234", "abc-1234", "๑กข๒๓๔"]:
        once = normalize_plate(plate)
        assert normalize_plate(once) == once


@pytest.mark.parametrize("plate", ["", " - . ", "\u200b"])
def test_plates_that_normalise_to_nothing_are_invalid(plate):
    assert not is_valid_normalized(normalize_plate(plate))


def test_plate_length_limit():
    assert is_valid_normalized("ก" * MAX_PLATE_LENGTH)
    assert not is_valid_normalized("ก" * (MAX_PLATE_LENGTH + 1))


def test_control_characters_are_invalid():
    assert not is_valid_normalized(normalize_plate("กข\x001234"))


def test_match_type_tells_exact_from_normalized():
    assert match_type("กข1234", "กข1234") == "exact"
    assert match_type("กข1234", "กข 1234") == "normalized"


# --- Parsing a read's plate and province (docs/thai-plates.md) -------------------------------------

from lprserver.plates import (  # noqa: E402
    PROVINCES,
    find_province,
    lookalike_key,
    parse_plate,
    pattern_regex,
    plate_format,
    province_by_code,
    similar_regexes,
    within_one_edit,
)

BKK, CM = ("กรุงเทพมหานคร", "TH-10"), ("เชียงใหม่", "TH-50")

# (plate text, province field) → (plate_normalized, province, province_code, plate_format)
PARSING = [
    # The province in the text, where cameras put it.
    (("1กข 1234 กรุงเทพมหานคร", None), ("1กข1234", *BKK, "th_car")),
    (("กข-1234 เชียงใหม่", None), ("กข1234", *CM, "th_car")),
    (("1กข1234 กทม", None), ("1กข1234", *BKK, "th_car")),
    (("1กข 1234\nกรุงเทพมหานคร", None), ("1กข1234", *BKK, "th_car")),
    (("1กข1234กรุงเทพมหานคร", None), ("1กข1234", *BKK, "th_car")),
    (("กข 1234 กรุงเทพฯ", None), ("กข1234", *BKK, "th_car")),
    (("กข 1234 กรุงเทพ", None), ("กข1234", *BKK, "th_car")),
    (("กข 1234 กท", None), ("กข1234", *BKK, "th_car")),
    (("กข 1234 กรุงเทพ มหานคร", None), ("กข1234", *BKK, "th_car")),
    (("กข๑๒๓๔ อยุธยา", None), ("กข1234", "พระนครศรีอยุธยา", "TH-14", "th_car")),
    (("ฒษ 5678 โคราช", None), ("ฒษ5678", "นครราชสีมา", "TH-30", "th_car")),
    (("กข 1234 Chiang Mai", None), ("กข1234", *CM, "th_car")),
    (("กข 1234 CHIANG MAI", None), ("กข1234", *CM, "th_car")),
    (("กข 1234 chiangmai", None), ("กข1234", *CM, "th_car")),
    (("กข1234 th-50", None), ("กข1234", *CM, "th_car")),
    (("กข 1234 เบตง", None), ("กข1234", "เบตง", "TH-95", "th_car")),
    (("กข 1234 ยะลา", None), ("กข1234", "ยะลา", "TH-95", "th_car")),
    (("กข 1234 น่าน", None), ("กข1234", "น่าน", "TH-55", "th_car")),
    (("กข 1234\r\nภูเก็ต", None), ("กข1234", "ภูเก็ต", "TH-83", "th_car")),
    (("กข 1234 - ภูเก็ต", None), ("กข1234", "ภูเก็ต", "TH-83", "th_car")),
    (("กรุงเทพมหานคร 1กข 1234", None), ("1กข1234", *BKK, "th_car")),
    # A motorcycle plate read line by line: series, province, number.
    (("1กข\nกรุงเทพมหานคร\n123", None), ("1กข123", *BKK, "th_car")),
    (("กขค เชียงใหม่ 99", None), ("กขค99", *CM, "th_car")),
    # The province field: Thai, another spelling, English in any case, the code.
    (("กข 1234", "กรุงเทพมหานคร"), ("กข1234", *BKK, "th_car")),
    (("กข 1234", "กทม"), ("กข1234", *BKK, "th_car")),
    (("กข 1234", "Bangkok"), ("กข1234", *BKK, "th_car")),
    (("กข 1234", "bangkok"), ("กข1234", *BKK, "th_car")),
    (("กข 1234", "  CHIANG mai "), ("กข1234", *CM, "th_car")),
    (("กข 1234", "TH-10"), ("กข1234", *BKK, "th_car")),
    (("กข 1234", "th-50"), ("กข1234", *CM, "th_car")),
    (("กข 1234", "TH-95"), ("กข1234", "ยะลา", "TH-95", "th_car")),  # the code alone is Yala
    (("กข 1234", "เบตง"), ("กข1234", "เบตง", "TH-95", "th_car")),  # Betong only when written so
    (("กข 1234", "Betong"), ("กข1234", "เบตง", "TH-95", "th_car")),
    (("กข 1234", "Phra Nakhon Si Ayutthaya"), ("กข1234", "พระนครศรีอยุธยา", "TH-14", "th_car")),
    # The field wins over the text.
    (("1กข 1234 กรุงเทพมหานคร", "เชียงใหม่"), ("1กข1234", *CM, "th_car")),
    (("1กข 1234 กรุงเทพมหานคร", "Atlantis"), ("1กข1234", "Atlantis", None, "th_car")),
    # An unknown province is kept as sent, never an error.
    (("กข 1234", "Atlantis"), ("กข1234", "Atlantis", None, "th_car")),
    (("กข 1234", "TH-99"), ("กข1234", "TH-99", None, "th_car")),
    (("1กข 1234 ยะลาา", None), ("1กข1234", "ยะลาา", None, "th_car")),
    (("กข 1234", ""), ("กข1234", None, None, "th_car")),
    (("กข 1234", "   "), ("กข1234", None, None, "th_car")),
    # Formats.
    (("กข 1234", None), ("กข1234", None, None, "th_car")),
    (("ก 1", None), ("ก1", None, None, "th_car")),
    (("9กขค 1234", None), ("9กขค1234", None, None, "th_car")),
    (("70-1234", None), ("701234", None, None, "th_numeric")),
    (("70-1234 ชลบุรี", None), ("701234", "ชลบุรี", "TH-20", "th_numeric")),
    (("๗๐-๑๒๓๔", None), ("701234", None, None, "th_numeric")),
    (("ABC 1234", None), ("ABC1234", None, None, "other")),
    (("abc-1234", None), ("ABC1234", None, None, "other")),
    (("AB 123 CD", None), ("AB123CD", None, None, "other")),  # a Latin plate's letters are its own
    (("XYZTAK", None), ("XYZTAK", None, None, "other")),  # "Tak" is a province, but not after a Latin plate
    (("กขคง 1234", None), ("กขคง1234", None, None, "other")),  # four consonants
    (("กข 12345", None), ("กข12345", None, None, "other")),  # five digits
    (("0กข 1234", None), ("0กข1234", None, None, "other")),  # leading zero
    (("กรุงเทพมหานคร", None), ("กรุงเทพมหานคร", None, None, "other")),  # nothing but a province
]


@pytest.mark.parametrize(("sent", "kept"), PARSING, ids=[f"{t!r}|{f!r}" for (t, f), _ in PARSING])
def test_a_reads_plate_and_province_are_parsed(sent, kept):
    parsed = parse_plate(*sent)
    assert (parsed.normalized, parsed.province, parsed.province_code, parsed.format) == kept


def test_the_province_file_has_the_77_provinces_and_betong():
    codes = {p.code for p in PROVINCES}
    assert len(PROVINCES) == 78 and len(codes) == 77
    assert province_by_code("TH-95").name_th == "ยะลา" and find_province("เบตง").name_th == "เบตง"
    for province in PROVINCES:  # every province is found by each of its names
        assert find_province(province.name_en.lower()).code == province.code
        assert find_province(province.name_th).code == province.code
        assert parse_plate(f"กข 1234 {province.name_th}").province == province.name_th


def test_plate_format_of_a_normalised_plate():
    assert [plate_format(p) for p in ("1กข1234", "701234", "ABC123", "")] == ["th_car", "th_numeric",
                                                                              "other", "other"]


@pytest.mark.parametrize(("a", "b", "alike"), [
    ("กข1234", "กช1234", True), ("กข1234", "กฃ1234", True), ("กข1234", "กซ1234", True),
    ("คด1234", "ตฅ1234", True), ("บป1", "ษบ1", True), ("ผ1", "ฝ1", True), ("พฟ1", "ฬพ1", True),
    ("ถภ1", "ฎฏ1", True), ("ร1", "ธ1", True), ("ท1", "ฑ1", True), ("ล1", "ส1", True),
    ("AB0123", "AB0I23", True), ("AB0123", "AB0723", False), ("AB0123", "ABQ1Z3", True), ("O1", "DL", True), ("5G8", "S6B", True),
    ("กข1234", "กข1235", False), ("กข1234", "กค1234", False), ("กข1234", "กข123", False),
])
def test_lookalike_keys_are_equal_for_confused_characters(a, b, alike):
    assert (lookalike_key(a) == lookalike_key(b)) is alike


@pytest.mark.parametrize(("a", "b", "near"), [
    ("กข1234", "กข1234", True), ("กข1234", "กข123", True), ("กข1234", "กข12345", True),
    ("กข1234", "กข1934", True), ("กข1234", "ขก1234", False), ("กข1234", "กข12", False), ("", "a", True),
])
def test_one_edit(a, b, near):
    assert within_one_edit(a, b) is near and within_one_edit(b, a) is near


def test_similar_regexes_match_lookalikes_and_one_edit_from_five_characters():
    import re

    def similar(query, plate):
        return any(re.search(r, plate) for r in similar_regexes(query))

    assert similar("กข1234", "กช1234") and similar("กข1234", "กช12345") and similar("กข1234", "กช123")
    assert similar("กข1234", "กข1934") and not similar("กข1234", "กข19345")
    assert similar("กข12", "กซ12") and not similar("กข12", "กข1")  # one edit needs 5 characters
    assert similar("กข1234", "กข124")  # the deletion leaves 5 characters
    assert not similar("กข123", "กข12")  # ... but not 4
    assert similar("A.B*", "A.B*") and not similar("A.B*", "AXB*")  # regex characters are literal


def test_pattern_wildcards():
    assert pattern_regex("กข12*").fullmatch("กข1234") and pattern_regex("กข12*").fullmatch("กข12")
    assert pattern_regex("?ข1234").fullmatch("กข1234") and not pattern_regex("?ข1234").fullmatch("ข1234")
    assert not pattern_regex("กข12*").fullmatch("1กข1234") and pattern_regex("*1234").fullmatch("1กข1234")
