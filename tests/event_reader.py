"""A reader of TensorBoard event files written for the tests alone, from the formats' specs
and not from minicnn's writer: TFRecord framing with both CRCs checked against the crc32c
written here bit by bit, and a generic protocol-buffers wire decoder. It lets the tests
check what minicnn writes where TensorBoard itself is not installed."""
import glob
import os
import struct


def crc32c_bitwise(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def _masked(data):
    crc = crc32c_bitwise(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    """The messages of one file, each frame's CRCs checked."""
    data, at, out = open(path, "rb").read(), 0, []
    while at < len(data):
        header = data[at:at + 8]
        (length,), (header_crc,) = struct.unpack("<Q", header), struct.unpack("<I", data[at + 8:at + 12])
        assert header_crc == _masked(header), f"{path}: header CRC wrong at byte {at}"
        message = data[at + 12:at + 12 + length]
        (crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        assert len(message) == length and crc == _masked(message), f"{path}: record CRC wrong at byte {at}"
        out.append(message)
        at += 16 + length
    return out


def _varint(data, at):
    n, shift = 0, 0
    while True:
        byte = data[at]
        n |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return n, at


def fields(message):
    """{field number: [raw values]}: ints for varints, bytes for lengths-delimited, bytes of 8
    or 4 for fixed64 / fixed32."""
    out, at = {}, 0
    while at < len(message):
        key, at = _varint(message, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(message, at)
        elif wire == 1:
            value, at = message[at:at + 8], at + 8
        elif wire == 2:
            length, at = _varint(message, at)
            value, at = message[at:at + length], at + length
        elif wire == 5:
            value, at = message[at:at + 4], at + 4
        else:
            raise AssertionError(f"wire type {wire} is not one the event format uses")
        out.setdefault(number, []).append(value)
    return out


def events(log_dir, newest_file_only=False):
    """Every event of every events file in log_dir (or of its newest file), in file-name order: dicts with
    wall_time, step, file_version, and values: [(tag, kind, decoded)] where kind is
    'scalar' (a float), 'histo' ({min, max, num, sum, sum_squares, limits, counts}),
    'image' ({height, width, colorspace, png}) or 'tensor' ((plugin name, string))."""
    out = []
    paths = sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*")))
    for path in paths[-1:] if newest_file_only else paths:
        for message in records(path):
            f = fields(message)
            step = f.get(2, [0])[0]
            event = {"wall_time": struct.unpack("<d", f[1][0])[0],
                     "step": step - (1 << 64) if step >= 1 << 63 else step,
                     "file_version": f[3][0].decode() if 3 in f else None, "values": []}
            for value in fields(f[5][0]).get(1, []) if 5 in f else []:
                v = fields(value)
                tag = v[1][0].decode()
                if 2 in v:
                    event["values"].append((tag, "scalar", struct.unpack("<f", v[2][0])[0]))
                elif 5 in v:
                    h = fields(v[5][0])
                    doubles = {name: struct.unpack("<d", h[k][0])[0]
                               for k, name in enumerate(["min", "max", "num", "sum", "sum_squares"], 1)}
                    for k, name in ((6, "limits"), (7, "counts")):
                        packed = h[k][0]
                        doubles[name] = list(struct.unpack(f"<{len(packed) // 8}d", packed))
                    event["values"].append((tag, "histo", doubles))
                elif 4 in v:
                    i = fields(v[4][0])
                    event["values"].append((tag, "image", {"height": i[1][0], "width": i[2][0],
                                                           "colorspace": i[3][0], "png": i[4][0]}))
                elif 8 in v:
                    plugin = fields(fields(v[9][0])[1][0])[1][0].decode()
                    event["values"].append((tag, "tensor", (plugin, fields(v[8][0])[8][0].decode())))
            out.append(event)
    return out


def scalars(log_dir, tag, newest_file_only=False):
    """[(step, value)] of one curve, over every file of the folder (or its newest)."""
    return [(e["step"], value) for e in events(log_dir, newest_file_only) for t, kind, value in e["values"]
            if t == tag and kind == "scalar"]
