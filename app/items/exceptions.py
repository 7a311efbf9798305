"""Errors of the items domain."""

from app.errors import NotFound, Unprocessable


class ImportRejected(Unprocessable):
    code = "import_rejected"
    message = (
        "The import was rejected; nothing was written. Fix the listed lines or import with on_error=skip."
    )


class ItemNotFound(NotFound):
    code = "item_not_found"
    message = "No such item."


class InvalidGold(Unprocessable):
    code = "invalid_gold"
