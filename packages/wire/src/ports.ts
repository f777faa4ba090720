import type { Prng } from './prng.ts';

/**
 * The ephemeral port range every transport here chooses from (TCP and UDP alike), inclusive:
 * IANA's Dynamic and/or Private Ports, 49152-65535 (RFC 6335 §6). RFC 6056 §3.2 would allow
 * 1024-65535 and Linux defaults to 32768-60999 (net.ipv4.ip_local_port_range); we keep
 * IANA's, which no registered service uses. One place, so TCP and UDP cannot drift apart.
 */
export const EPHEMERAL_PORT_MIN = 49152;
export const EPHEMERAL_PORT_MAX = 65535;

/**
 * An ephemeral port by RFC 6056 §3.3.1 (Algorithm 1, "simple port randomization"): a random
 * start in [min, max], then walk up, wrapping, until `free(port)` says yes. The randomness
 * comes from the caller's seeded Prng, so a simulated run repeats exactly. Undefined when
 * every port of the range is taken. TCP and UDP choose their ports here.
 */
export function chooseEphemeralPort(
  prng: Prng,
  min: number,
  max: number,
  free: (port: number) => boolean,
): number | undefined {
  const n = max - min + 1;
  let port = min + prng.int(0, n - 1);
  for (let i = 0; i < n; i++) {
    if (free(port)) return port;
    port = port === max ? min : port + 1;
  }
  return undefined;
}
