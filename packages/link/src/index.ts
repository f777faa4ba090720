export { type ImpairedLink, type Impairments, type ImpairOptions, impair } from './impair.ts';
export type { Link } from './link.ts';
export { MemoryLink, type MemoryLinkOptions } from './memory.ts';
