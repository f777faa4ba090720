import { describe, expect, it } from 'vitest';
import { BufferPool, isWriteOnce, markWriteOnce } from '../src/pool.ts';

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

describe('write-once buffers (a link may keep their packets uncopied)', () => {
  it('answers for the buffers marked, also for one asked about just before it was marked', () => {
    const a = new ArrayBuffer(8);
    const b = new ArrayBuffer(8);
    expect(isWriteOnce(a)).toBe(false);
    // Marked right after the question: the remembered answer must follow.
    markWriteOnce(a);
    expect(isWriteOnce(a)).toBe(true);
    expect(isWriteOnce(b)).toBe(false);
    expect(isWriteOnce(a)).toBe(true);
    expect(isWriteOnce(new Uint8Array(4).buffer)).toBe(false);
  });
});
