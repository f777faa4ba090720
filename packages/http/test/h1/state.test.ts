import { describe, expect, it } from 'vitest';
import { type CycleFacts, type SideState, STATE_RULES } from '../../src/h1/state.ts';

const STATES: SideState[] = [
  'IDLE',
  'SEND_RESPONSE',
  'SEND_BODY',
  'DONE',
  'MUST_CLOSE',
  'CLOSED',
  'MIGHT_SWITCH_PROTOCOL',
  'SWITCHED_PROTOCOL',
  'ERROR',
];

describe('http/1 state rules', () => {
  // ConnectionState.settle() skips the rule scan unless the client is DONE or
  // MIGHT_SWITCH_PROTOCOL or the server is DONE: no rule of the table may apply elsewhere.
  it('no state rule applies outside the pairs settle() scans (its fast exit is exact)', () => {
    let checked = 0;
    let applying = 0;
    for (const c of STATES)
      for (const s of STATES)
        for (const keepAlive of [true, false])
          for (const pendingSwitch of [undefined, 'upgrade', 'connect'] as const) {
            const f: CycleFacts = { keepAlive, pendingSwitch };
            const scanned = c === 'DONE' || c === 'MIGHT_SWITCH_PROTOCOL' || s === 'DONE';
            const applies = STATE_RULES.some((r) => r.when(c, s, f));
            if (applies) applying++;
            if (!scanned)
              expect(applies, `${c}/${s} keepAlive=${keepAlive} switch=${pendingSwitch}`).toBe(false);
            checked++;
          }
    expect(checked).toBe(STATES.length * STATES.length * 6);
    // the check above is not vacuous: rules do apply inside the scanned pairs
    expect(applying).toBeGreaterThan(0);
  });
});
