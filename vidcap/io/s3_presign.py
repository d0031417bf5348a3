"""Presigned GET URLs of ``s3://`` objects for the light read path (``vidcap.io.ranged_http``).

``presign(fs, bucket, key)``: a Signature Version 4 query-signed GET URL, valid ``EXPIRES_S`` seconds,
with the settings of a botocore S3 client made from the s3fs filesystem ``fs``'s (its key, secret,
token, endpoint, region and client config when given; otherwise botocore's own chain: environment,
``~/.aws``, instance roles, as s3fs's). The client signs the first key of each bucket (its endpoint
rules decide the URL's host and path and the signing region). Every later key of that bucket is
signed here from that URL's base, region and service, with the client's current credentials, by the
algorithm of botocore's ``S3SigV4QueryAuth`` (``GET``, the ``host`` header only, ``UNSIGNED-PAYLOAD``,
botocore's clock): the same URL, byte for byte (``tests/test_ranged_http.py``), for a fraction of the
CPU that botocore's request objects cost inside a row (``bench/objectstore``). A client URL with query
parameters other than SigV4's, or a path that does not end with the key quoted as here, leaves that
bucket to the client. Raises whatever botocore raises (no credentials, ...): the caller then reads
through s3fs. Secrets and signing keys stay in memory and appear in no message.
"""
from __future__ import annotations

import hashlib
import hmac
import threading
from typing import Any
from urllib.parse import quote, urlsplit

EXPIRES_S = 3600
_SIGNERS: dict[int, tuple[Any, Any]] = {}   # id(fs) -> (fs, client): holding fs keeps its id unique
_BUCKETS: dict[tuple[int, str], tuple[str, str, str, str, str] | None] = {}
_KEYS: dict[tuple[str, str, str, str], bytes] = {}
_LOCK = threading.Lock()
_AUTH: list[Any] = []
_QUERY: list[Any] = [None]   # ((second, credentials, region, service), query, canonical, to-sign prefix, key)
_SIGV4_PARAMS = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                 "X-Amz-Security-Token", "X-Amz-Signature"}
_SAFE = "-_.~"


def presign(fs: Any, bucket: str, key: str) -> str:
    """The presigned GET URL of ``bucket``/``key`` (module docstring)."""
    client = _signer(fs)
    known = _BUCKETS.get((id(fs), bucket), ())
    if known:
        base, path, host, region, service = known
        credentials = client._request_signer._credentials.get_frozen_credentials()   # refreshed as botocore does
        return _sign(base, path + quote(key, safe="/~"), host, credentials, region, service)
    signed = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=EXPIRES_S)
    if known == ():
        with _LOCK:
            if len(_BUCKETS) >= 1024:
                _BUCKETS.pop(next(iter(_BUCKETS)))
            _BUCKETS[(id(fs), bucket)] = _template(signed, key)
    return str(signed)


def _sign(base: str, path: str, host: str, credentials: Any, region: str, service: str) -> str:
    """``base`` + ``path`` signed in its query string, as ``S3SigV4QueryAuth`` signs a GET of it."""
    if not _AUTH:
        from botocore import auth  # optional library (the s3 extra): its clock, which tests can stop

        _AUTH.append(auth)
    now = _AUTH[0].get_current_datetime()
    second = (now.year, now.month, now.day, now.hour, now.minute, now.second)
    parts = (second, credentials, region, service)
    kept = _QUERY[0]
    if kept is None or kept[0] != parts:   # the query is the same for every key signed in the same second
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
        params = [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", f"{credentials.access_key}/{scope}"),
                  ("X-Amz-Date", stamp), ("X-Amz-Expires", str(EXPIRES_S)), ("X-Amz-SignedHeaders", "host")]
        if credentials.token is not None:
            params.append(("X-Amz-Security-Token", credentials.token))
        query = "&".join(f"{quote(k, safe=_SAFE)}={quote(v, safe=_SAFE)}" for k, v in params)
        canonical = "&".join(sorted(query.split("&")))
        key = _signing_key(credentials.secret_key, stamp[:8], region, service)
        kept = _QUERY[0] = (parts, query, canonical, f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n", key)
    _, query, canonical, prefix, key = kept
    request = f"GET\n{path}\n{canonical}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD"
    to_sign = prefix + hashlib.sha256(request.encode()).hexdigest()
    signature = hmac.digest(key, to_sign.encode(), "sha256").hex()
    return f"{base}{path}?{query}&X-Amz-Signature={signature}"


def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """SigV4's key for one day, region and service (derived once a day)."""
    found = _KEYS.get((secret, day, region, service))
    if found is None:
        found = ("AWS4" + secret).encode()
        for part in (day, region, service, "aws4_request"):
            found = hmac.new(found, part.encode(), hashlib.sha256).digest()
        with _LOCK:
            if len(_KEYS) >= 64:
                _KEYS.clear()
            _KEYS[(secret, day, region, service)] = found
    return found


def _template(signed: str, key: str) -> tuple[str, str, str, str, str] | None:
    """(scheme://netloc, the path before the key, the canonical host, signing region, service) of a
    client-signed URL, or None (module docstring)."""
    url, _, query = signed.partition("?")
    quoted = quote(key, safe="/~")
    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    if not url.endswith("/" + quoted) or not set(params) <= _SIGV4_PARAMS:
        return None
    scope = params.get("X-Amz-Credential", "").split("%2F")
    if len(scope) != 5 or scope[4] != "aws4_request" or params.get("X-Amz-SignedHeaders") != "host":
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    if parts.port is not None and parts.port != {"https": 443, "http": 80}.get(parts.scheme):
        host += f":{parts.port}"
    return f"{parts.scheme}://{parts.netloc}", parts.path[:len(parts.path) - len(quoted)], host, scope[2], scope[3]


def _signer(fs: Any) -> Any:
    """A botocore S3 client with the s3fs filesystem ``fs``'s settings, signing with SigV4 (one a
    filesystem, also when rows in threads ask at once)."""
    kept = _SIGNERS.get(id(fs))
    if kept is not None:
        return kept[1]
    with _LOCK:
        kept = _SIGNERS.get(id(fs))
        return kept[1] if kept is not None else _new_signer(fs)


def _new_signer(fs: Any) -> Any:
    """The client of ``_signer`` (under its lock)."""
    import botocore.config  # optional library (the s3 extra)
    import botocore.session  # optional library (the s3 extra)

    kwargs = dict(getattr(fs, "client_kwargs", None) or {})
    config = dict(getattr(fs, "config_kwargs", None) or {})
    config["signature_version"] = "s3v4"
    for name, value in (("aws_access_key_id", fs.key), ("aws_secret_access_key", fs.secret),
                        ("aws_session_token", fs.token)):
        if value:
            kwargs[name] = value
    if getattr(fs, "endpoint_url", None):
        kwargs.setdefault("endpoint_url", fs.endpoint_url)
    client = botocore.session.get_session().create_client("s3", config=botocore.config.Config(**config), **kwargs)
    _SIGNERS[id(fs)] = (fs, client)
    return client
