/** Everything in the h2 module under its own names, for tests and tools; the package entry uses index.ts. */

export * from './compat.ts';
export * from './connection.ts';
export * from './connection-base.ts';
export * from './errors.ts';
export * from './frames.ts';
export * from './message.ts';
export * from './receive.ts';
export * from './session.ts';
export * from './settings.ts';
export * from './state.ts';
