/** A classic 16-bytes-per-line dump: offset, hex in two groups of eight, printable ASCII. */
export function hexdump(bytes: Uint8Array, maxBytes = Number.POSITIVE_INFINITY): string {
  const lines: string[] = [];
  const n = Math.min(bytes.length, maxBytes);
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    let hex = '';
    let ascii = '';
    for (let i = 0; i < 16; i++) {
      if (i === 8) hex += ' ';
      const b = row[i];
      hex += b === undefined ? '   ' : `${b.toString(16).padStart(2, '0')} `;
      if (b !== undefined) ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
    }
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex} |${ascii}|`);
  }
  if (n < bytes.length) lines.push(`... ${bytes.length - n} more byte(s)`);
  return lines.join('\n');
}
