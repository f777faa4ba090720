/**
 * The message feed the two polling examples read: `GET /messages?since=N` answers 200 with
 * the messages newer than N, or 204 when there are none (yet).
 */
import { type Agent, fetch } from '@stepwire/http';
import { ms, type Stage } from './stage.ts';

export interface FeedMessage {
  id: number;
  /** Stage time of its publication, ms. */
  at: number;
}

export interface Received {
  id: number;
  publishedAt: number;
  receivedAt: number;
}

/** One poll, driven on the stage's clock until its answer is in. */
export function poll(
  s: Stage,
  agent: Agent,
  since: number,
): Promise<{ status: number; body: FeedMessage[] }> {
  return s.net.run(
    fetch(s.url(`/messages?since=${since}`), { agent }).then(async (res) => {
      if (res.status !== 200 && res.status !== 204) throw new Error(`poll answered ${res.status}`);
      return { status: res.status, body: res.status === 200 ? ((await res.json()) as FeedMessage[]) : [] };
    }),
  );
}

export function printLatencies(received: readonly Received[]): void {
  for (const m of received)
    console.log(
      `message ${m.id}: published ${ms(m.publishedAt)}, seen ${ms(m.receivedAt)} (+${ms(m.receivedAt - m.publishedAt)})`,
    );
}
