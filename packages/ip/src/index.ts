export * from './address.ts';
export * from './checksum.ts';
export * from './fragment.ts';
export * from './host.ts';
export * from './icmp.ts';
export * from './ipv4.ts';
export * from './ipv6.ts';
export * from './types.ts';
