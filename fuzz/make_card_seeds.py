#!/usr/bin/env python3
"""Seeds for fuzz/fuzz_card.c (the virtual card's dispatcher).

Run from the repository root: python3 fuzz/make_card_seeds.py
Needs pyca/cryptography (AES) for the PUT KEY seeds: the key data is
encrypted under the factory DEK 40..4F (zero IV) with its KCV, as GPC
Amd D 7.2 says, so the fuzzer starts from commands the card accepts.
Chunk kinds: 00 raw, 01 handshake, 10 host-wrapped, 11 reset.
"""
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "card")
FACTORY = bytes(range(0x40, 0x50))


def chunk(kind, payload):
    return bytes([(kind << 6) | (len(payload) >> 8), len(payload) & 0xFF]) + payload


def raw(hexs):
    return chunk(0, bytes.fromhex(hexs))


def hs(level_index, kvn=0):
    return chunk(1, bytes([level_index, kvn]))


def host(hexs):
    return chunk(2, bytes.fromhex(hexs))


def aes_ecb(key, block):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def put_key(kvn, key, replace=0, short_form=False):
    body = bytes([kvn])
    for _ in range(3):
        ct = b"".join(aes_ecb(FACTORY, key[i:i + 16]) for i in range(0, len(key), 16))
        kcv = aes_ecb(key, b"\x01" * 16)[:3]
        blob = bytes([len(key)]) + ct if not short_form else ct
        body += bytes([0x88, len(blob)]) + blob + b"\x03" + kcv
    return chunk(2, bytes([0x80, 0xD8, replace, 0x81, len(body)]) + body + b"\x00")


SEEDS = {
    "select-getdata": [raw("00A4040008A000000151000000"), raw("00CA9F7F00"), raw("80CA006600"),
                       raw("80CA00E000"), raw("80CA00C100"), raw("80CA004200")],
    "bad-apdus": [raw("00"), raw("FFCA9F7F00"), raw("10CA9F7F00"), raw("00A4040100"),
                  raw("84823300100011223344556677889900AABBCCDDEEFF"), raw("00CA9F7F02AA")],
    "session-33": [hs(5), host("80CA9F7F00"), host("80F28002024F0000"),
                   host("80F24002024F0000"), raw("80CA9F7F00"), host("80CA00C100")],
    "session-levels": [hs(0), host("80CA00E000"), hs(1), host("80CA00E000"), hs(2),
                       host("80CA00E000"), hs(3), host("80CA00E000"), hs(4)],
    "putkey-128": [hs(5), put_key(1, bytes(range(16))), hs(5, 0x01), host("80CA00E000")],
    "putkey-256-short": [hs(1), put_key(2, bytes(range(32)), short_form=True)],
    "putkey-delete": [hs(5), put_key(1, FACTORY), host("80E4000003D20101"),
                      host("80E4000103D20101"), reset := chunk(3, b"")],
    "lifecycle": [hs(5), host("80F0807F"), host("80F0800F"), host("80F04080" "08F07363706B697401"),
                  host("80F04000" "08F07363706B697401"), host("80F080FF"), raw("00CA9F7F00")],
    "store": [raw("00A4040008F07363706B697401"), raw("00CA010100"), hs(5),
              host("00DA010104CAFEBABE"), host("00CA010100"), host("00DA010100"),
              raw("00CA010100"), host("00A4040000")],
    "wrong-kvn": [hs(5, 0x42), hs(5, 0xFF), raw("8050000010" + "00" * 16)],
}

os.makedirs(D, exist_ok=True)
for cfg, (name, chunks) in zip([8, 9, 9, 8, 137, 9, 8, 9, 6, 7], SEEDS.items()):
    with open(os.path.join(D, "seed-" + name), "wb") as f:
        f.write(bytes([cfg]) + b"".join(chunks))
