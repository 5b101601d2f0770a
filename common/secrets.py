"""Passwords kept out of every message: a --storage URL is shown masked, whatever its shape.

SQLAlchemy's own masking (make_url(...).render_as_string) parses "postgresql://u:p@ss@host/db" as
password "p" and host "ss@host", so part of a password with an unescaped '@' (or one that does
not parse at all) would be printed: every message goes through shown()/masked() instead, which
mask from the first ':' after the user to the last '@'. argparse's own errors (a misspelt flag
echoes its value) go through mask_urls (common/cli.py's ArgumentParser).
"""
from __future__ import annotations

import re
from urllib.parse import unquote

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_USERINFO = re.compile(r"(?P<user>[^:/?#]*):(?P<password>.*)@", re.S)
_QUERY_SECRET = re.compile(r"(?i)(?P<key>[?&;](?:password|passwd|pwd|pass)=)(?P<password>[^&;#]*)")
_ANY_URL = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#\s]*:)[^\s]*@")
MASK = "***"


def _split(url: str) -> tuple[str, str]:
    """(scheme with '://', the rest); no scheme: ('', url)."""
    m = _SCHEME.match(url)
    return (url[:m.end()], url[m.end():]) if m else ("", url)


def secrets(url: str) -> list[str]:
    """The password(s) in a storage URL as given and percent-decoded, longest first: what no message may show."""
    _, rest = _split(url)
    found = [m["password"] for m in [_USERINFO.match(rest)] if m]
    found += [m["password"] for m in _QUERY_SECRET.finditer(rest)]
    found += [unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def shown(url: str) -> str:
    """A storage URL fit for messages: its password masked, whatever its shape (parseable or not,
    with or without a scheme; a query's password= too). Masks too much rather than too little:
    with an '@' in the query, everything from the password to that '@' goes."""
    head, rest = _split(url)
    m = _USERINFO.match(rest)
    if m:
        rest = f"{m['user']}:{MASK}@{rest[m.end():]}"
    return head + _QUERY_SECRET.sub(lambda q: q["key"] + MASK, rest)


def masked(text: str, url: str) -> str:
    """`text` (an error from SQLAlchemy or a driver, say) with the URL shown masked and its
    password gone, wherever and however it appears."""
    text = text.replace(url, shown(url))
    for secret in secrets(url):
        text = text.replace(secret, MASK)
    return mask_urls(text)


def mask_urls(text: str) -> str:
    """`text` with the password of every scheme://user:password@ in it masked."""
    return _ANY_URL.sub(lambda m: m["head"] + MASK + "@", text)
