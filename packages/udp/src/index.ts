export {
  type DecodeUdpOptions,
  decodeUdp,
  decodeUdpHeader,
  encodeUdp,
  type PseudoHeader,
  UDP_HEADER_LENGTH,
  UDP_MAX_PAYLOAD,
  type UdpDatagram,
  type UdpHeader,
} from './datagram.ts';
