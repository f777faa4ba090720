/** CI share of the coverage-guided fuzzing (fuzz/README.md): the http-quic targets of fuzz/ci.ts. */
import { describe } from 'vitest';
import { fuzzGroup } from '../fuzz/vitest-group.ts';

describe('fuzz: http-quic', () => fuzzGroup('http-quic'));
