"""CSV export of records, streamed a batch at a time."""

import csv
import io
from collections.abc import Iterator

from sqlalchemy.orm import Session

from ..record_queries import RecordFilter, iter_records

CSV_COLUMNS = ("id", "captured_at", "received_at", "camera_id", "plate_number", "plate_normalized",
               "province", "confidence", "location", "latitude", "longitude", "vehicle_type",
               "vehicle_color", "direction", "blacklisted", "event_id", "image_sha256")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return str(value)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    # A spreadsheet would run a cell that starts like a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def records_csv(session: Session, criteria: RecordFilter) -> Iterator[str]:
    """Yield the CSV of the matching records, header first, newest first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for count, record in enumerate(iter_records(session, criteria), start=1):
        writer.writerow([_cell(getattr(record, column)) for column in CSV_COLUMNS])
        if count % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
