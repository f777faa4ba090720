/** CI share of the coverage-guided fuzzing (fuzz/README.md): the tls-codecs targets of fuzz/ci.ts. */
import { describe } from 'vitest';
import { fuzzGroup } from '../fuzz/vitest-group.ts';

describe('fuzz: tls-codecs', () => fuzzGroup('tls-codecs'));
