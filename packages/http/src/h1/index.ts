export * from './codec.ts';
export * from './connection.ts';
export * from './state.ts';
