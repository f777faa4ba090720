/**
 * The malformed-packet storm of test/tun-storm.test.ts, shared with bench/load.bench.ts's
 * mixed soak: /usr/bin/python3 with scapy, run inside a namespace, writes broken and random
 * IPv4/IPv6/ICMP/UDP packets straight onto the TUN device.
 */
/**
 * argv: device, packet count, seed. Prints one JSON line: packets sent, the drops they must
 * cause at least (one per broken packet or fragment set; none for fragments that can only
 * wait in a reassembly queue), the fragments left waiting, and the count per kind.
 */
export const STORM = String.raw`import json, random, socket, struct, sys, time
from scapy.all import IP, IPv6, ICMP, UDP, Raw, ICMPv6EchoRequest, fuzz, raw, conf

conf.verb = 0
iface, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(seed)  # scapy's random values come from this generator too: a seed replays the storm
K4, U4, K6, U6 = '198.18.0.1', '198.18.0.2', 'fd00:5757::1', 'fd00:5757::2'
A4 = lambda a: socket.inet_pton(socket.AF_INET, a)
A6 = lambda a: socket.inet_pton(socket.AF_INET6, a)

def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def ip4(payload, proto, opts=b'', ihl=None, tlen=None, flags_off=0, ident=None, check=None, ver=4):
    ihl = ihl if ihl is not None else 5 + len(opts) // 4
    tlen = tlen if tlen is not None else 20 + len(opts) + len(payload)
    ident = ident if ident is not None else random.randint(0, 65535)
    h = struct.pack('!BBHHHBBH4s4s', (ver << 4) | (ihl & 15), 0, tlen & 0xffff, ident, flags_off, 64, proto, 0, A4(K4), A4(U4)) + opts
    c = csum(h) if check is None else check
    return h[:10] + struct.pack('!H', c) + h[12:] + payload

def icmp4(typ=8, data=b'ping', check=None):
    m = struct.pack('!BBHHH', typ, 0, 0, random.randint(0, 65535), 1) + data
    c = csum(m) if check is None else check
    return m[:2] + struct.pack('!H', c) + m[4:]

def pseudo6(nh, length):
    return A6(K6) + A6(U6) + struct.pack('!IxxxB', length, nh)

def udp6(dport, data, check=None, ulen=None):
    ulen = ulen if ulen is not None else 8 + len(data)
    u = struct.pack('!HHHH', random.randint(1024, 65535), dport, ulen, 0) + data
    c = csum(pseudo6(17, len(u)) + u) if check is None else check
    return u[:6] + struct.pack('!H', c) + u[8:]

def udp4(dport, data, check=None, ulen=None):
    ulen = ulen if ulen is not None else 8 + len(data)
    u = struct.pack('!HHHH', random.randint(1024, 65535), dport, ulen, 0) + data
    c = csum(A4(K4) + A4(U4) + struct.pack('!xBH', 17, len(u)) + u) if check is None else check
    return u[:6] + struct.pack('!H', c) + u[8:]

def icmp6(typ=128, data=b'ping', check=None):
    m = struct.pack('!BBHHH', typ, 0, 0, random.randint(0, 65535), 1) + data
    c = csum(pseudo6(58, len(m)) + m) if check is None else check
    return m[:2] + struct.pack('!H', c) + m[4:]

def ip6(nh, payload, plen=None, ver=6):
    plen = plen if plen is not None else len(payload)
    return struct.pack('!IHBB16s16s', ver << 28, plen & 0xffff, nh, 64, A6(K6), A6(U6)) + payload

def frag6(nh, off, more, ident, data):
    return struct.pack('!BBHI', nh, 0, (off << 3) | (1 if more else 0), ident) + data

# Each generator returns (packets, drops it must cause at least, fragments it leaves held).
# Fuzzed packets are random, not necessarily broken (scapy still fills in some checksums
# and lengths), so they promise no drop: a valid one is answered instead.
def fuzz_ip_icmp(): return [raw(fuzz(IP(src=K4, dst=U4) / ICMP()))], 0, 0
def fuzz_ip_udp(): return [raw(fuzz(IP(src=K4, dst=U4) / UDP(dport=7) / Raw(b'abc')))], 0, 0
# Version and addresses fixed so the packet gets past the first check and tests the rest.
def fuzz_ip6_icmp(): return [raw(IPv6(src=K6, dst=U6) / fuzz(ICMPv6EchoRequest()))], 0, 0
def fuzz_ip6_udp(): return [raw(IPv6(src=K6, dst=U6) / fuzz(UDP(dport=7) / Raw(b'abc')))], 0, 0
def v4_bad_header_checksum(): return [ip4(icmp4(), 1, check=0x1234)], 1, 0
def v4_total_length_long(): return [ip4(icmp4(), 1, tlen=200)], 1, 0
def v4_total_length_short(): return [ip4(icmp4(), 1, tlen=12)], 1, 0
def v4_ihl_small(): return [ip4(icmp4(), 1, ihl=3)], 1, 0
def v4_ihl_beyond(): return [ip4(b'', 1, ihl=15, tlen=20)], 1, 0
# A timestamp option (RFC 791) claiming 16 bytes with 4 in the header.
def v4_truncated_option(): return [ip4(icmp4(), 1, opts=b'\x44\x10\x05\x00')], 1, 0
def v4_bad_version(): return [ip4(icmp4(), 1, ver=5)], 1, 0
def icmp4_bad_checksum(): return [ip4(icmp4(check=0x4242), 1)], 1, 0
def udp4_bad_checksum(): return [ip4(udp4(7, b'hello', check=0x4242), 17)], 1, 0
def udp4_length_long(): return [ip4(udp4(7, b'hello', ulen=300), 17)], 1, 0
def udp4_length_short(): return [ip4(udp4(7, b'hello', ulen=4), 17)], 1, 0
def v4_overlap():
    u = udp4(9, bytes(56))
    i = random.randint(0, 65535)
    return [ip4(u[:32], 17, ident=i, flags_off=0x2000), ip4(u[16:], 17, ident=i, flags_off=2)], 1, 0
def v4_tiny_incomplete():
    u = udp4(9, bytes(64))
    i = random.randint(0, 65535)
    frags = [ip4(u[o:o + 8], 17, ident=i, flags_off=0x2000 | (o // 8)) for o in range(0, len(u) - 8, 8)]
    return frags, 0, len(frags)
def v4_tiny_complete():
    # Reassembles into a datagram for a closed port: one drop (udp.drop.no-port) for the lot.
    u = udp4(9, bytes(24))
    i = random.randint(0, 65535)
    n = len(u) // 8
    return [ip4(u[k * 8:k * 8 + 8], 17, ident=i, flags_off=(0x2000 if k < n - 1 else 0) | k) for k in range(n)], 1, 0
def v4_fragment_bad_length():
    return [ip4(bytes(13), 17, flags_off=0x2000)], 1, 0
def v6_plen_long(): return [ip6(58, icmp6(), plen=500)], 1, 0
def v6_bad_version(): return [ip6(58, icmp6(), ver=7)], 1, 0
def v6_truncated_ext(): return [ip6(0, b'\x3a\x00\x01')], 1, 0
def v6_hbh_not_first(): return [ip6(60, b'\x00\x00\x01\x04\x00\x00\x00\x00' + b'\x3a\x00\x01\x04\x00\x00\x00\x00' + icmp6())], 1, 0
def v6_unknown_option_discard(): return [ip6(60, b'\x3a\x00\x80\x04\x00\x00\x00\x00' + icmp6())], 1, 0
def v6_routing_type0(): return [ip6(43, b'\x3a\x02\x00\x01\x00\x00\x00\x00' + A6(K6) + icmp6())], 1, 0
def v6_unknown_next_header(): return [ip6(253, b'x' * 16)], 1, 0
def icmp6_bad_checksum(): return [ip6(58, icmp6(check=0x4242))], 1, 0
def udp6_bad_checksum(): return [ip6(17, udp6(7, b'hello', check=0x4242))], 1, 0
# RFC 8200 §8.1: a zero UDP checksum is not allowed over IPv6.
def udp6_zero_checksum(): return [ip6(17, udp6(7, b'hello', check=0))], 1, 0
def udp6_length_long(): return [ip6(17, udp6(7, b'hello', ulen=300))], 1, 0
def v6_frag_bad_length(): return [ip6(44, frag6(17, 0, True, random.getrandbits(32), bytes(13)))], 1, 0
def v6_overlap():
    u = udp6(9, bytes(56))
    i = random.getrandbits(32)
    return [ip6(44, frag6(17, 0, True, i, u[:32])), ip6(44, frag6(17, 2, False, i, u[16:]))], 1, 0
def v6_tiny_incomplete():
    u = udp6(9, bytes(64))
    i = random.getrandbits(32)
    frags = [ip6(44, frag6(17, o // 8, True, i, u[o:o + 8])) for o in range(0, len(u) - 8, 8)]
    return frags, 0, len(frags)
def random_bytes():
    return [bytes(random.getrandbits(8) for _ in range(random.randint(1, 80)))], 1, 0

gens = [fuzz_ip_icmp, fuzz_ip_udp, fuzz_ip6_icmp, fuzz_ip6_udp, v4_bad_header_checksum, v4_total_length_long,
        v4_total_length_short, v4_ihl_small, v4_ihl_beyond, v4_truncated_option, v4_bad_version,
        icmp4_bad_checksum, udp4_bad_checksum, udp4_length_long, udp4_length_short, v4_overlap,
        v4_tiny_incomplete, v4_tiny_complete, v4_fragment_bad_length, v6_plen_long, v6_bad_version,
        v6_truncated_ext, v6_hbh_not_first, v6_unknown_option_discard, v6_routing_type0,
        v6_unknown_next_header, icmp6_bad_checksum, udp6_bad_checksum, udp6_zero_checksum, udp6_length_long,
        v6_frag_bad_length, v6_overlap, v6_tiny_incomplete, random_bytes]
packets, drops, held, per = [], 0, 0, {}
while len(packets) < count:
    g = random.choice(gens)
    p, d, h = g()
    packets += p
    drops += d
    held += h
    per[g.__name__] = per.get(g.__name__, 0) + len(p)

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
for i, p in enumerate(packets):
    s.send(p)
    if i % 16 == 15: time.sleep(0.002)
print(json.dumps({'sent': len(packets), 'minDrops': drops, 'held': held, 'per': per}), flush=True)
`;
