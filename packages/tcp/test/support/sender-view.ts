/**
 * The slice of a connection that a congestion controller's pacer reads (snd.una/nxt/max,
 * the SACK scoreboard, Karn's rule, recovery, bytes sent), as a plain object a test moves by
 * hand: a sender with always more to send, in virtual time, no connection needed.
 */
import { silentTrace } from '@stepwire/wire';

export function senderView(mss: number) {
  return {
    now: 0,
    mss,
    snd: { una: 0, nxt: 0, max: 0 },
    scoreboard: { sacked: 0, highest: undefined },
    rttProbe: { karnUntil: undefined },
    recovery: { inRecovery: false },
    counters: { bytesOut: 0 },
    sendBase: 0,
    sendQueue: { length: 1 << 30 },
    trace: silentTrace,
    hostName: 'A',
  };
}
export type SenderView = ReturnType<typeof senderView>;
