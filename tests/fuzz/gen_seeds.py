#!/usr/bin/env python3
"""gen_seeds.py - writes the seed corpus of fuzz_relay_proto: a consumer's
stream (the chunk-size byte the target reads first, then frames) with
valid Subscribe frames of every start mode and filter, the token the
target's relay wants, and heartbeats after them.

usage: tests/fuzz/gen_seeds.py tests/fuzz/corpus/relay_proto
"""
import os
import struct
import sys

TOKEN = b"fuzz-token"


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, val):
    """A protobuf field: int -> varint, bytes -> length-delimited."""
    if isinstance(val, int):
        return varint(num << 3) + varint(val & (2**64 - 1))
    return varint(num << 3 | 2) + varint(len(val)) + val


def msg(*fields):
    return b"".join(field(n, v) for n, v in fields)


def frame(num, body):
    payload = field(num, body)
    return struct.pack(">I", len(payload)) + payload


def subscribe(*extra, token=TOKEN, version=1):
    return frame(1, msg((1, version), (2, b"seed"), (8, token), *extra))


HB = frame(3, msg((1, 5), (4, 0)))
SEEDS = {
    "earliest": subscribe((3, 1)) + HB,
    "latest": subscribe((3, 2)) + HB + HB,
    "scn": subscribe((3, 0), (4, (3 << 32) | 1100)),
    "tables": subscribe((3, 1), (5, b"shop.*"), (5, b"crm.people")),
    "hash": subscribe((3, 1), (6, msg((1, 1), (2, 4), (3, 0), (3, 2)))),
    "mod": subscribe((3, 1), (6, msg((1, 2), (2, 3), (3, 1), (4, b"id")))),
    "range": subscribe((3, 1), (6, msg((1, 3), (2, 1), (3, 0), (5, 5), (6, 30)))),
    "projection": subscribe((3, 1), (7, msg((1, b"shop.*"), (2, b"id")))),
    "small-batch": subscribe((3, 1), (9, 100), (10, 65536)),
    "snapshot": subscribe((3, 1), (11, msg((1, b"shop.orders"), (3, 10)))),
    "badtoken": subscribe((3, 1), token=b"nope"),
    "version2": subscribe((3, 1), version=2),
    "hb-first": HB + subscribe((3, 1)),
    "twice": subscribe((3, 1)) + subscribe((3, 1)),
    "too-old": subscribe((3, 0), (4, 1)),
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, body in SEEDS.items():
    for chunk in (0, 3):
        with open(os.path.join(out, "%s-%d" % (name, chunk)), "wb") as f:
            f.write(bytes([chunk]) + body)
