import type { SystemErrorCode } from '@stepwire/wire';
import type { IcmpErrorReport } from './types.ts';

/**
 * ICMP errors as errno and hard/soft, following Linux (icmp_err_convert, icmpv6_err_convert)
 * which follows RFC 1122 §4.2.3.9, shared by UDP and TCP. What a transport does with a hard
 * error is its own rule: UDP reports it to the socket; TCP aborts only a connection attempt
 * (RFC 5461 §4).
 */
const ICMPV4_UNREACH: readonly [SystemErrorCode, boolean][] = [
  ['ENETUNREACH', false], // 0 net unreachable
  ['EHOSTUNREACH', false], // 1 host unreachable
  ['ENOPROTOOPT', true], // 2 protocol unreachable
  ['ECONNREFUSED', true], // 3 port unreachable
  ['EMSGSIZE', false], // 4 fragmentation needed (reported as packet-too-big)
  ['EOPNOTSUPP', false], // 5 source route failed
  ['ENETUNREACH', true], // 6 destination network unknown
  ['EHOSTDOWN', true], // 7 destination host unknown
  ['ENONET', true], // 8 source host isolated
  ['ENETUNREACH', true], // 9 network administratively prohibited
  ['EHOSTUNREACH', true], // 10 host administratively prohibited
  ['ENETUNREACH', false], // 11 network unreachable for TOS
  ['EHOSTUNREACH', false], // 12 host unreachable for TOS
  ['EHOSTUNREACH', true], // 13 communication administratively prohibited
  ['EHOSTUNREACH', true], // 14 host precedence violation
  ['EHOSTUNREACH', true], // 15 precedence cutoff in effect
];
const ICMPV6_UNREACH: readonly [SystemErrorCode, boolean][] = [
  ['ENETUNREACH', false], // 0 no route to destination (RFC 4443 §3.1)
  ['EACCES', true], // 1 administratively prohibited
  ['EHOSTUNREACH', false], // 2 beyond scope of source address
  ['EHOSTUNREACH', false], // 3 address unreachable
  ['ECONNREFUSED', true], // 4 port unreachable
  ['EACCES', true], // 5 source address failed ingress/egress policy
  ['EACCES', true], // 6 reject route to destination
];

/** [errno code, hard] for an ICMP error a transport received about its own datagram. */
export function classifyIcmp(e: IcmpErrorReport): [SystemErrorCode, boolean] {
  switch (e.kind) {
    case 'unreachable':
      return (e.version === 4 ? ICMPV4_UNREACH : ICMPV6_UNREACH)[e.code] ?? ['EHOSTUNREACH', false];
    case 'packet-too-big':
      return ['EMSGSIZE', false];
    case 'time-exceeded':
      return ['EHOSTUNREACH', false];
    case 'parameter-problem':
      return ['EPROTO', true];
  }
}
