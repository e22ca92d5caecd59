"""The ingest error codes of README "Sending reads" and the answers they make."""

CODES = (
    "invalid_payload",
    "invalid_camera_id",
    "invalid_plate",
    "invalid_image",
    "unauthorized",
    "unavailable",
)


class IngestError(Exception):
    """A read or report refused with one of the codes of README "Sending reads"."""

    def __init__(self, code: str, message: str, field: str | None = None):
        assert code in CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __reduce__(self):
        # Store workers send these to the daemon (pickled): rebuild one from all three fields.
        return type(self), (self.code, self.message, self.field)

    def answer(self) -> dict:
        """Return the error answer every door sends."""
        return {"status": "error", "code": self.code, "message": self.message, "field": self.field}


def unavailable(count: int) -> list[IngestError]:
    """The outcome of every read of a batch that could not be stored: the cameras send them again."""
    return [IngestError("unavailable", "the server could not store this now; retry later")] * count
