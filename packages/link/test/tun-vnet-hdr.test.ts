/** The virtio-net header codec (virtio 1.2 §5.1.6) and its mapping to PacketInfo. */
import { fc, test as fcTest } from '@fast-check/vitest';
import { fromHex, ParseError, toHex } from '@stepwire/wire';
import { arbitraryBytes, decodesOrParseError } from '@stepwire/wire/testing';
import { describe, expect, it } from 'vitest';
import { arbitrarySendPacketInfo, arbitraryVnetHdr } from '../src/testing.ts';
import {
  decodeVnetHdr,
  encodeVnetHdr,
  PLAIN_VNET_HDR,
  packetInfoFromVnetHdr,
  VNET_HDR_LEN,
  vnetHdrFromPacketInfo,
} from '../src/vnet-hdr.ts';

/** A minimal IPv4 + TCP header pair (20 + 20 bytes, TCP data offset `doff` words) and payload. */
function tcp4(doff = 5, payload = 100): Uint8Array {
  const p = new Uint8Array(20 + doff * 4 + payload);
  p[0] = 0x45;
  p[9] = 6;
  p[20 + 12] = doff << 4;
  return p;
}

function tcp6(payload = 100): Uint8Array {
  const p = new Uint8Array(40 + 20 + payload);
  p[0] = 0x60;
  p[6] = 6;
  p[40 + 12] = 5 << 4;
  return p;
}

describe('virtio-net header vectors', () => {
  // No RFC or spec vectors exist; these are laid out by hand from the field table of virtio
  // 1.2 §5.1.6 (u8 flags, u8 gso_type, le16 hdr_len, gso_size, csum_start, csum_offset),
  // and the first is what Linux's tun_put_user writes for a 64 KB TSO packet from local
  // TCP: NEEDS_CSUM, GSO_TCPV4, MSS 1448, checksum at 20 + 16.
  const vectors = [
    {
      hex: '01013400a80514001000',
      h: { needsCsum: true, gsoType: 'tcpv4', hdrLen: 52, gsoSize: 1448, csumStart: 20, csumOffset: 16 },
    },
    { hex: '02000000000000000000', h: { dataValid: true } },
    {
      hex: '01844800a00528001000',
      h: {
        needsCsum: true,
        gsoType: 'tcpv6',
        gsoEcn: true,
        hdrLen: 72,
        gsoSize: 1440,
        csumStart: 40,
        csumOffset: 16,
      },
    },
    { hex: '00000000000000000000', h: {} },
    {
      hex: '01050800dc0514000600',
      h: { needsCsum: true, gsoType: 'udp_l4', hdrLen: 8, gsoSize: 1500, csumStart: 20, csumOffset: 6 },
    },
  ] as const;
  for (const v of vectors) {
    it(`decodes and re-encodes ${v.hex}`, () => {
      const h = decodeVnetHdr(fromHex(v.hex));
      expect(h).toEqual({ ...PLAIN_VNET_HDR, ...v.h });
      expect(toHex(encodeVnetHdr(h))).toBe(v.hex);
    });
  }

  it('reads only the first 10 bytes: the packet follows', () => {
    const b = fromHex('01013400a80514001000450000');
    expect(decodeVnetHdr(b).gsoSize).toBe(1448);
  });

  it('refuses a short header, unknown flags, unknown GSO types and ECN without GSO', () => {
    expect(() => decodeVnetHdr(fromHex('0101340'.padEnd(8, '0')))).toThrow(
      expect.objectContaining({ name: 'ParseError', field: 'gsoSize', offset: 4 }),
    );
    expect(() => decodeVnetHdr(new Uint8Array(0))).toThrow(
      expect.objectContaining({ field: 'flags', offset: 0 }),
    );
    expect(() => decodeVnetHdr(fromHex('08000000000000000000'))).toThrow(
      expect.objectContaining({ field: 'flags' }),
    );
    expect(() => decodeVnetHdr(fromHex('00020000000000000000'))).toThrow(
      expect.objectContaining({ field: 'gso_type' }),
    );
    expect(() => decodeVnetHdr(fromHex('00060000000000000000'))).toThrow(ParseError);
    expect(() => decodeVnetHdr(fromHex('00800000000000000000'))).toThrow(ParseError);
  });

  it('encode refuses values with no wire form', () => {
    expect(() => encodeVnetHdr({ ...PLAIN_VNET_HDR, gsoSize: 65536 })).toThrow(RangeError);
    expect(() => encodeVnetHdr({ ...PLAIN_VNET_HDR, hdrLen: -1 })).toThrow(RangeError);
    expect(() => encodeVnetHdr({ ...PLAIN_VNET_HDR, gsoEcn: true })).toThrow(RangeError);
  });
});

describe('virtio-net header laws', () => {
  fcTest.prop([arbitraryVnetHdr])('decode(encode(h)) = h', (h) => {
    const b = encodeVnetHdr(h);
    expect(b.length).toBe(VNET_HDR_LEN);
    expect(decodeVnetHdr(b)).toEqual(h);
  });

  fcTest.prop([arbitraryBytes(24)])('arbitrary bytes decode or throw ParseError', (b) => {
    expect(decodesOrParseError(decodeVnetHdr, b)).toBe(true);
  });

  fcTest.prop([arbitraryBytes(24)])('bytes that decode re-encode to their first 10 bytes', (b) => {
    let h: ReturnType<typeof decodeVnetHdr>;
    try {
      h = decodeVnetHdr(b);
    } catch {
      return;
    }
    expect(toHex(encodeVnetHdr(h))).toBe(toHex(b.subarray(0, VNET_HDR_LEN)));
  });

  fcTest.prop([arbitrarySendPacketInfo, fc.boolean()])(
    'PacketInfo -> header -> PacketInfo keeps checksum and GSO (hdrLen from the packet)',
    (info, v6) => {
      const packet = v6 ? tcp6() : tcp4();
      const sent = info.gso
        ? { ...info, gso: { ...info.gso, type: v6 ? ('tcpv6' as const) : ('tcpv4' as const) } }
        : info;
      const h = decodeVnetHdr(encodeVnetHdr(vnetHdrFromPacketInfo(sent)));
      const back = packetInfoFromVnetHdr(h, packet);
      const expected = {
        ...(sent.csum ? { csum: sent.csum } : {}),
        ...(sent.gso ? { gso: { ...sent.gso, hdrLen: v6 ? 60 : 40 } } : {}),
      };
      expect(back).toEqual(Object.keys(expected).length > 0 ? expected : undefined);
    },
  );
});

describe('received headers as PacketInfo', () => {
  it('no flags, no GSO: no info', () => {
    expect(packetInfoFromVnetHdr(PLAIN_VNET_HDR, tcp4())).toBeUndefined();
    expect(vnetHdrFromPacketInfo(undefined)).toEqual(PLAIN_VNET_HDR);
  });

  it('DATA_VALID is a verified checksum', () => {
    expect(packetInfoFromVnetHdr({ ...PLAIN_VNET_HDR, dataValid: true }, tcp4())).toEqual({
      csum: { kind: 'valid' },
    });
  });

  it("GSO hdrLen is the packet's own IP + TCP headers, not the kernel's linear-part hint", () => {
    const h = {
      ...PLAIN_VNET_HDR,
      needsCsum: true,
      csumStart: 20,
      csumOffset: 16,
      gsoType: 'tcpv4',
      gsoSize: 1448,
      hdrLen: 128,
    } as const;
    expect(packetInfoFromVnetHdr(h, tcp4(8))).toEqual({
      csum: { kind: 'partial', start: 20, offset: 16 },
      gso: { type: 'tcpv4', size: 1448, hdrLen: 52 },
    });
  });

  it('UDP GSO, ECN, a wrong IP version or a zero segment size are refused with a reason', () => {
    const g = { ...PLAIN_VNET_HDR, gsoType: 'tcpv4', gsoSize: 1448 } as const;
    expect(packetInfoFromVnetHdr({ ...g, gsoType: 'udp_l4' }, tcp4())).toBe('gso.udp_l4');
    expect(packetInfoFromVnetHdr({ ...g, gsoEcn: true }, tcp4())).toBe('gso.ecn');
    expect(packetInfoFromVnetHdr(g, tcp6())).toBe('gso.bad');
    expect(packetInfoFromVnetHdr({ ...g, gsoSize: 0 }, tcp4())).toBe('gso.bad');
    expect(packetInfoFromVnetHdr(g, tcp4().subarray(0, 30))).toBe('gso.bad');
  });
});
