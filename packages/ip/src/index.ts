export * from './address.ts';
export * from './types.ts';
