"""REST request URLs as normalizers see them: the endpoint, its symbol, and the next page."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def with_query(url: str, **params: str) -> str:
    """The URL with these query parameters set (added or replaced): a paged request's next page
    keeps every other parameter of the first, and the host the handler was pointed at."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | params
    return urlunsplit(parts._replace(query=urlencode(query)))
