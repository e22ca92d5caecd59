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
