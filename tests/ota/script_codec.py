#!/usr/bin/env python3
"""Independent Amd B script codec for the shell tests (not scpkit's):
  script_codec.py decode FILE         AE 80 {22 L C-APDU}.. 00 00 -> one hex C-APDU a line
  script_codec.py encode HEX...       R-APDUs -> AF 80 {23 L R-APDU}.. 00 00 on stdout
BER lengths per ETSI TS 102 226 (81 xx for 128..255, 82 xx xx above)."""
import sys


def ber_len(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


def decode(b):
    assert b[0] == 0xAE and b[1] == 0x80, "not an indefinite command script"
    i, out = 2, []
    while True:
        if b[i] == 0 and b[i + 1] == 0:
            assert i + 2 == len(b), "bytes after the end"
            return out
        assert b[i] == 0x22, "unknown tag %02X" % b[i]
        n = b[i + 1]
        i += 2
        if n == 0x81:
            n, i = b[i], i + 1
        elif n == 0x82:
            n, i = b[i] << 8 | b[i + 1], i + 2
        out.append(b[i:i + n])
        i += n


if sys.argv[1] == "decode":
    for c in decode(open(sys.argv[2], "rb").read()):
        print(c.hex().upper())
else:
    body = b"\xAF\x80" + b"".join(b"\x23" + ber_len(len(r)) + r
                                  for r in (bytes.fromhex(h) for h in sys.argv[2:])) + b"\x00\x00"
    sys.stdout.buffer.write(body)
