"""Which database failures mean "send it again later" (`unavailable`) and which are a read's own values.

A read is answered `unavailable` only when the database cannot take the write now; a value it
refuses fails that read alone (ingest_reads in pipeline.py), never the reads batched with it.
"""

import logging
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from .errors import IngestError

log = logging.getLogger("lprserver.ingest")

# The database cannot take a write now (down, restarting, locked, out of connections): `unavailable`.
# Any other failure is about a value of the reads (DataError and the like): see ingest_reads.
UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.InternalError, sa_exc.TimeoutError,
               sa_exc.DisconnectionError)
# What a value the database or a conversion refuses raises, once the batch is down to that one read.
# Not ProgrammingError and the like: a schema out of date must never tell cameras to drop their reads.
REFUSED_VALUE = (sa_exc.DataError, ValueError, OverflowError, UnicodeError)


def refused_value(exc: BaseException) -> bool:
    # A value a column type could not bind comes wrapped in a StatementError that is no DBAPIError.
    if isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError):
        exc = exc.orig if isinstance(exc.orig, BaseException) else exc
    return isinstance(exc, REFUSED_VALUE)


def unavailable_error(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE) or getattr(exc, "connection_invalidated", False)


@contextmanager
def database_errors(session: Session):
    """Turn a database that cannot take the write now into an `unavailable` answer."""
    try:
        yield
    except Exception as exc:
        if not unavailable_error(exc):
            raise
        session.rollback()
        log.warning("event=database_unavailable error=%s", exc.__class__.__name__)
        raise IngestError("unavailable", "the database cannot take the write now; retry later") from None
