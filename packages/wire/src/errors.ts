/**
 * The one error every decoder throws on bad input. It names where the bytes went wrong
 * (layer, field, byte offset) so a trace or a failing property test points at the byte.
 *
 * `offset` is computed one way in every codec: the byte offset of the first byte of the
 * field that failed, counted from the start of the buffer handed to the `decodeX` call
 * (a decoder that parses a part of its input with a sub-reader adds the part's start).
 * - A field with a bad value (a length out of range, a checksum that does not verify, a
 *   reserved bit set): the field's own offset, never the start of the header and never
 *   the value it held. A check across fields names the field the rule is about (UDP's
 *   Length against the bytes present is the Length field).
 * - Input that ends inside a field: that field's offset. So `0 <= offset <= bytes.length`
 *   always holds, and `offset === bytes.length` only when the input ended exactly where
 *   the failing field should have begun.
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

/**
 * The error for a fixed layout cut short: `layout` maps field names to their offsets in
 * wire order (a codec's named offsets), `length` is how many bytes arrived and `need` how
 * many the layout takes. The field the input ended in is the last one starting at or
 * before `length` (fields are contiguous), and the error carries its offset.
 */
export function truncated(
  layer: string,
  layout: Readonly<Record<string, number>>,
  length: number,
  need: number,
): ParseError {
  let field = 'header';
  let at = 0;
  for (const [name, offset] of Object.entries(layout)) {
    if (offset > length || offset >= need) break;
    field = name;
    at = offset;
  }
  return new ParseError(layer, field, at, `needs ${need} bytes, ${length} present`);
}
