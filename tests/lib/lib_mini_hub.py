"""A minimal IoT Hub MQTT endpoint for end-to-end tests of the device library over real TLS.

Written independently of lib/iothub (stdlib hmac/urllib, its own packet parser) so a mistake in
the library is not mirrored here. One thread per connection; loopback only. The full local hub
lives in tools/localhub: this is just enough to prove the device side on real sockets.
"""

import base64
import hashlib
import hmac
import json
import queue
import socket
import ssl
import struct
import threading
import time
import urllib.parse


def check_sas(token, host, device_id, key_b64, now=None):
    """True if ``token`` is a valid, unexpired device SAS for ``host/devices/device_id``."""
    if not token.startswith("SharedAccessSignature "):
        return False
    fields = dict(urllib.parse.parse_qsl(token[len("SharedAccessSignature ") :]))
    sr, sig, se = fields.get("sr"), fields.get("sig"), fields.get("se")
    if sr != host + "/devices/" + device_id or not se or not se.isdigit():
        return False
    if int(se) <= (now or time.time()):
        return False
    to_sign = urllib.parse.quote(sr, safe="") + "\n" + se
    want = base64.b64encode(hmac.new(base64.b64decode(key_b64), to_sign.encode(), hashlib.sha256).digest()).decode()
    return hmac.compare_digest(want, sig)


class Conn:
    def __init__(self, hub, sock):
        self.hub = hub
        self.sock = sock
        self.lock = threading.Lock()
        self.pid = 0
        self.subs = []
        self.client_id = None

    def _read(self, n):
        data = b""
        while len(data) < n:
            piece = self.sock.recv(n - len(data))
            if not piece:
                raise EOFError
            data += piece
        return data

    def read_packet(self):
        first = self._read(1)[0]
        mult, rl = 1, 0
        while True:
            b = self._read(1)[0]
            rl += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        return first, self._read(rl)

    def drop(self):
        """Close the connection from the hub's side (as IoT Hub does when throttling)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send(self, data):
        with self.lock:
            self.sock.sendall(data)

    @staticmethod
    def _len(n):
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def publish(self, topic, payload, qos=0):
        t = topic.encode()
        body = struct.pack("!H", len(t)) + t
        if qos:
            self.pid += 1
            body += struct.pack("!H", self.pid)
        body += payload
        self.send(bytes([0x30 | qos << 1]) + self._len(len(body)) + body)

    def serve(self):
        hub = self.hub
        try:
            first, body = self.read_packet()
            if first != 0x10 or body[:7] != b"\x00\x04MQTT\x04":
                return
            flags = body[7]
            i = 10
            fields = []
            while i < len(body):
                n = struct.unpack("!H", body[i : i + 2])[0]
                fields.append(body[i + 2 : i + 2 + n].decode())
                i += 2 + n
            client_id, user, password = fields[0], fields[1], fields[2]
            hub.events.put(("connect", client_id, user, flags, struct.unpack("!H", body[8:10])[0]))
            ok = (
                client_id == hub.device_id
                and user == hub.host + "/" + hub.device_id + "/?api-version=2021-04-12"
                and check_sas(password, hub.host, hub.device_id, hub.key)
            )
            self.send(b"\x20\x02\x00" + (b"\x00" if ok else b"\x05"))
            if not ok:
                return
            self.client_id = client_id
            hub.conn = self
            while True:
                first, body = self.read_packet()
                kind = first & 0xF0
                if kind == 0x80:  # SUBSCRIBE
                    pid = body[:2]
                    n = struct.unpack("!H", body[2:4])[0]
                    topic = body[4 : 4 + n].decode()
                    qos = body[4 + n]
                    self.subs.append((topic, qos))
                    self.send(b"\x90\x03" + pid + bytes([qos]))
                elif kind == 0x30:  # PUBLISH
                    qos = (first >> 1) & 3
                    n = struct.unpack("!H", body[:2])[0]
                    topic = body[2 : 2 + n].decode()
                    rest = body[2 + n :]
                    if qos:
                        self.send(b"\x40\x02" + rest[:2])
                        rest = rest[2:]
                    hub.on_publish(self, topic, rest)
                elif kind == 0xC0:
                    self.send(b"\xd0\x00")
                elif kind == 0x40:
                    hub.events.put(("puback", struct.unpack("!H", body)[0]))
                elif kind == 0xE0:
                    return
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            hub.events.put(("closed", self.client_id))
            try:
                self.sock.close()
            except OSError:
                pass


class MiniHub:
    def __init__(self, cert, key, host, device_id, device_key):
        self.host = host
        self.device_id = device_id
        self.key = device_key
        self.events = queue.Queue()
        self.twin = {"desired": {"$version": 1}, "reported": {"$version": 1}}
        self.conn = None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self._ctx = ctx
        self._lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self._lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                raw, _ = self._lsock.accept()
            except OSError:
                return
            try:
                sock = self._ctx.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                self.events.put(("tls-failed",))
                raw.close()
                continue
            threading.Thread(target=Conn(self, sock).serve, daemon=True).start()

    def on_publish(self, conn, topic, payload):
        self.events.put(("publish", topic, payload))
        if topic.startswith("$iothub/twin/GET/"):
            rid = topic.split("$rid=")[1]
            conn.publish("$iothub/twin/res/200/?$rid=" + rid, json.dumps(self.twin).encode())
        elif topic.startswith("$iothub/twin/PATCH/properties/reported/"):
            rid = topic.split("$rid=")[1]
            self.twin["reported"].update(json.loads(payload))
            self.twin["reported"]["$version"] += 1
            conn.publish("$iothub/twin/res/204/?$rid=%s&$version=%d" % (rid, self.twin["reported"]["$version"]), b"")

    def wait(self, kind, timeout=5.0, where=lambda e: True):
        """The next event of ``kind`` matching ``where`` (others are skipped), or AssertionError."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s event" % kind)
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event[0] == kind and where(event):
                return event

    def close(self):
        self._lsock.close()
