/**
 * Timers: the one deadline the driver sees (idle, loss detection, ACK delay, key discard,
 * path validation, pacing) and what each does when it passes.
 */

import { onLossTimeout } from './acks.ts';
import { onClosingTimeout, onIdleTimeout } from './close.ts';
import type { ConnectionCore } from './core.ts';
import { discardPreviousKeys } from './keys.ts';
import { onPathValidationTimeout } from './path.ts';
import { onPmtuTimeout } from './pmtu.ts';

export function pollTimeout(c: ConnectionCore): number | undefined {
  if (c.state === 'closed') return undefined;
  if (c.state === 'closing' || c.state === 'draining') return c.closing.deadline;
  let t = c.idle.deadline;
  const consider = (x: number | undefined) => {
    if (x !== undefined && (t === undefined || x < t)) t = x;
  };
  consider(c.recovery.lossDetectionTimer);
  for (const s of Object.values(c.spaces)) if (!s.discarded) consider(s.ack.nextTimeout());
  consider(c.keys.discardDeadline);
  consider(c.path.challenge?.deadline);
  consider(c.pacing.deadline);
  consider(c.pmtu.raiseAt);
  consider(c.preferred?.deadline);
  return t;
}

export function handleTimeout(c: ConnectionCore, now: number): void {
  c.now = now;
  if (c.state === 'closed') return;
  if (c.state === 'closing' || c.state === 'draining') {
    onClosingTimeout(c, now);
    return;
  }
  // RFC 9002 §7.7: the pacing deadline has no work of its own; the next pollTransmit sends.
  if (c.pacing.deadline !== undefined && now >= c.pacing.deadline) c.pacing.deadline = undefined;
  if (c.idle.deadline !== undefined && now >= c.idle.deadline) {
    onIdleTimeout(c, now);
    return;
  }
  if (c.keys.discardDeadline !== undefined && now >= c.keys.discardDeadline) discardPreviousKeys(c);
  if (c.path.challenge && now >= c.path.challenge.deadline) onPathValidationTimeout(c, now);
  onPmtuTimeout(c, now);
  const timer = c.recovery.lossDetectionTimer;
  if (timer !== undefined && now >= timer) onLossTimeout(c, c.recovery.onLossDetectionTimeout(now));
}
