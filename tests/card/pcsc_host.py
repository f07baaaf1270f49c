"""A small, independent SCP03 host and PC/SC helper for the interop tests
(tests/card/pcsc_*.py), written from GPC Amendment D with
python3-cryptography, so the card is checked against a second
implementation rather than scpkit's own host. APDU encodings follow what
each public client sends (short or extended, Le or not): the caller says.

Facts (GPC v2.3 Amd D): KDF = NIST SP800-108 counter mode with AES-CMAC,
input 11 x 00 | constant | 00 | L (bits, 2 bytes) | i | context; constants
00 card cryptogram, 01 host cryptogram, 04 S-ENC, 06 S-MAC, 07 S-RMAC.
C-MAC over chaining value | header (Lc counting the MAC) | data; C-DEC ICV
= AES(S-ENC, counter as 16 bytes), padding 80 00..; R-MAC over chaining
value | data | SW; R-ENC ICV = AES(S-ENC, 80 | counter as 15 bytes)."""

import os
import struct
import sys

from cryptography.hazmat.primitives import cmac, constant_time
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

FACTORY_KEY = bytes(range(0x40, 0x50))


class Fail(Exception):
    pass


checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        raise Fail(what)


def h(b):
    return b.hex().upper()


def _cmac(key, data):
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def _aes_ecb(key, block):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # nosec: one block, ICV
    return e.update(block) + e.finalize()


def _cbc(key, iv, data, enc):
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    x = c.encryptor() if enc else c.decryptor()
    return x.update(data) + x.finalize()


def kdf(key, const, context, bits):
    out = b""
    for i in range(1, (bits + 127) // 128 + 1):
        out += _cmac(key, b"\0" * 11 + struct.pack(">BBHB", const, 0, bits, i) + context)
    return out[: bits // 8]


def pad80(data):
    data += b"\x80"
    return data + b"\0" * (-len(data) % 16)


def unpad80(data):
    s = data.rstrip(b"\0")
    if not s or s[-1] != 0x80:
        raise Fail("bad R-ENC padding")
    return s[:-1]


def encode(cla, ins, p1, p2, data=b"", le=None, extended=False):
    """A C-APDU; le None: no Le field; le 0 with extended: 0000."""
    hdr = bytes([cla, ins, p1, p2])
    if extended:
        out = hdr
        if data:
            out += b"\0" + struct.pack(">H", len(data)) + data
        if le is not None:
            out += (b"" if data else b"\0") + struct.pack(">H", le & 0xFFFF)
        return out
    out = hdr
    if data:
        out += bytes([len(data)]) + data
    if le is not None:
        out += bytes([le & 0xFF])
    return out


class Scp03:
    """One host session. s16: 16-byte challenges/cryptograms/MACs."""

    def __init__(self, enc, mac, dek=None, s16=False):
        self.enc, self.mac, self.dek = enc, mac, dek
        self.s16 = s16
        self.n = 16 if s16 else 8

    def iu_data(self, host_challenge=None):
        self.hc = host_challenge or os.urandom(self.n)
        return self.hc

    def iu_response(self, resp):
        n = self.n
        check(len(resp) in (10 + 3 + 2 * n, 10 + 3 + 2 * n + 3), "IU response length %d" % len(resp))
        self.kdd, self.kvn, self.scp, self.i = resp[:10], resp[10], resp[11], resp[12]
        self.cc = resp[13 : 13 + n]
        crypt = resp[13 + n : 13 + 2 * n]
        self.seq = resp[13 + 2 * n :]
        check(self.scp == 3, "SCP %02X in the IU response" % self.scp)
        ctx = self.hc + self.cc
        kl = len(self.enc) * 8
        self.senc = kdf(self.enc, 0x04, ctx, kl)
        self.smac = kdf(self.mac, 0x06, ctx, kl)
        self.srmac = kdf(self.mac, 0x07, ctx, kl)
        want = kdf(self.smac, 0x00, ctx, n * 8)
        check(constant_time.bytes_eq(want, crypt), "card cryptogram does not verify")
        self.host_cryptogram = kdf(self.smac, 0x01, ctx, n * 8)
        self.chain = b"\0" * 16
        self.counter = 0
        return self.host_cryptogram

    def external_authenticate(self, level, extended=False):
        self.level = level
        return self._mac_wrap(0x84, 0x82, level, 0x00, self.host_cryptogram, None, extended)

    def _mac_wrap(self, cla, ins, p1, p2, data, le, extended):
        # the MAC covers the header as sent, with Lc counting the MAC
        body = encode(cla, ins, p1, p2, data + b"\0" * self.n, None, extended)[: -self.n]
        full = _cmac(self.smac, self.chain + body)
        self.chain = full
        return encode(cla, ins, p1, p2, data + full[: self.n], le, extended)

    def wrap(self, cla, ins, p1, p2, data=b"", le=None, extended=False, encrypt_empty=False):
        """C-MAC (and C-DEC at levels 03/13/33) one plain command.
        encrypt_empty: encrypt a padding block for empty data (yubikit
        does; GP leaves empty data unencrypted)."""
        self.counter += 1
        if self.level & 0x02 and (data or encrypt_empty):
            icv = _aes_ecb(self.senc, self.counter.to_bytes(16, "big"))
            data = _cbc(self.senc, icv, pad80(data), True)
        return self._mac_wrap(cla | 0x04, ins, p1, p2, data, le, extended)

    def unwrap(self, data, sw):
        """Check R-MAC, undo R-ENC (levels 11/13/33); errors carry no MAC."""
        if not (self.level & 0x10) or not (sw == 0x9000 or sw >> 8 in (0x62, 0x63)):
            return data
        check(len(data) >= self.n, "response shorter than its R-MAC")
        body, mac = data[: -self.n], data[-self.n :]
        want = _cmac(self.srmac, self.chain + body + struct.pack(">H", sw))[: self.n]
        check(constant_time.bytes_eq(want, mac), "R-MAC does not verify")
        if self.level & 0x20 and body:
            icv = _aes_ecb(self.senc, b"\x80" + self.counter.to_bytes(15, "big"))
            body = unpad80(_cbc(self.senc, icv, body, False))
        return body


class Reader:
    """One PC/SC connection to the named reader (pyscard)."""

    def __init__(self, name):
        from smartcard.System import readers

        rs = [r for r in readers() if str(r) == name]
        if not rs:
            raise Fail("no reader %r" % name)
        self.conn = rs[0].createConnection()
        self.conn.connect()
        self.atr = bytes(self.conn.getATR())

    def send(self, apdu):
        data, sw1, sw2 = self.conn.transmit(list(apdu))
        return bytes(data), (sw1 << 8) | sw2

    def sw(self, apdu):
        return self.send(apdu)[1]

    def close(self):
        self.conn.disconnect()


def tlv_list(b):
    """BER-TLV objects at one level: [(tag, value)], bounded."""
    out, k = [], 0
    while k < len(b):
        tag = b[k]
        k += 1
        if tag & 0x1F == 0x1F:
            while True:
                check(k < len(b), "TLV tag runs past the end")
                tag = tag << 8 | b[k]
                k += 1
                if not b[k - 1] & 0x80:
                    break
        check(k < len(b), "TLV length missing")
        ln = b[k]
        k += 1
        if ln & 0x80:
            nb = ln & 0x7F
            check(1 <= nb <= 2 and k + nb <= len(b), "TLV long length")
            ln = int.from_bytes(b[k : k + nb], "big")
            k += nb
        check(k + ln <= len(b), "TLV value runs past the end")
        out.append((tag, b[k : k + ln]))
        k += ln
    return out


def main(tests):
    """Run each test(reader_name) in turn; one line per failure."""
    name = sys.argv[1]
    failed = 0
    for t in tests:
        try:
            t(name)
            print("ok   %s" % t.__name__)
        except Fail as e:
            failed += 1
            print("FAIL %s: %s" % (t.__name__, e))
    print("%s: %d checks, %d tests failed" % (os.path.basename(sys.argv[0]), checks, failed))
    sys.exit(1 if failed else 0)
