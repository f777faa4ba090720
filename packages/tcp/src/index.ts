export * from './options.ts';
export * from './segment.ts';
