"""Test vectors for the pure layer, as plain literals (no pytest, no CPython-only imports), so
the same data can be replayed inside a MicroPython VM (see test_lib_vm_pure.py)."""

# RFC 4231 section 4, HMAC-SHA256: (key hex, data hex, expected hex). Case 5's expected value
# is truncated to 128 bits by the RFC: compare that prefix only.
RFC4231 = [
    ("0b" * 20, "4869205468657265", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        "4a656665",
        "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    ("aa" * 20, "dd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (
        "0102030405060708090a0b0c0d0e0f10111213141516171819",
        "cd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    ("0c" * 20, "546573742057697468205472756e636174696f6e", "a3b6167473100ee06e0c796c2955552b"),
    (
        "aa" * 131,
        "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d20"
        "48617368204b6579204669727374",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        "aa" * 131,
        "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b"
        "2d73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a652064"
        "6174612e20546865206b6579206e6565647320746f20626520686173686564206265666f72652062"
        "65696e6720757365642062792074686520484d414320616c676f726974686d2e",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]

# (text, urllib.parse.quote(text, safe="")) -- checked against CPython in test_lib_pure.py.
QUOTE = [
    ("", ""),
    ("abcXYZ019-._~", "abcXYZ019-._~"),
    ("hub.azure-devices.net/devices/dev1", "hub.azure-devices.net%2Fdevices%2Fdev1"),
    ("a b+c=d&e", "a%20b%2Bc%3Dd%26e"),
    ("$.ct", "%24.ct"),
    ("application/json", "application%2Fjson"),
    ("caf\u00e9 \u2603", "caf%C3%A9%20%E2%98%83"),
    ("abc/=+", "abc%2F%3D%2B"),
]

# Epoch years and the offset to Unix time.
EPOCHS = [(1970, 0), (2000, 946684800), (1980, 315532800)]

KEY = "cGFzc3dvcmQxMjM0NTY3ODkwcGFzc3dvcmQxMjM0NTY="  # base64 of 32 ASCII bytes
GOOD_CONNSTRS = [
    (
        "HostName=hub.azure-devices.net;DeviceId=dev1;SharedAccessKey=" + KEY,
        ("hub.azure-devices.net", "dev1", None, None, None),
    ),
    (
        "HostName=hub.azure-devices.net;DeviceId=dev1;ModuleId=mod-a;SharedAccessKey=" + KEY + ";",
        ("hub.azure-devices.net", "dev1", "mod-a", None, None),
    ),
    (
        " HostName=localhost:8443;DeviceId=d;SharedAccessKey=" + KEY + ";GatewayHostName=127.0.0.2:8883",
        ("localhost:8443", "d", None, "127.0.0.2:8883", None),
    ),
    (
        "SharedAccessKeyName=owner;HostName=h.net;DeviceId=d;SharedAccessKey=" + KEY,
        ("h.net", "d", None, None, "owner"),
    ),
]
# (connection string, a fragment the error message must contain)
BAD_CONNSTRS = [
    ("", "empty"),
    ("HostName=h.net;DeviceId=d", "SharedAccessKey is missing"),
    ("DeviceId=d;SharedAccessKey=" + KEY, "HostName is missing"),
    ("HostName=h.net;SharedAccessKey=" + KEY, "DeviceId is missing"),
    ("HostName=h.net;DeviceId=d;" + KEY, "unknown name in segment 3"),
    ("HostName=h.net;DeviceId=d;" + KEY.rstrip("="), "segment 3 is not Name=value"),
    ("HostName=h.net;DeviceId=d;SharedAccessKey=" + KEY + ";" + KEY[:22] + "==", "unknown name in segment 4"),
    ("HostName=h.net;DeviceId=d;SharedAccessKey=" + KEY + ";Color=blue", "unknown name 'Color'"),
    ("HostName=h.net;DeviceId=d;DeviceId=e;SharedAccessKey=" + KEY, "DeviceId given twice"),
    ("HostName=h.net;DeviceId=;SharedAccessKey=" + KEY, "DeviceId is empty"),
    ("HostName=h.net;DeviceId=d;SharedAccessKey=not*base64!", "not valid base64"),
    ("HostName=h.net;DeviceId=d;SharedAccessKey=" + KEY[:-3], "not valid base64"),
    ("HostName=h.net;DeviceId=d;x509=true", "X.509"),
    ("HostName=h/x;DeviceId=d;SharedAccessKey=" + KEY, "HostName is not a host name"),
    ("HostName=h.net;DeviceId=a/b;SharedAccessKey=" + KEY, "DeviceId contains"),
]

# Property bags: (dict, encoded form in insertion order).
BAGS = [
    ({}, ""),
    ({"a": "1"}, "a=1"),
    ({"temp alert": "true", "$.ct": "application/json", "$.ce": "utf-8"}, "temp%20alert=true&%24.ct=application%2Fjson&%24.ce=utf-8"),
    ({"$.mid": "m-1", "$.cid": "c/2", "k": "a=b&c"}, "%24.mid=m-1&%24.cid=c%2F2&k=a%3Db%26c"),
    ({"unicode": "\u00e9t\u00e9"}, "unicode=%C3%A9t%C3%A9"),
]

# C2D topics as the hub sends them: (topic, device id, expected properties or None).
C2D = [
    ("devices/dev1/messages/devicebound/", "dev1", {}),
    (
        "devices/dev1/messages/devicebound/%24.mid=42&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&iothub-ack=full&color=red",
        "dev1",
        {"$.mid": "42", "$.to": "/devices/dev1/messages/devicebound", "iothub-ack": "full", "color": "red"},
    ),
    ("devices/dev1/messages/devicebound/flag&x=", "dev1", {"flag": None, "x": ""}),
    ("devices/dev2/messages/devicebound/a=1", "dev1", None),
    ("$iothub/twin/res/200/?$rid=1", "dev1", None),
]

# Twin responses: (topic, (status, rid, version) or None or "raise").
TWIN_RES = [
    ("$iothub/twin/res/200/?$rid=7", (200, "7", None)),
    ("$iothub/twin/res/204/?$rid=8&$version=12", (204, "8", 12)),
    ("$iothub/twin/res/429/?$rid=abc", (429, "abc", None)),
    ("$iothub/twin/PATCH/properties/desired/?$version=3", None),
    ("devices/d/messages/devicebound/", None),
    ("$iothub/twin/res/abc/?$rid=7", "raise"),
    ("$iothub/twin/res/200/?$version=3", "raise"),
    ("$iothub/twin/res/200", "raise"),
    ("$iothub/twin/res/204/?$rid=8&$version=x1", "raise"),
    ("$iothub/twin/res/204/?$rid=%zz", "raise"),
]

DESIRED = [
    ("$iothub/twin/PATCH/properties/desired/?$version=3", 3),
    ("$iothub/twin/PATCH/properties/desired/$version=41", 41),
    ("$iothub/twin/res/200/?$rid=1", None),
    ("$iothub/twin/PATCH/properties/desired/?foo=1", "raise"),
    ("$iothub/twin/PATCH/properties/desired/?$version=-1", "raise"),
]

METHODS = [
    ("$iothub/methods/POST/reboot/?$rid=1", ("reboot", "1")),
    ("$iothub/methods/POST/set%20led/?$rid=ab12", ("set led", "ab12")),
    ("$iothub/methods/res/200/?$rid=1", None),
    ("$iothub/methods/POST/reboot/?x=1", "raise"),
    ("$iothub/methods/POST/reboot", "raise"),
]

# Retry delays: (attempt, jitter, min, max, elapsed, expected)
DELAYS = [
    (0, 0, 1000, 100000, 0, 1000),
    (1, 0, 1000, 100000, 0, 2000),
    (6, 0, 1000, 100000, 0, 64000),
    (7, 0, 1000, 100000, 0, 100000),
    (40, 0, 1000, 100000, 0, 100000),
    (2, 1234, 1000, 100000, 0, 5234),
    (2, 1234, 1000, 100000, 5000, 234),
    (0, 0, 1000, 100000, 3000, 0),
]

# Block ids (index -> id) and the block-list body for 2 blocks.
BLOCK_IDS = [(0, "MDAwMDAw"), (1, "MDAwMDAx"), (49999, "MDQ5OTk5")]
BLOCK_LIST_2 = (
    '<?xml version="1.0" encoding="utf-8"?><BlockList>'
    "<Latest>MDAwMDAw</Latest><Latest>MDAwMDAx</Latest></BlockList>"
)
BLOCK_LIST_0 = '<?xml version="1.0" encoding="utf-8"?><BlockList></BlockList>'
