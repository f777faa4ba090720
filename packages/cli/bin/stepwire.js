#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader so the workspace needs no build step.
// Start-up cost (measured 2026-12-07, Node 20): tsx's hooks run in a loader thread
// (module.register; Node 20 has no in-thread registerHooks), about 0.2 CPU-s of every run and
// most of `stepwire --help`. Keep tsx's transform cache on (no TSX_DISABLE_CACHE; it lives in
// $TMPDIR/tsx-<uid>): a run that loads the whole stack costs ~1.3 CPU-s warm, ~1.8 without
// it. Turning source maps off after register() gained nothing measurable.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
