import { fc, test as fcTest } from '@fast-check/vitest';
import { fromHex, toHex } from '@stepwire/wire';
import { arbitraryBytes, decodesOrParseError } from '@stepwire/wire/testing';
import { describe, expect, it } from 'vitest';
import { VARINT_SAFE_MAX } from '../src/packet/varint.ts';
import { arbitraryTransportParameters } from '../src/testing.ts';
import {
  checkTransportParametersFrom,
  decodeTransportParameters,
  effectiveTransportParameters,
  encodeTransportParameters,
} from '../src/transport-parameters.ts';

describe('transport parameters (RFC 9000 §18)', () => {
  // The quic_transport_parameters extension of the ClientHello in RFC 9001 Appendix A.2
  // (extension 0x0039, 50 bytes).
  const A2 = fromHex(
    '0408ffffffffffffffff05048000ffff07048000ffff0801100104800075300901100f088394c8f03e51570806048000ffff',
  );
  it('decodes the RFC 9001 A.2 client parameters', () => {
    const p = decodeTransportParameters(A2);
    expect(p).toEqual({
      // 2^62-1 ("unlimited") saturates at 2^53-1.
      initial_max_data: VARINT_SAFE_MAX,
      initial_max_stream_data_bidi_local: 65535,
      initial_max_stream_data_uni: 65535,
      initial_max_streams_bidi: 16,
      max_idle_timeout: 30000,
      initial_max_streams_uni: 16,
      initial_source_connection_id: fromHex('8394c8f03e515708'),
      initial_max_stream_data_bidi_remote: 65535,
    });
    expect(checkTransportParametersFrom(p, 'client')).toBeUndefined();
    expect(checkTransportParametersFrom(p, 'server')).toMatch(/original_destination_connection_id/);
    expect(effectiveTransportParameters(p)).toMatchObject({
      ack_delay_exponent: 3,
      max_ack_delay: 25,
      active_connection_id_limit: 2,
    });
  });
  it('re-encodes in ID order', () => {
    const p = decodeTransportParameters(A2);
    p.initial_max_data = 2 ** 40;
    expect(toHex(encodeTransportParameters(p))).toBe(
      '0104800075300408c000010000000000' +
        '05048000ffff06048000ffff07048000ffff080110090110' +
        '0f088394c8f03e515708',
    );
  });
  it('rejects what §18.2 and §7.4 call TRANSPORT_PARAMETER_ERROR', () => {
    expect(() => decodeTransportParameters(fromHex('0a0115'))).toThrow(/above 20/); // ack_delay_exponent 21
    expect(decodeTransportParameters(fromHex('0b027fff'))).toEqual({ max_ack_delay: 16383 });
    expect(() => decodeTransportParameters(fromHex('0b0480004000'))).toThrow(/2\^14/);
    expect(() => decodeTransportParameters(fromHex('0e0101'))).toThrow(/below 2/); // active_connection_id_limit 1
    expect(() => decodeTransportParameters(fromHex('030244af'))).toThrow(/below 1200/); // 1199
    expect(() => decodeTransportParameters(fromHex('0c0100'))).toThrow(/zero-length/);
    expect(decodeTransportParameters(fromHex('6ab200'))).toEqual({ grease_quic_bit: true }); // RFC 9287 §3
    // RFC 9368 §3: version_information.
    expect(decodeTransportParameters(fromHex('11080000000100000001'))).toEqual({
      version_information: { chosenVersion: 1, availableVersions: [1] },
    });
    expect(() => decodeTransportParameters(fromHex('110400000000'))).toThrow(/Chosen Version is 0/);
    expect(() => decodeTransportParameters(fromHex('1106000000010000'))).toThrow(/multiple of 4/);
    expect(() => decodeTransportParameters(fromHex('0201ff'))).toThrow(/16 bytes/);
    expect(() => decodeTransportParameters(fromHex('010101010101'))).toThrow(/twice/);
    expect(() => decodeTransportParameters(fromHex('0808d000000000000001'))).toThrow(/2\^60/);
    expect(() => decodeTransportParameters(fromHex('010201'))).toThrow(/exceeds/);
    expect(() => decodeTransportParameters(fromHex('010201ff'))).toThrow(/trailing/);
    // preferred_address with a zero-length connection ID
    const pa = `0d29${'00'.repeat(4)}0000${'00'.repeat(16)}000000${'00'.repeat(16)}`;
    expect(() => decodeTransportParameters(fromHex(pa))).toThrow(/not 1\.\.20/);
  });
  it('a client may not send server-only parameters (§18.2)', () => {
    expect(
      checkTransportParametersFrom(
        { initial_source_connection_id: new Uint8Array(0), stateless_reset_token: new Uint8Array(16) },
        'client',
      ),
    ).toMatch(/stateless_reset_token/);
  });
  it('keeps grease parameters (§18.1) in order', () => {
    const p = decodeTransportParameters(fromHex('1b00402602abcd'));
    expect(p.unknown).toEqual([
      { id: 27, value: new Uint8Array(0) },
      { id: 0x26, value: fromHex('abcd') },
    ]);
  });
  fcTest.prop([arbitraryTransportParameters])('round trip', (p) => {
    expect(decodeTransportParameters(encodeTransportParameters(p))).toEqual(p);
  });
  fcTest.prop([arbitraryBytes(128)])('arbitrary bytes', (b) =>
    decodesOrParseError(decodeTransportParameters, b),
  );
  fcTest.prop([arbitraryTransportParameters, fc.nat()])(
    'truncations decode or fail with ParseError',
    (p, cut) => {
      const b = encodeTransportParameters(p);
      return decodesOrParseError(decodeTransportParameters, b.subarray(0, cut % (b.length + 1)));
    },
  );
});
