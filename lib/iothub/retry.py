"""Retry policy as pure functions: which failures are retried and after how long.

Delay for attempt n (0-based): ``min(min_ms * 2**n, max_ms) + jitter_ms - elapsed_ms``, never
below 0. The jitter is passed in (the caller draws it), so tests need no randomness. Defaults
follow the Azure SDK for C: 1 s minimum, 100 s maximum, 0-5 s jitter.
"""

MIN_MS = 1000
MAX_MS = 100000
JITTER_MS = 5000


def delay_ms(attempt, jitter_ms=0, min_ms=MIN_MS, max_ms=MAX_MS, elapsed_ms=0):
    """Milliseconds to wait before retry number ``attempt`` (0 for the first retry)."""
    if attempt < 0:
        attempt = 0
    base = max_ms
    if attempt < 31:  # avoid huge ints: 2**31 * any min_ms is past every sane max
        base = min(min_ms << attempt, max_ms)
    wait = base + jitter_ms - elapsed_ms
    return wait if wait > 0 else 0


def http_retryable(status):
    """HTTP statuses worth retrying: throttling (429) and server errors (5xx)."""
    return status == 429 or 500 <= status <= 599


def connack_retryable(code):
    """CONNACK codes worth retrying with the same credentials: 3 (server unavailable) only.

    1 (protocol version) and 2 (client id) will not change; 4 and 5 (bad credentials) need a
    new token, which the session only builds when the application asks again.
    """
    return code == 3
