"""Service URLs from the environment: checked before use, and never shown with their secrets.

``redact`` is the one place that hides secrets in a URL, whatever the form -- userinfo
(``redis://:pw@h``, ``redis://user:pw@h``, ``http://token@h``) or a query parameter
(``?password=pw``) -- and it never raises, even on a URL too broken to parse. ``redact_text`` does
the same for every URL inside a message. Everything runner prints or writes goes through them.

    redact("redis://user:pw@h:6379/0?password=pw")  ->  "redis://user:***@h:6379/0?password=***"
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from workers.errors import InputError

MASK = "***"
# query parameters that carry a credential (redis-py reads ``password``; the rest by convention)
_SECRET_PARAMS = frozenset({"password", "pass", "passwd", "pwd", "secret", "token", "auth", "key", "api_key"})
_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:(?://)?)(?P<authority>[^/?#]*)(?P<rest>.*)$", re.S)
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#]*)=(?P<value>[^&;#]*)")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def redact(url: str) -> str:
    """``url`` with every password or token replaced by ``***``; the rest kept for the reader."""
    match = _AUTHORITY.match(url)
    if match is None:
        return _redact_query(url)
    authority = match["authority"]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        # "user:pw@" keeps the user; a lone "token@" is all secret (redis-py reads it as a user name,
        # other clients as a password)
        authority = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    return match["scheme"] + authority + _redact_query(match["rest"])


def _redact_query(text: str) -> str:
    def hide(m: re.Match[str]) -> str:
        name = m["name"].strip().lower()
        return f"{m['lead']}{m['name']}={MASK}" if name in _SECRET_PARAMS and m["value"] else m[0]

    return _QUERY_PARAM.sub(hide, text)


def redact_text(text: str, *secrets: str) -> str:
    """``text`` with the secrets of every URL in it hidden, and each of ``secrets`` (passwords known
    from the environment) too, wherever they appear."""
    text = _URL_IN_TEXT.sub(lambda m: redact(m[0]), text)
    for secret in secrets:
        if len(secret) >= 3:  # a one- or two-letter password would blank out ordinary words
            text = text.replace(secret, MASK)
    return text


def url_secrets(url: str) -> list[str]:
    """The passwords and tokens in ``url`` (for ``redact_text``); never raises."""
    found: list[str] = []
    match = _AUTHORITY.match(url)
    if match is not None and "@" in match["authority"]:
        userinfo = match["authority"].rsplit("@", 1)[0]
        found.append(userinfo.partition(":")[2] or userinfo)
    for m in _QUERY_PARAM.finditer(url):
        if m["name"].strip().lower() in _SECRET_PARAMS and m["value"]:
            found.append(m["value"])
    return [s for secret in found for s in {secret, unquote(secret)} if s]


def check_redis_url(url: str, name: str = "REDIS_URL") -> None:
    """InputError (one line, secrets hidden) unless ``url`` is a Redis URL redis-py will read as meant."""
    shown = redact(url)
    if not url.isprintable() or any(ch.isspace() for ch in url):
        raise InputError(f"{name}: {shown!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise InputError(f"{name}: {shown!r} is not a valid URL ({_reason(exc)})") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise InputError(f"{name}: {shown!r} must start with redis://, rediss:// or unix://")
    if parts.scheme == "unix":
        if not parts.path:
            raise InputError(f"{name}: {shown!r} names no socket path (unix:///path/to/redis.sock)")
    else:
        if port == 0:
            raise InputError(f"{name}: {shown!r} has port 0")
        if parts.path not in ("", "/") and not re.fullmatch(r"/[0-9]{1,5}", parts.path, re.ASCII):
            raise InputError(f"{name}: {shown!r}: the path must be a database number such as /0")
    for key, value in query:
        if key == "db" and not re.fullmatch(r"[0-9]{1,5}", value, re.ASCII):
            raise InputError(f"{name}: {shown!r}: db must be a database number")
    try:
        import redis.connection

        redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise InputError(f"{name}: {shown!r} is not a valid Redis URL ({_reason(exc)})") from None


def check_http_url(url: str, name: str = "TARGET_URL") -> None:
    """InputError unless ``url`` is an http(s) URL with a host (a base such as http://h:8080)."""
    shown = redact(url)
    if not url.isprintable() or any(ch.isspace() for ch in url):
        raise InputError(f"{name}: {shown!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"{name}: {shown!r} is not a valid URL ({_reason(exc)})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{name}: {shown!r} must be an http:// or https:// URL with a host, e.g. http://host:8080")
    if port == 0:
        raise InputError(f"{name}: {shown!r} has port 0")
    if parts.query or parts.fragment:
        raise InputError(f"{name}: {shown!r}: give the target's base URL, without ? or #")


def _reason(exc: BaseException) -> str:
    return redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def scrub(text: str) -> str:
    """``redact_text`` with the passwords of ``REDIS_URL`` and ``TARGET_URL`` hidden too, wherever
    they appear (a backend may echo one outside a URL)."""
    known = [s for name in ("REDIS_URL", "TARGET_URL") for s in url_secrets(os.environ.get(name) or "")]
    return redact_text(text, *known)


def credentials_in_userinfo(url: str) -> str:
    """``redis://h/0?password=pw`` as ``redis://:pw@h/0``: redis-py reads both forms, kombu (Celery's
    broker client) only the second -- a ``password`` query parameter makes it raise a TypeError."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    found = {key: value for key, value in query if key in ("username", "password")}
    if not found or parts.scheme not in ("redis", "rediss"):
        return url
    user = found.get("username", parts.username or "")
    password = found.get("password", parts.password or "")
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    rest = urlencode([(k, v) for k, v in query if k not in ("username", "password")])
    return parts._replace(netloc=netloc, query=rest).geturl()
