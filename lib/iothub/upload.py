"""Device half of IoT Hub file upload (DESIGN section 3 "File upload"); imported only when used.

1. POST ``/devices/{id}/files?api-version=2021-04-12`` ``{"blobName": ...}`` to the hub ->
   ``{correlationId, hostName, containerName, blobName, sasToken}``.
2. Put Block for each ``chunk_size`` piece of the file, streamed from the file through ONE small
   buffer (``buffer_size``) with Content-Length; a failed block is retried with backoff (429, 5xx,
   network), read again from the file.
3. Put Block List (XML streamed through the same buffer), even for a 0-byte file.
4. POST ``/devices/{id}/files/notifications`` ``{correlationId, isSuccess, statusCode,
   statusDescription}``, always, failures included (with the storage status code).

Memory does not grow with the file size: nothing per block is kept (block ids are recomputed).
``hostName`` may carry a port and ``containerName`` a path (Azurite's path-style
``devstoreaccount1/<container>``); both are used as given.
"""

import json
import os

from iothub import blocks, retry, transient
from iothub.errors import ConfigError, HTTPError, ProtocolError
from iothub.http import HTTPConnection

# Held by this module's names, not by sys.modules: the loop reaches them with iothub.transient.
_net = transient("iothub.net")
split_host_port, tls_context = _net.split_host_port, _net.tls_context
quote = transient("iothub.topics").quote

API_VERSION = "2021-04-12"
_NETWORK = -1  # "status" of an attempt that failed on the network


class _Clockless:
    # Used when no clock is given: retries still wait (blocking sleep).
    def sleep_ms(self, ms):
        import time

        if hasattr(time, "sleep_ms"):
            time.sleep_ms(ms)
        else:
            time.sleep(ms / 1000)


def _attempts(clock, jitter, retries, min_ms, max_ms, op):
    """Run ``op() -> status`` until it gives a non-retryable status or ``retries`` retries are
    spent; network errors (OSError, ProtocolError) count as retryable. Returns the last status
    and the last error text."""
    attempt = 0
    while True:
        err = None
        try:
            status = op()
        except (OSError, ProtocolError) as e:
            status, err = _NETWORK, e
        if status != _NETWORK and not retry.http_retryable(status):
            return status, None
        if attempt >= retries:
            return status, err
        clock.sleep_ms(retry.delay_ms(attempt, jitter(min_ms), min_ms, max_ms))
        attempt += 1


def upload_file(
    path,
    blob_name,
    host,
    device_id,
    token,
    hub_host=None,
    ca=None,
    blob_ca=None,
    chunk_size=4096,
    buffer_size=2048,
    progress=None,
    retries=3,
    min_backoff_ms=500,
    max_backoff_ms=8000,
    clock=None,
    jitter=None,
    sock_factory=None,
    timeout=30,
    port=443,
    buffer=None,
):
    """Upload the file at ``path`` as ``blob_name``; returns the notification sent to the hub.

    :param host: where the hub's HTTPS endpoint is reached (``host[:port]``, a gateway).
    :param hub_host: the hub's HostName for the ``Host`` header (defaults to ``host``).
    :param token: the device SAS token (``Authorization`` header).
    :param ca: CA for the hub (and for storage unless ``blob_ca`` is given): DER bytes, or an
        SSLContext already built from them (an ``IoTHubClient`` passes its own). None: plain
        HTTP, for tests against a local server only.
    :param chunk_size: block size in bytes (from the board profile): fewer, bigger blocks are
        fewer round trips; it costs no memory.
    :param buffer_size: the piece a block is read and sent in: the one buffer that is allocated.
    :param buffer: a bytearray to use instead of allocating that one (``IoTHubClient`` lends
        its idle MQTT receive buffer, so an upload needs no 2 KB block of a fragmented heap);
        the piece is then what fits beside the request head.
    :param progress: ``f(sent_bytes, total_bytes)`` after each block.
    :returns: dict ``correlationId``, ``isSuccess``, ``statusCode``, ``statusDescription``,
        ``blobName``, ``bytes``, ``notified`` (False if the notification itself failed),
        ``notifyStatus`` (the hub's HTTP status for it, -1 on a network error).
    :raises ConfigError: ``path`` does not exist (checked before the hub is asked).
    :raises HTTPError: the hub refused to hand out a blob SAS URI (nothing to notify then),
        with the hub's error message in the text (e.g. a blob name it does not accept);
        ``OSError`` / ``TLSError`` if the hub could not be reached at all. An exception
        that kills the upload after the hub handed out the SAS URI (MemoryError, one raised
        by ``progress``) is raised after the failure notification went out.
    """
    if chunk_size < 64 or buffer_size < 64:
        raise ConfigError("chunk_size and buffer_size must be at least 64 bytes")
    clock = clock or _Clockless()
    if jitter is None:

        def jitter(limit):
            return 0

    try:
        total = os.stat(path)[6]
    except OSError:
        # Before anything is asked of the hub: no correlation id yet, nothing to notify.
        raise ConfigError("file upload: no file '%s'" % path)
    if (total + chunk_size - 1) // chunk_size > blocks.MAX_BLOCKS:
        raise ConfigError("file needs more than 50000 blocks: raise chunk_size")
    hub_ctx = tls_context(ca) if ca else None
    hname, hport = split_host_port(host, port)
    hub = HTTPConnection(hname, hport, hub_ctx, timeout, sock_factory, 512, hub_host)
    hub_headers = (("Authorization", token), ("Content-Type", "application/json"))

    refusal = [None]  # the hub's own words when it refuses (an error body of a few hundred bytes)

    def hub_post(path_, doc, box):
        def op():
            hub.request("POST", path_, hub_headers, json.dumps(doc))
            resp = hub.getresponse("POST")
            if resp.status == 200:
                box.append(resp.json(8192))
            else:
                refusal[0] = _error_text(resp)
            return resp.status

        return _attempts(clock, jitter, retries, min_backoff_ms, max_backoff_ms, op)

    base = "/devices/" + quote(device_id) + "/files"
    box = []
    try:
        status, err = hub_post(base + "?api-version=" + API_VERSION, {"blobName": blob_name}, box)
        if status != 200:
            if err is not None:
                raise err  # network or TLS failure (e.g. certificate not trusted): show it as is
            what = "file upload: the hub refused to issue a blob SAS URI"
            if refusal[0]:
                what += ": " + refusal[0]
            raise HTTPError(status, what)
        info = box[0]
        try:
            corr = info["correlationId"]
            bhost, bport = split_host_port(info["hostName"], 443)
            sas_token = info["sasToken"]
            if not sas_token.startswith("?"):
                sas_token = "?" + sas_token
            blob_path = "/" + quote(info["containerName"], "/") + "/" + quote(info["blobName"], "/") + sas_token
        except (KeyError, TypeError):
            raise ProtocolError("file upload: incomplete answer from the hub")
        result = {"correlationId": corr, "blobName": info["blobName"], "bytes": 0}
        info = box = None  # the SAS answer is no longer needed
        if blob_ca is None:
            blob_ca = ca
        bctx = hub_ctx if blob_ca is ca else (tls_context(blob_ca) if blob_ca else None)
        died = None
        try:
            status, desc, sent = _put_blocks(
                path, total, blob_path, HTTPConnection(bhost, bport, bctx, timeout, sock_factory, 512),
                chunk_size, buffer_size, progress, clock, jitter, retries, min_backoff_ms, max_backoff_ms, buffer,
            )
        except Exception as e:
            # Whatever killed the upload (MemoryError, a progress callback, a failure no retry
            # covers), the hub still hears of it: until it does, the upload holds one of the
            # device's 10 slots for the whole SAS lifetime.
            died = e
            status, desc, sent = 500, "upload failed on the device: " + type(e).__name__, 0
            import gc

            gc.collect()  # the block buffer is garbage now: room to send the notification
        ok = status == 201
        result["isSuccess"] = ok
        result["statusCode"] = status if status > 0 else 500
        result["statusDescription"] = desc
        result["bytes"] = sent
        note = {
            "correlationId": corr,
            "isSuccess": ok,
            "statusCode": result["statusCode"],
            "statusDescription": desc,
        }
        nstatus, nerr = hub_post(base + "/notifications?api-version=" + API_VERSION, note, [])
        result["notified"] = 200 <= nstatus < 300
        result["notifyStatus"] = nstatus  # e.g. 400 when the hub no longer knows the upload
        if died is not None:
            raise died
        return result
    finally:
        hub.close()


def _read_exactly(f, view, n):
    # A short read is not the end of a file on every filesystem: read until n bytes are in.
    got = 0
    while got < n:
        more = f.readinto(view[got:n])
        if not more:
            raise ConfigError("file upload: the file got shorter during the upload")
        got += more
    return n


def _put_blocks(path, total, blob_path, conn, chunk_size, buffer_size, progress, clock, jitter, retries,
                min_ms, max_ms, lent=None):
    """Put every block and the block list; returns ``(status, description, bytes_sent)``.

    A block of ``chunk_size`` bytes leaves in pieces of ``buffer_size`` through one small buffer,
    the request head written just before the first piece so that both go out in one write. So no
    allocation is as big as a block: on a board, a heap of 80 KB free was seen to have no 8 KB
    in one piece. A block that fails is read again from the file for its retry.
    """
    block_path = blob_path + "&comp=block&blockid="
    room = len(conn.head("PUT", block_path + blocks.block_id(0), None, chunk_size))
    list_head = conn.head(
        "PUT", blob_path + "&comp=blocklist", (("Content-Type", "application/xml"),),
        blocks.block_list_length(blocks.MAX_BLOCKS),
    )
    piece = buffer_size if buffer_size < chunk_size else chunk_size
    least = len(list_head) + 64
    if lent is not None and len(lent) >= least and len(lent) >= room + 64:
        buf = lent  # the only buffer: head room + one piece
        if piece > len(buf) - room:
            piece = len(buf) - room
    else:
        size = room + piece
        buf = bytearray(size if size > least else least)
    mv = memoryview(buf)
    data = mv[room : room + piece]

    def put_block_op(f, index, offset, n):
        def op():
            f.seek(offset)
            head = conn.head("PUT", block_path + blocks.block_id(index), None, n)
            start = room - len(head)  # Content-Length of a short last block has fewer digits
            buf[start:room] = head
            got = _read_exactly(f, data, piece if n > piece else n)
            conn.send_first(mv[start:], room - start + got)
            while got < n:
                k = _read_exactly(f, data, piece if n - got > piece else n - got)
                conn.send(data, k)
                got += k
            resp = conn.getresponse("PUT")
            resp.drain()
            return resp.status

        return op

    sent = 0
    count = 0
    try:
        with open(path, "rb") as f:
            while sent < total:
                n = chunk_size if total - sent > chunk_size else total - sent
                status, err = _attempts(clock, jitter, retries, min_ms, max_ms, put_block_op(f, count, sent, n))
                if status != 201:
                    return status, _describe("Put Block", status, err), sent
                count += 1
                sent += n
                if progress:
                    progress(sent, total)

        def list_op():
            head = conn.head(
                "PUT", blob_path + "&comp=blocklist", (("Content-Type", "application/xml"),),
                blocks.block_list_length(count),
            )
            buf[: len(head)] = head
            first = [True]

            def write(piece):
                if first[0]:
                    first[0] = False
                    conn.send_first(piece)
                else:
                    conn.send(piece)

            blocks.write_block_list(write, count, buf, len(head))
            resp = conn.getresponse("PUT")
            resp.drain()
            return resp.status

        status, err = _attempts(clock, jitter, retries, min_ms, max_ms, list_op)
        if status != 201:
            return status, _describe("Put Block List", status, err), sent
        return 201, "uploaded %d bytes in %d blocks" % (sent, count), sent
    finally:
        conn.close()


def _error_text(resp):
    # IoT Hub's error body is JSON with a "Message" (sometimes nested in a JSON string); keep
    # at most 160 characters of it for the exception. Never lets a bad body raise.
    try:
        body = resp.read(512)
    except Exception:
        try:
            resp.drain()  # longer than expected: read it through so the connection stays usable
        except Exception:
            pass
        return None
    text = None
    try:
        doc = json.loads(body)
        if isinstance(doc, dict):
            text = doc.get("Message") or doc.get("message")
    except ValueError:
        pass
    if not isinstance(text, str):
        try:
            text = body.decode()
        except Exception:
            return None
    return text[:160] or None


def _describe(step, status, err):
    if status == _NETWORK:
        return "%s failed: network error %r" % (step, err)
    return "%s failed with storage status %d" % (step, status)
