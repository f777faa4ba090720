/** The controllers this stack has, by the name a connection's `congestion` option takes. */
export type CongestionName = 'newreno' | 'cubic' | 'bbr';

/**
 * The controller of ours that does what a Linux host's does, given the name in its
 * /proc/sys/net/ipv4/tcp_congestion_control: 'bbr' and 'cubic' are ours by the same names,
 * Linux's 'reno' is RFC 5681 with RFC 6582's NewReno recovery (ours is too). Any other
 * (htcp, vegas, dctcp, ..., or nothing read) falls back to CUBIC, Linux's own default
 * since 2.6.19, as the nearest loss-based controller. Whitespace (the file's newline) is
 * ignored; names are compared as Linux writes them, in lower case.
 */
export function congestionFromLinux(name: string | undefined): CongestionName {
  switch (name?.trim()) {
    case 'bbr':
      return 'bbr';
    case 'reno':
      return 'newreno';
    default:
      return 'cubic';
  }
}
