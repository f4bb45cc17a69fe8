"""uvicorn's access log without query strings: a token put in a URL never reaches a log file.

    >>> install_access_log_filter()      # once, before uvicorn starts (fota_server.serve does it)

uvicorn logs ``<client> - "<method> <path>?<query> HTTP/1.1" <status>``; the filter drops the query
(``?...``) from the record before any handler formats it. Headers (``Authorization``) are never
logged, by uvicorn or by this server.
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


class DropQueryString(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def install_access_log_filter() -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DropQueryString) for f in logger.filters):
        logger.addFilter(DropQueryString())
