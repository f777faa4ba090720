import { TraceBus, type TraceEvent } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { ControlBlock } from '../src/connection/control-block.ts';
import { type TcpState, TRANSITIONS, transitionFor } from '../src/connection/state.ts';
import { A, B, client, deliver, server } from './scenario.ts';

// The state diagram of RFC 9293 §3.3.2 as a table (src/connection/state.ts): every state
// change goes through it, and one the table does not have throws under test.

const STATES: TcpState[] = [
  'CLOSED',
  'LISTEN',
  'SYN-SENT',
  'SYN-RECEIVED',
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'CLOSE-WAIT',
  'CLOSING',
  'LAST-ACK',
  'TIME-WAIT',
];

describe('the RFC 9293 state table', () => {
  it('cites a section of RFC 9293 on every row, and every state but CLOSED can reach CLOSED', () => {
    for (const t of TRANSITIONS) expect(t.rfc).toMatch(/^RFC 9293 §3\.\d+(\.\d+)*$/);
    for (const s of STATES) {
      if (s === 'CLOSED') continue;
      expect(TRANSITIONS.some((t) => t.from === s && t.to === 'CLOSED')).toBe(true);
    }
    // Figure 6's edges out of ESTABLISHED: close, the peer's FIN, and the ways it ends.
    const fromEstablished = new Set(TRANSITIONS.filter((t) => t.from === 'ESTABLISHED').map((t) => t.to));
    expect([...fromEstablished].sort()).toEqual(['CLOSE-WAIT', 'CLOSED', 'FIN-WAIT-1']);
    expect(transitionFor('TIME-WAIT', 'rcv-fin')).toBeUndefined();
    expect(transitionFor('FIN-WAIT-2', 'rcv-fin')?.to).toBe('TIME-WAIT');
  });

  it('throws on an edge the diagram does not have', () => {
    const tcb = new ControlBlock({ local: A, remote: B });
    expect(() => tcb.transition('rcv-fin')).toThrow(/no transition from CLOSED on rcv-fin/);
    tcb.transition('active-open');
    expect(tcb.state).toBe('SYN-SENT');
    expect(() => tcb.transition('close')).toThrow(/no transition from SYN-SENT on close/);
  });

  it('traces each change with the row it took', () => {
    const events: TraceEvent[] = [];
    const trace = new TraceBus();
    trace.on((e) => events.push(e));
    const a = client({ trace });
    const b = server();
    b.listen(0);
    const syn = a.open(0);
    deliver(a, deliver(b, syn, 1), 2);
    const changes = events.filter((e) => e.state).map((e) => `${e.state?.from}>${e.state?.to} ${e.rfc}`);
    expect(changes).toEqual(['CLOSED>SYN-SENT RFC 9293 §3.10.1', 'SYN-SENT>ESTABLISHED RFC 9293 §3.10.7.3']);
  });
});
