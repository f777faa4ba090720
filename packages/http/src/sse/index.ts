export * from './event-source.ts';
export * from './stream.ts';
export * from './writer.ts';
