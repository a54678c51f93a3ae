"""Read a model server's Prometheus text endpoint over HTTP (urllib; no Locust, no gRPC)."""

import re
import socket

# Ask for the classic text format: with OpenMetrics a server may end the page with "# EOF" and use
# forms the Prometheus text parser does not read.
ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"
_SAMPLE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?[ \t]+\S")


class MetricsError(ValueError):
    """A metrics page could not be read or is not Prometheus text; the message is one line."""


def scrape(url, timeout_s=2.0):
    """The text of the metrics page at ``url`` (http or https).

    ``timeout_s`` bounds each socket operation (connect, each read), not the whole transfer.
    Raises MetricsError naming the URL and what went wrong: connection refused, no answer within
    the timeout, an HTTP status other than 200, a body that is not UTF-8 Prometheus text.
    """
    import http.client
    import urllib.error  # here, not at import: urllib.request loads ssl, which report modules need not
    import urllib.request

    if not url.lower().startswith(("http://", "https://")):
        raise MetricsError(f"server metrics {url}: not an http:// or https:// URL")
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, kind, body = response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as e:
        raise MetricsError(f"server metrics {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise MetricsError(f"server metrics {url}: {_reason(e.reason, timeout_s)}") from None
    except (TimeoutError, socket.timeout) as e:
        raise MetricsError(f"server metrics {url}: {_reason(e, timeout_s)}") from None
    except (OSError, ValueError, http.client.HTTPException) as e:  # a dropped connection, an answer that is not
        # HTTP (BadStatusLine: e.g. the gRPC port), bad URLs
        raise MetricsError(f"server metrics {url}: {_not_http(e)}") from None
    if status != 200:
        raise MetricsError(f"server metrics {url}: HTTP {status}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MetricsError(f"server metrics {url}: not Prometheus text (not UTF-8; Content-Type {kind!r})") from None
    first = _first_sample_line(text)
    if first is not None and not _SAMPLE.match(first):
        raise MetricsError(f"server metrics {url}: not Prometheus text (Content-Type {kind!r}, "
                           f"first line {first[:60]!r})")
    return text


def _first_sample_line(text):
    """The first line that is neither blank nor a comment, or None (an empty page is valid)."""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return None


def _not_http(e):
    import http.client

    if isinstance(e, http.client.BadStatusLine):
        return ("the answer is not HTTP (BadStatusLine); expected the server's HTTP metrics port "
                "(a gRPC port answers so)")
    return f"{type(e).__name__}: {e}".splitlines()[0][:200]


def _reason(reason, timeout_s):
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout_s:g} s"
    return f"{type(reason).__name__}: {reason}".splitlines()[0] if isinstance(reason, BaseException) else str(reason)
