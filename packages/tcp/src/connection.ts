/** The connection machine lives in ./connection/ (one file per concern); this path stays for importers. */
export * from './connection/index.ts';
