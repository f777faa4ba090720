export type { Link } from './link.ts';
