export * from './connection.ts';
export * from './errors.ts';
export * from './frames.ts';
export * from './message.ts';
export * from './settings.ts';
export * from './state.ts';
