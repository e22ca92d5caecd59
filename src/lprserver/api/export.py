"""CSV export of records over the API: the records page's export, in UTC, without a BOM."""

from collections.abc import Iterator

from sqlalchemy.orm import Session

from ..records import RecordFilter, export_csv

# The API's column order since it was published (the page's export puts event_id last).
CSV_COLUMNS = ("id", "captured_at", "received_at", "camera_id", "plate_number", "plate_normalized",
               "province", "confidence", "location", "latitude", "longitude", "vehicle_type",
               "vehicle_color", "direction", "blacklisted", "event_id", "image_sha256")


def records_csv(session: Session, criteria: RecordFilter) -> Iterator[str]:
    """Yield the CSV of the matching records, header first, newest first, times in UTC."""
    return export_csv(session, criteria, "UTC", columns=CSV_COLUMNS, bom=False)
