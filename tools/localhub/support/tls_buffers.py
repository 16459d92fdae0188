"""Per-connection costs of a server holding thousands of TLS connections.

asyncio gives every TLS connection a 256 KB receive buffer, whatever it carries.

``asyncio.sslproto.SSLProtocol.max_size`` sizes the buffer each connection reads the socket into
(and each read of decrypted data): 256 KB, allocated and touched per connection, so a hub with
1,000 idle devices held 294 KB of RSS for each (48 KB with 16 KB, 36 KB with 4 KB: measured
with ``python -m localhub.testing.loadsim``). A TLS record carries at most 16 KB of plaintext, so 16 KB
still takes a whole record per read; a large body costs a few more reads and nothing else. One
setting for the process: the hub and the load simulation call :func:`shrink` before they open
connections, and :func:`raise_fd_limit` so 10,000 of them fit.
"""

from __future__ import annotations

import resource
from asyncio import sslproto

READ_BUFFER = 16 * 1024


def shrink(size: int = READ_BUFFER) -> None:
    sslproto.SSLProtocol.max_size = size


def raise_fd_limit() -> int:
    """Lift the soft limit on open files to the hard one; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft
