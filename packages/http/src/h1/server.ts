/** The HTTP/1.1 server lives in ./server/ (one file per concern); this path stays for existing imports. */
export * from './server/index.ts';
