#!/usr/bin/env python3
"""Regenerate the hand-made part of the seed corpus in fuzz/corpus/.

Run from the repository root: python3 fuzz/make_seeds.py
Needs pyca/cryptography (AES) only for the PUT KEY seeds. Files are named
seed-<what>; files the fuzzer found are kept beside them as found-<sha1>.
The wrapped commands and responses are taken from the public transcripts in
tests/vectors/scp03_*.txt (pySim, kaoh, OpenSCP, Yubico, openjavacard).
"""
import glob
import os
import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(bytes(data))


def vector_fields(*names):
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "..", "..", "tests", "vectors", "scp03_*.txt"))):
        for line in open(path):
            m = re.match(r"^([a-z_]+) = ([0-9a-fA-F]+)\s*$", line)
            if m and m.group(1) in names:
                out.append(bytes.fromhex(m.group(2)))
    return out


def apdu(cla, ins, p1, p2, data=b"", le=None, ext=False):
    b = bytes([cla, ins, p1, p2])
    if ext:
        if data:
            b += bytes([0, len(data) >> 8, len(data) & 0xFF]) + data
            if le is not None:
                b += bytes([(le >> 8) & 0xFF, le & 0xFF])
        elif le is not None:
            b += bytes([0, (le >> 8) & 0xFF, le & 0xFF])
        return b
    if data:
        b += bytes([len(data)]) + data
    if le is not None:
        b += bytes([le & 0xFF])
    return b


ISD = bytes.fromhex("A000000151000000")
PLAIN = {
    "case1": apdu(0x00, 0x70, 0x00, 0x00),
    "case2-le256": apdu(0x00, 0xCA, 0x9F, 0x7F, le=0),
    "case2-cplc": apdu(0x80, 0xCA, 0x9F, 0x7F, le=0),
    "case3-storedata": apdu(0x80, 0xE2, 0x88, 0x00, bytes.fromhex("4F07A0000001510000")),
    "case4-select-isd": apdu(0x00, 0xA4, 0x04, 0x00, ISD, le=0),
    "case4-getstatus": apdu(0x80, 0xF2, 0x40, 0x02, bytes.fromhex("4F00"), le=0),
    "case4-chan3": apdu(0x83, 0xF2, 0x80, 0x02, bytes.fromhex("4F00"), le=0),
    "case4-further-chan": apdu(0xC5, 0xCA, 0x00, 0x66, bytes.fromhex("00"), le=0),
    "case2e": apdu(0x00, 0xB0, 0x00, 0x00, le=0, ext=True),
    "case3e": apdu(0x80, 0xE8, 0x00, 0x01, bytes(range(256)) * 2, ext=True),
    "case4e": apdu(0x00, 0xD6, 0x00, 0x00, bytes(300), le=0x1234, ext=True),
    "case4e-small": apdu(0x00, 0xD6, 0x00, 0x00, b"\x55", le=0, ext=True),
    "delete-key": apdu(0x80, 0xE4, 0x00, 0x00, bytes.fromhex("D00101D20130")),
    "case3-255": apdu(0x80, 0xE2, 0x00, 0x00, bytes(255)),
}


def seeds_apdu():
    for k, v in PLAIN.items():
        put("apdu", k, v)
    for i, w in enumerate(vector_fields("c_wrapped", "init_update_cmd", "ext_auth_cmd")[:24]):
        put("apdu", "vector-cmd-%02d" % i, w)
    for i, w in enumerate(vector_fields("r_wrapped", "init_update_resp")[:8]):
        put("apdu", "vector-resp-%02d" % i, w)
    edge = {
        "empty": b"",
        "three": b"\x00\xA4\x04",
        "lc-over": bytes.fromhex("00A4040005A000"),
        "lc-under": bytes.fromhex("00A4040001A0000000"),
        "lc-zero": bytes.fromhex("00A4040000A0"),
        "ext-trunc": bytes.fromhex("00A404000001 00AA".replace(" ", "")),
        "ext-lc0": bytes.fromhex("00A4040000000 0AA".replace(" ", "")),
        "ext-le-only-0000": bytes.fromhex("00B00000000000"),
        "sw-9000": bytes.fromhex("9000"),
        "sw-6310": bytes.fromhex("01026310"),
    }
    for k, v in edge.items():
        put("apdu", "edge-" + k, v)


def seeds_tlv():
    cplc = bytes.fromhex("9F7F2A") + bytes(range(42))
    card_data = bytes.fromhex(
        "664C734A06072A864886FC6B01600C060A2A864886FC6B02020201630906072A864886FC6B03640B06092A86"
        "4886FC6B040370640B06092A864886FC6B048000650A06082A864886FC6B0502660C060A2B060104012A026E0103")
    fci = bytes.fromhex("6F108408A000000151000000A5049F6501FF")
    status = bytes.fromhex("E3124F07A00000015100009F700107C5039EFE80")
    seeds = {
        "cplc": cplc,
        "card-data": card_data,
        "fci": fci,
        "get-status": status * 3,
        "len81": bytes.fromhex("C481") + bytes([0x90]) + bytes(0x90),
        "len82": bytes.fromhex("C48201") + bytes([0x10]) + bytes(0x110),
        "len83": bytes.fromhex("C483000020") + bytes(0x20),
        "tag3": bytes.fromhex("DF8F01020102"),
        "nested-deep": bytes.fromhex("E10CE20AE308E406E504E6020101"),
        "key-info": bytes.fromhex("E012C00401FF8010C00402FF8010C00403FF8010"),
        "bad-len84": bytes.fromhex("C48400000001AA"),
        "bad-indefinite": bytes.fromhex("E180C00100"),
        "bad-overrun": bytes.fromhex("E105C00500"),
        "bad-tag-cont": bytes.fromhex("9FFF"),
        "zero-tags": bytes(8),
        "ff-padding": bytes.fromhex("C001AAFFFF"),
    }
    for k, v in seeds.items():
        put("tlv", k, v)


DEK = bytes(range(0x40, 0x50))


def enc_key(key, dek=DEK):
    pt = key + bytes(-len(key) % 16)
    e = Cipher(algorithms.AES(dek), modes.CBC(bytes(16))).encryptor()
    return e.update(pt) + e.finalize()


def kcv(key):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return (e.update(b"\x01" * 16) + e.finalize())[:3]


def key_block(key, short=False):
    ct = enc_key(key)
    if short:
        return bytes([0x88, len(ct)]) + ct + b"\x03" + kcv(key)
    return bytes([0x88, len(ct) + 1, len(key)]) + ct + b"\x03" + kcv(key)


def putkey_field(n, kvn=0x30, short=False):
    keys = [bytes((b + 0x11 * i) & 0xFF for b in range(n)) for i in range(1, 4)]
    return bytes([kvn]) + b"".join(key_block(k, short) for k in keys)


def seeds_putkey():
    for n in (16, 24, 32):
        put("putkey", "aes%d" % (8 * n), putkey_field(n))
    put("putkey", "aes128-yubikit-form", putkey_field(16, short=True))
    put("putkey", "aes256-short-form", putkey_field(32, short=True))
    f = bytearray(putkey_field(16))
    f[10] ^= 1
    put("putkey", "aes128-bad-ct", f)
    put("putkey", "aes128-trailing", putkey_field(16) + b"\x00")
    put("putkey", "aes128-truncated", putkey_field(16)[:40])
    put("putkey", "mixed-16-32", putkey_field(16)[:24] + putkey_field(32)[40:])
    put("putkey", "des-type", bytes.fromhex("30801010") + bytes(16) + bytes.fromhex("03000000"))
    for k, v in {"del-both": "D00101D20130", "del-rev": "D20130D00101", "del-kvn": "D201FF",
                 "del-dup": "D20130D20131", "del-len2": "D2023031"}.items():
        put("putkey", k, bytes.fromhex(v))


def chunk(payload, host=False, pos=0, flip=0):
    if host:
        payload = bytes([pos >> 8, pos & 0xFF, flip]) + payload
    n = len(payload) | (0x8000 if host else 0)
    return bytes([n >> 8, n & 0xFF]) + payload


def seeds_unwrap():
    plains = list(PLAIN.values())
    for cfg in (0, 1, 2, 3, 4, 5, 11, 23, 29, 41, 53, 71):
        body = b"".join(chunk(p, host=True) for p in plains[(cfg % 5):(cfg % 5) + 5])
        put("unwrap", "cfg%02d-host" % cfg, bytes([cfg]) + body)
    put("unwrap", "cfg05-tamper-mac", bytes([5]) + chunk(PLAIN["case4-select-isd"], True, 30, 1))
    put("unwrap", "cfg05-tamper-cla", bytes([5]) + chunk(PLAIN["case4-select-isd"], True, 0, 4))
    put("unwrap", "cfg05-tamper-le", bytes([5]) + chunk(PLAIN["case4-getstatus"], True, 0xFFFF, 1))
    put("unwrap", "cfg03-tamper-lc", bytes([3]) + chunk(PLAIN["case3-storedata"], True, 4, 0x10))
    wrapped = vector_fields("c_wrapped")
    for i, w in enumerate(wrapped[:12]):
        put("unwrap", "cfg%02d-raw-vector-%02d" % (5 + 6 * (i % 3), i), bytes([5 + 6 * (i % 3)]) + chunk(w))
    put("unwrap", "cfg05-raw-plain", bytes([5]) + chunk(PLAIN["case1"]))
    put("unwrap", "cfg00-raw-then-host", bytes([0]) + chunk(PLAIN["case1"]) + chunk(PLAIN["case1"], True))
    put("unwrap", "cfg05-cut", bytes([5]) + bytes.fromhex("8040") + bytes(10))


def answer_chunk(data, sw, pos=0, flip=0):
    payload = bytes([pos >> 8, pos & 0xFF, flip, sw >> 8, sw & 0xFF]) + data
    n = len(payload) | 0x8000
    return bytes([n >> 8, n & 0xFF]) + payload


def seeds_hostunwrap():
    answers = [(b"", 0x9000), (bytes(range(20)), 0x9000), (bytes(255), 0x6310),
               (b"\xE3\x03\x4F\x01\xAA", 0x6283), (b"", 0x6A82), (bytes(40), 0x9000)]
    for cfg in (0, 1, 2, 3, 4, 5, 11, 17, 23, 29, 35):
        body = b"".join(answer_chunk(d, sw) for d, sw in answers)
        put("hostunwrap", "cfg%02d-answers" % cfg, bytes([cfg]) + body)
    put("hostunwrap", "cfg05-tamper-mac", bytes([5]) + answer_chunk(bytes(20), 0x9000, 0xFFFF, 1))
    put("hostunwrap", "cfg05-tamper-sw", bytes([5]) + answer_chunk(bytes(20), 0x9000, 0xFFFE, 0x10))
    put("hostunwrap", "cfg33-tamper-data", bytes([33]) + answer_chunk(bytes(33), 0x9000, 3, 0x80))
    resps = vector_fields("r_wrapped")
    for i, r in enumerate(resps[:10]):
        n = len(r)
        put("hostunwrap", "cfg%02d-raw-vector-%02d" % (5 + 6 * (i % 3), i),
            bytes([5 + 6 * (i % 3)]) + bytes([n >> 8, n & 0xFF]) + r)
    for i, r in enumerate(vector_fields("init_update_resp")[:6]):
        n = len(r)
        put("hostunwrap", "cfg05-iu-resp-%02d" % i, bytes([5]) + bytes([n >> 8, n & 0xFF]) + r)
    put("hostunwrap", "cfg05-sw-only", bytes([5]) + bytes.fromhex("00029000"))
    put("hostunwrap", "cfg05-short", bytes([5]) + bytes.fromhex("000190"))


if __name__ == "__main__":
    seeds_hostunwrap()
    seeds_apdu()
    seeds_tlv()
    seeds_putkey()
    seeds_unwrap()
