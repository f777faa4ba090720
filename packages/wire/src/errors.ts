/**
 * The one error every decoder throws on bad input. It names where the bytes went wrong
 * (layer, field, byte offset) so a trace or a failing property test points at the byte.
 */
export class ParseError extends Error {
  override readonly name = 'ParseError';
  constructor(
    readonly layer: string,
    readonly field: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${layer}: ${field} at byte ${offset}: ${reason}`);
  }
}
