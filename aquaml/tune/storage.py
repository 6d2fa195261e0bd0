"""A study's storage URL, without its password anywhere on disk.

A database URL given with a password (``postgresql://user:PASSWORD@host/db``) is kept in the
study's settings (``study.json``, the study's ``config`` attribute) without it; the password
stays in this process's memory, and :func:`connect_url` puts it back when the tuner connects.
A later command (``aquaml tune resume``, ``confirm``, ``plot tune``) gets it from the URL on its
own command line (``--storage``), or PostgreSQL's driver (libpq) finds it as always when the URL
has none: ``PGPASSWORD``, ``~/.pgpass``. Wherever a URL is shown (logs, report, errors) its
password reads ``***``.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

#: ``scheme://user:password@``: the password is what lies between the first ``:`` after the
#: user name and the ``@`` (SQLAlchemy's reading: a password holds no raw ``@``)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][\w+.-]*://[^:/@\s]*):(?P<password>[^@\s]*)@")
_QUERY = re.compile(r"(?P<head>[?&]password=)(?P<password>[^&#\s]*)", re.IGNORECASE)  #: libpq's ?password=
MASK = "***"

_GIVEN: dict[str, str] = {}  #: password-less URL -> the URL as given, password included (this process only)
_SECRETS: set[str] = set()  #: the passwords seen, masked wherever they show


class StorageError(OSError):
    """The study's database could not be reached or used; the message shows no password."""


def is_database(storage: str) -> bool:
    """A database URL (else a journal file's path, or "" for the study folder's journal)."""
    return "://" in storage


def without_password(url: str) -> str:
    """``url`` as it is stored: a database URL loses its password (``user:PASSWORD@`` or a
    ``password=`` query parameter), which this process remembers for :func:`connect_url`;
    anything else is returned as it is."""
    if not is_database(url):
        return url
    secrets = [m["password"] for m in (*_USERINFO.finditer(url), *_QUERY.finditer(url))]
    bare = _USERINFO.sub(lambda m: m["head"] + "@", url)
    if "?" in bare:
        base, query = bare.split("?", 1)
        kept = [part for part in query.split("&") if not part.lower().startswith("password=")]
        bare = base + ("?" + "&".join(kept) if kept else "")
    if bare != url:
        _GIVEN[bare] = url
        _SECRETS.update(s for s in secrets if s)
    return bare


def connect_url(url: str) -> str:
    """The URL to connect with: ``url`` (stored without a password) as it was given earlier in
    this process, password included; else ``url`` itself (PostgreSQL's driver then finds the
    password as always: ``PGPASSWORD``, ``~/.pgpass``)."""
    return _GIVEN.get(url, url)


def mask(text: str) -> str:
    """``text`` with every password in it replaced by ``***``: those of URLs, and those given in
    this process wherever they appear (a driver's message may quote one without its URL)."""
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", str(text))
    text = _QUERY.sub(lambda m: m["head"] + MASK, text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def shown(url: str) -> str:
    """A stored URL as it is shown: with ``***`` where it was given a password, never the password."""
    return mask(connect_url(url))


@contextmanager
def storage_errors(url: str, what: str):
    """Turns a failure to reach or use the database ``url`` into a :class:`StorageError` that
    names it with its password masked (a driver's own exception may quote the URL)."""
    try:
        yield
    except StorageError:
        raise
    except Exception as e:  # the drivers' errors have no common base
        text = str(e).strip().splitlines()
        raise StorageError(mask(f"{what} in {shown(url)}: {type(e).__name__}: {text[0] if text else ''}")) from None
