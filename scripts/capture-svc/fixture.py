# Turns sniff.py's output into a fixture: fixture.py CAPTURE PT HEAD_BYTES N > out.txt
# (one RTP packet a line: seq timestamp marker dependency-descriptor payload-head).
import sys

DD_ID = 13  # Chromium's offer numbers the dependency descriptor 13


def rtp(b):
    cc, ext, pt = b[0] & 15, b[0] & 0x10, b[1] & 0x7f
    pos, exts = 12 + 4 * cc, {}
    if ext:
        prof = int.from_bytes(b[pos:pos + 2], 'big')
        n = int.from_bytes(b[pos + 2:pos + 4], 'big') * 4
        e, i = b[pos + 4:pos + 4 + n], 0
        pos += 4 + n
        while i < len(e):
            if e[i] == 0:
                i += 1
            elif prof == 0xBEDE:
                exts[e[i] >> 4] = e[i + 1:i + 2 + (e[i] & 15)]
                i += 2 + (e[i] & 15)
            else:
                exts[e[i]] = e[i + 2:i + 2 + e[i + 1]]
                i += 2 + e[i + 1]
    pay = b[pos:]
    if b[0] & 0x20 and pay:
        pay = pay[:-pay[-1]]
    return pt, b[1] >> 7, int.from_bytes(b[2:4], 'big'), int.from_bytes(b[4:8], 'big'), exts, pay


want_pt, head, n = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for line in open(sys.argv[1]):
    try:
        pt, m, seq, ts, exts, pay = rtp(bytes.fromhex(line.strip()))
    except (IndexError, ValueError):
        continue
    if pt != want_pt or not pay:
        continue  # other streams, RTX, padding-only probes
    print(seq, ts, m, exts.get(DD_ID, b'').hex(), pay[:head].hex())
    n -= 1
    if n == 0:
        break
