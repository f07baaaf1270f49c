"""GPShell's globalplatform library (kaoh/globalplatform) against the
virtual card through pcscd + vpcd: its recorded SCP03 exchanges replayed
byte for byte. Source of the vectors: kaoh/globalplatform,
globalplatform/src/scp03Test.c (delete_application, mutual_auth,
get_status): static keys ENC F995D0A0..., MAC 58563362..., DEK 0A02A6D6...,
KVN 30, i = 70 (S8, pseudo-random challenge), KDD all zero, ISD AID
A000000151000000 (the library's GP231_ISD_AID, also the card challenge's
context). The card is made with those keys and its sequence counter just
before the recording's (tests/card/make_card), so its INITIALIZE UPDATE
answers must equal the recorded ones to the byte, and the library's
recorded EXTERNAL AUTHENTICATE and protected commands must be accepted.
What the library expects on the way (globalplatform.c): IU 80 50 00 00 08
challenge 00 (Le present), a 32-byte IU response for i = 70, EA 84 82 03
00 10, protected commands with C-DEC and Le 00.
Usage: pcsc_gpshell.py READER  (card from: make_card DIR <keys> 30 70 000014 00..)"""

from pcsc_host import Reader, check, h, main

# (host challenge, IU request, IU response data, EA request, next command
# (or None), counters of the recording)
VECTORS = [
    ("delete_application",
     "8050000008B2BDE1A2DC66BD5600",
     "00000000000000000000" "300370" "C40932A6FEFEAEB2" "E127185170F45FCA" "000015",
     "848203001059D54D932423D29F6313C970875F8C2F",
     "84E400801829F06AEC3180B3EFE91FF662310B945DE0D5FE66AD67A5B6"),
    ("mutual_auth",
     "80500000089BD6BF878FB8E99100",
     "00000000000000000000" "300370" "3C80C2CC87EB3A35" "E4EDBA35E629C336" "00001E",
     "848203001023EBFEDC579D22CDCDB6A25A5FF7891F",
     None),
    ("get_status",
     "8050000008A6D40AEC55FE798600",
     "00000000000000000000" "300370" "B6E362D0F90F8101" "C34B7B21A7455320" "000025",
     "84820300103D958B36BB38AE5896A559345F81471A",
     "84F2400218D18C9A7BB2B1B1C7ED1B24E1B1307CB9D71A66ABC55CBC3A00"),
]


def select(r):
    _, sw = r.send(bytes.fromhex("00A4040008A00000015100000000"))
    check(sw == 0x9000, "SELECT ISD: %04X" % sw)


def test_recorded_sessions(name):
    r = Reader(name)
    seq = 0x14
    for label, iu, iu_resp, ea, cmd in VECTORS:
        want_seq = int(iu_resp[-6:], 16)
        select(r)
        # bring the counter to the recording's: abandoned handshakes
        while seq + 1 < want_seq:
            _, sw = r.send(bytes.fromhex("80500000080102030405060708"))
            check(sw == 0x9000, "%s: filler IU %04X" % (label, sw))
            seq += 1
        select(r)
        data, sw = r.send(bytes.fromhex(iu))
        check(sw == 0x9000, "%s: IU %04X" % (label, sw))
        check(h(data) == iu_resp.upper(),
              "%s: IU response\n got  %s\n want %s" % (label, h(data), iu_resp))
        seq = want_seq
        _, sw = r.send(bytes.fromhex(ea))
        check(sw == 0x9000, "%s: the library's EXTERNAL AUTHENTICATE refused: %04X" % (label, sw))
        if cmd is None:
            continue
        data, sw = r.send(bytes.fromhex(cmd))
        # the C-MAC verified and the data decrypted (6982 would say it did
        # not); what the recorded card held differs from this one
        check(sw != 0x6982, "%s: protected command refused as unauthentic" % label)
        if label == "get_status":
            check(sw == 0x9000 and data[:1] == b"\xE3", "%s: GET STATUS %04X %s" % (label, sw, h(data)))
        else:
            check(sw in (0x6A80, 0x6A88), "%s: DELETE of an absent AID: %04X" % (label, sw))
    r.close()


def test_tampered_ea(name):
    """The recorded EA once more with its MAC's last bit flipped, after a
    new IU: refused (6300), and no protected command runs after it."""
    r = Reader(name)
    select(r)
    _, sw = r.send(bytes.fromhex("80500000089BD6BF878FB8E99100"))
    check(sw == 0x9000, "IU %04X" % sw)
    ea = bytearray(bytes.fromhex(VECTORS[1][3]))
    ea[-1] ^= 1
    _, sw = r.send(bytes(ea))
    check(sw == 0x6300, "tampered EA: %04X" % sw)
    _, sw = r.send(bytes.fromhex(VECTORS[2][4]))
    check(sw == 0x6982, "protected command without a session: %04X" % sw)
    r.close()


if __name__ == "__main__":
    main([test_recorded_sessions, test_tampered_ea])
