import { SCENARIOS } from '@stepwire/sim';
import { describe, expect, it } from 'vitest';
import { SCENARIO_CATALOG, SERVE_MAX_WORKERS, SERVICE_LINES } from '../src/commands/catalog.ts';
import { describeService, SERVICES } from '../src/tun/services.ts';
import { MAX_WORKERS } from '../src/tun/workers.ts';

// The help's copy of the scenarios and services (so that help loads no protocol code) must
// say exactly what the real ones say: a scenario or service added, renamed or reworded
// fails here, with the entry to paste into src/commands/catalog.ts in the diff.
describe('the help catalog', () => {
  it('lists every scenario of @stepwire/sim, in order, with its title and what to watch', () => {
    expect(SCENARIO_CATALOG).toEqual(
      SCENARIOS.map((s) => ({ name: s.name, title: s.title, watch: s.watch })),
    );
  });

  it('lists every service of serve as describeService() prints it, in order', () => {
    expect(SERVICE_LINES).toEqual(SERVICES.map(describeService));
  });

  it("gives serve's --workers the limit the workers enforce", () => {
    expect(SERVE_MAX_WORKERS).toBe(MAX_WORKERS);
  });
});
