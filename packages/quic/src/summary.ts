import { fromUtf8 } from '@stepwire/wire';
import { transportErrorName } from './errors.ts';
import { ackFrameRanges, type Frame } from './frames/frame.ts';
import type { PacketHeader, RetryPacket, VersionNegotiationPacket } from './packet/header.ts';

/**
 * One-line summaries of packets and frames, for trace events and the ladder diagram:
 * names as in the RFC, the fields a reader looks for first.
 */

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export function frameSummary(f: Frame): string {
  switch (f.type) {
    case 'PADDING':
      return `PADDING ×${f.length}`;
    case 'ACK': {
      const ranges = ackFrameRanges(f).map((r) =>
        r.smallest === r.largest ? `${r.largest}` : `${r.smallest}-${r.largest}`,
      );
      const ecn = f.ecnCounts ? ` ecn=${f.ecnCounts.ect0}/${f.ecnCounts.ect1}/${f.ecnCounts.ecnCe}` : '';
      return `ACK ${ranges.reverse().join(',')} delay=${f.ackDelay}${ecn}`;
    }
    case 'RESET_STREAM':
      return `RESET_STREAM s=${f.streamId} code=${f.applicationProtocolErrorCode} final=${f.finalSize}`;
    case 'STOP_SENDING':
      return `STOP_SENDING s=${f.streamId} code=${f.applicationProtocolErrorCode}`;
    case 'CRYPTO':
      return `CRYPTO off=${f.offset} len=${f.data.length}`;
    case 'NEW_TOKEN':
      return `NEW_TOKEN len=${f.token.length}`;
    case 'STREAM':
      return `STREAM s=${f.streamId} off=${f.offset} len=${f.data.length}${f.fin ? ' FIN' : ''}`;
    case 'MAX_DATA':
      return `MAX_DATA ${f.maximumData}`;
    case 'MAX_STREAM_DATA':
      return `MAX_STREAM_DATA s=${f.streamId} ${f.maximumStreamData}`;
    case 'MAX_STREAMS':
      return `MAX_STREAMS ${f.bidirectional ? 'bidi' : 'uni'} ${f.maximumStreams}`;
    case 'DATA_BLOCKED':
      return `DATA_BLOCKED ${f.maximumData}`;
    case 'STREAM_DATA_BLOCKED':
      return `STREAM_DATA_BLOCKED s=${f.streamId} ${f.maximumStreamData}`;
    case 'STREAMS_BLOCKED':
      return `STREAMS_BLOCKED ${f.bidirectional ? 'bidi' : 'uni'} ${f.maximumStreams}`;
    case 'NEW_CONNECTION_ID':
      return `NEW_CONNECTION_ID seq=${f.sequenceNumber} rpt=${f.retirePriorTo} cid=${hex(f.connectionId)}`;
    case 'RETIRE_CONNECTION_ID':
      return `RETIRE_CONNECTION_ID seq=${f.sequenceNumber}`;
    case 'PATH_CHALLENGE':
    case 'PATH_RESPONSE':
      return `${f.type} ${hex(f.data)}`;
    case 'CONNECTION_CLOSE':
      return `CONNECTION_CLOSE ${transportErrorName(f.errorCode)} frame=0x${f.frameType.toString(16)}${reason(f.reasonPhrase)}`;
    case 'CONNECTION_CLOSE_APPLICATION':
      return `CONNECTION_CLOSE app=${f.errorCode}${reason(f.reasonPhrase)}`;
    case 'DATAGRAM':
      return `DATAGRAM len=${f.data.length}`;
    default:
      return f.type;
  }
}

function reason(b: Uint8Array): string {
  return b.length === 0 ? '' : ` "${fromUtf8(b.subarray(0, 60))}"`;
}

/** A packet: its type, connection IDs and (full, when known) packet number. */
export function packetSummary(
  h: PacketHeader | RetryPacket | VersionNegotiationPacket,
  packetNumber?: number,
): string {
  switch (h.type) {
    case 'Retry':
      return `Retry dcid=${hex(h.dcid)} scid=${hex(h.scid)} token=${h.retryToken.length}B`;
    case 'VersionNegotiation':
      return `VersionNegotiation dcid=${hex(h.dcid)} scid=${hex(h.scid)} versions=${h.supportedVersions.map((v) => `0x${v.toString(16)}`).join(',')}`;
    case '1-RTT':
      return `1-RTT pn=${packetNumber ?? h.truncatedPacketNumber} dcid=${hex(h.dcid)}${h.keyPhase ? ' KP1' : ''}${h.spinBit ? ' spin' : ''}`;
    default: {
      const token = h.type === 'Initial' && h.token.length > 0 ? ` token=${h.token.length}B` : '';
      return `${h.type} pn=${packetNumber ?? h.truncatedPacketNumber} dcid=${hex(h.dcid)} scid=${hex(h.scid)}${token}`;
    }
  }
}
