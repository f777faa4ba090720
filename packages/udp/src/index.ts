export {
  type DecodeUdpOptions,
  decodeUdp,
  decodeUdpHeader,
  encodeUdp,
  encodeUdpInto,
  type PseudoHeader,
  UDP,
  UDP_HEADER_LENGTH,
  UDP_MAX_PAYLOAD,
  type UdpDatagram,
  type UdpHeader,
} from './datagram.ts';
export { type UdpEchoService, udpEcho } from './echo.ts';
export type { SystemErrorCode, UdpSystemError } from './errors.ts';
export {
  type AddressInfo,
  type BindOptions,
  EPHEMERAL_PORT_MAX,
  EPHEMERAL_PORT_MIN,
  type RemoteInfo,
  type SendCallback,
  UDP_MAX_PAYLOAD_IPV4,
  UDP_MAX_PAYLOAD_IPV6,
  Udp,
  type UdpMessage,
  UdpSocket,
  type UdpSocketOptions,
  type UdpSocketType,
  type UdpStats,
} from './socket.ts';
