/** Waiting in real time, for tests whose peers run on the real clock (processes, sockets). */

/** Polls `cond` every 10 ms (real time: the peers run on the real clock). */
export function waitFor(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}
