# Sniffs UDP on lo (AF_PACKET; root) for argv[2] seconds and writes each
# RTP-looking datagram (not RTCP) as one hex line to argv[1].
import socket, struct, sys, time
out = open(sys.argv[1], 'w')
limit = time.time() + float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
s.bind(('lo', 0))
s.settimeout(0.5)
n = 0
while time.time() < limit:
    try:
        pkt, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING:
        continue  # each loopback packet shows up twice
    eth = pkt[14:]
    if len(eth) < 28 or eth[0] >> 4 != 4 or eth[9] != 17:
        continue
    ihl = (eth[0] & 15) * 4
    udp = eth[ihl + 8:]
    if len(udp) < 12 or udp[0] >> 6 != 2:
        continue
    pt = udp[1] & 0x7f
    if 72 <= pt <= 76:
        continue
    out.write(udp.hex() + '\n')
    n += 1
out.close()
print('captured', n, file=sys.stderr)
