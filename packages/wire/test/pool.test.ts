import { describe, expect, it } from 'vitest';
import { BufferPool } from '../src/pool.ts';

describe('BufferPool (super-segment buffers a link gives back)', () => {
  it('hands a given-back buffer out again, and only once however often it is given', () => {
    const pool = new BufferPool(128, 4);
    const a = pool.take();
    expect(a.byteLength).toBe(128);
    pool.give(a);
    pool.give(a);
    expect(pool.held).toBe(1);
    expect(pool.take()).toBe(a);
    expect(pool.take()).not.toBe(a);
  });

  it('takes back only its own buffers, and at most `max`', () => {
    const pool = new BufferPool(64, 2);
    pool.give(new ArrayBuffer(64));
    expect(pool.held).toBe(0);
    const bufs = [pool.take(), pool.take(), pool.take()];
    for (const b of bufs) pool.give(b);
    expect(pool.held).toBe(2);
  });
});
