/** TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018, RFC 7413) through decodeOptions directly. */
import { decodeOptions, describeOptions } from '../../packages/tcp/src/options.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => describeOptions(decodeOptions(data)));
}
