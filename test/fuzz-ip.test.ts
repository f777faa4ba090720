/** CI share of the coverage-guided fuzzing (fuzz/README.md): the ip targets of fuzz/ci.ts. */
import { describe } from 'vitest';
import { fuzzGroup } from '../fuzz/vitest-group.ts';

describe('fuzz: ip', () => fuzzGroup('ip'));
