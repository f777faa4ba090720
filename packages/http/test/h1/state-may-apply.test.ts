import { describe, expect, it } from 'vitest';
import { type CycleFacts, mayApply, type SideState, STATE_RULES } from '../../src/h1/state.ts';

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

describe('mayApply (settle() skips the rule scan where it is false)', () => {
  it('is true wherever some state rule applies, for every pair of states and facts', () => {
    let skipped = 0;
    for (const c of STATES)
      for (const s of STATES)
        for (const keepAlive of [true, false])
          for (const pendingSwitch of [undefined, 'upgrade', 'connect'] as const) {
            const f: CycleFacts = { keepAlive, pendingSwitch };
            const applies = STATE_RULES.some((r) => r.when(c, s, f));
            if (applies)
              expect(mayApply(c, s, f), `${c}/${s} keepAlive=${keepAlive} ${pendingSwitch}`).toBe(true);
            if (!mayApply(c, s, f)) skipped++;
          }
    // it does skip: most pairs, and the client DONE while the server still answers
    expect(skipped).toBeGreaterThan(STATES.length * STATES.length);
    expect(mayApply('DONE', 'SEND_RESPONSE', { keepAlive: true, pendingSwitch: undefined })).toBe(false);
    expect(mayApply('DONE', 'SEND_BODY', { keepAlive: true, pendingSwitch: undefined })).toBe(false);
  });
});
