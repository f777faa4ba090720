import fc from 'fast-check';
import type { ServerSentEvent } from './stream.ts';

/** Text without CR (the stream turns CR and CR LF into LF, so data is compared in LF form). */
const text = (maxLength: number) =>
  fc.string({ unit: 'grapheme', maxLength }).map((s) => s.replace(/\r\n?/g, '\n'));
/** A single line: no CR or LF. */
const line = (maxLength: number) =>
  fc.string({ unit: 'grapheme', maxLength }).map((s) => s.replace(/[\r\n]/g, ''));

/** Any event a server may write (HTML §9.2.5): optional type, id and retry; data of any lines. */
export const arbitraryServerSentEvent: fc.Arbitrary<ServerSentEvent> = fc.record(
  {
    event: line(12),
    data: text(80),
    id: line(12).map((s) => s.replace(/\0/g, '')),
    retry: fc.nat(100_000),
  },
  { requiredKeys: ['data'] },
);
