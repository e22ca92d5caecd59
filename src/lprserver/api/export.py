"""CSV export of records over the API: the records page's export, in UTC, without a BOM."""

from collections.abc import Iterator

from sqlalchemy.orm import Session

from ..records import CSV_COLUMNS as PAGE_CSV_COLUMNS
from ..records import RecordFilter, export_csv
from ..sites import EVERYWHERE, Scope

# The API's columns in the order they were published (the page's export puts event_id last); the page's
# columns added since (province_code, plate_format) follow, so a program reading by position still works.
PUBLISHED_COLUMNS = ("id", "captured_at", "received_at", "camera_id", "plate_number", "plate_normalized",
                     "province", "confidence", "location", "latitude", "longitude", "vehicle_type",
                     "vehicle_color", "direction", "blacklisted", "event_id", "image_sha256")
CSV_COLUMNS = PUBLISHED_COLUMNS + tuple(c for c in PAGE_CSV_COLUMNS if c not in PUBLISHED_COLUMNS)


def records_csv(session: Session, criteria: RecordFilter, *, scope: Scope = EVERYWHERE) -> Iterator[str]:
    """Yield the CSV of the matching records (of the cameras `scope` sees), header first, newest first,
    times in UTC."""
    return export_csv(session, criteria, "UTC", columns=CSV_COLUMNS, bom=False, scope=scope)
