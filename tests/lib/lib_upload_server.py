"""A TLS server standing in for both the hub's file-upload REST endpoints and blob storage
(Azurite-style path URLs), run as a subprocess by test_lib_upload.py so its memory use never
shows in the device side's tracemalloc figures.

Usage: python lib_upload_server.py CERT KEY  -> prints the port, serves until stdin closes.
Control: POST /_config {faults...} resets state; GET /_state returns what it saw.

Faults (JSON): {"block": {"1": [503, 500]}} answers block 1 with 503, then 500, then normally;
{"deny_block": 2} answers block 2 with 403 forever; {"blocklist": [503]}; {"files": 401};
{"close": true} answers every request with Connection: close.
"""

import hashlib
import json
import re
import ssl
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SAS = "sv=2021-08-06&sr=b&sig=abc%2Bdef%3D"
STATE = {}
LOCK = threading.Lock()


def reset(faults):
    STATE.clear()
    STATE.update(
        faults=faults,
        requests=[],
        connections=0,
        blocks={},
        committed={},
        notifications=[],
        attempts={},
        errors=[],
    )


reset({})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        with LOCK:
            STATE["connections"] += 1

    def _body(self):
        if self.headers.get("Transfer-Encoding"):
            self._send(400, b"chunked uploads are refused (as Azurite does)")
            return None
        length = self.headers.get("Content-Length")
        if length is None:
            self._send(411, b"length required")
            return None
        return self.rfile.read(int(length))

    def _send(self, status, body=b"", ctype="text/plain", chunked=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if STATE["faults"].get("close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = len(body) // 2
            for piece in (body[:half], body[half:]):
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

    def _record(self):
        with LOCK:
            STATE["requests"].append(
                {
                    "method": self.command,
                    "path": self.path,
                    "length": self.headers.get("Content-Length"),
                    "te": self.headers.get("Transfer-Encoding"),
                    "host": self.headers.get("Host"),
                    "auth": self.headers.get("Authorization"),
                }
            )

    def do_GET(self):
        if self.path == "/_state":
            with LOCK:
                body = json.dumps(STATE).encode()
            return self._send(200, body, "application/json")
        self._send(404)

    def do_POST(self):
        body = self._body()
        if body is None:
            return
        if self.path == "/_config":
            reset(json.loads(body))
            return self._send(204)
        self._record()
        m = re.fullmatch(r"/devices/([^/?]+)/files(/notifications)?\?api-version=2021-04-12", self.path)
        if not m:
            return self._send(404)
        if not (self.headers.get("Authorization") or "").startswith("SharedAccessSignature sr="):
            return self._send(401)
        device = urllib.parse.unquote(m.group(1))
        doc = json.loads(body)
        if m.group(2):
            with LOCK:
                STATE["notifications"].append(doc)
            return self._send(204)
        if STATE["faults"].get("files"):
            return self._send(STATE["faults"]["files"], b'{"Message":"no"}', "application/json")
        port = self.server.server_address[1]
        answer = {
            "correlationId": "corr-%d" % len(STATE["requests"]),
            "hostName": "127.0.0.1:%d" % port,
            "containerName": "devstoreaccount1/uploads",
            "blobName": device + "/" + doc["blobName"],
            "sasToken": "?" + SAS,
        }
        self._send(200, json.dumps(answer).encode(), "application/json; charset=utf-8", chunked=True)

    def do_PUT(self):
        self._record()
        body = self._body()
        if body is None:
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        blob = urllib.parse.unquote(url.path)
        if not blob.startswith("/devstoreaccount1/uploads/") or not url.query.startswith(SAS + "&"):
            return self._send(403, b"bad SAS or path")
        comp = query.get("comp", [""])[0]
        faults = STATE["faults"]
        if comp == "block":
            bid = query["blockid"][0]
            index = int(__import__("base64").b64decode(bid))
            with LOCK:
                n = STATE["attempts"].get(str(index), 0)
                STATE["attempts"][str(index)] = n + 1
            if faults.get("deny_block") == index:
                return self._send(403, b"denied")
            queue = faults.get("block", {}).get(str(index), [])
            if n < len(queue):
                return self._send(queue[n])
            with LOCK:
                STATE["blocks"].setdefault(blob, {})[bid] = body.hex()
            return self._send(201)
        if comp == "blocklist":
            with LOCK:
                n = STATE["attempts"].get("list", 0)
                STATE["attempts"]["list"] = n + 1
            queue = faults.get("blocklist", [])
            if n < len(queue):
                return self._send(queue[n])
            text = body.decode()
            ids = re.findall(r"<Latest>([^<]*)</Latest>", text)
            expected = '<?xml version="1.0" encoding="utf-8"?><BlockList>' + "".join(
                "<Latest>%s</Latest>" % i for i in ids
            ) + "</BlockList>"
            if text != expected:
                STATE["errors"].append("bad block list XML")
                return self._send(400, b"bad XML")
            held = STATE["blocks"].get(blob, {})
            data = b"".join(bytes.fromhex(held[i]) for i in ids)
            with LOCK:
                STATE["committed"][blob] = {
                    "ids": ids,
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            return self._send(201)
        self._send(400, b"unsupported")


def main():
    cert, key = sys.argv[1], sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # until the test closes our stdin
    server.shutdown()


if __name__ == "__main__":
    main()
