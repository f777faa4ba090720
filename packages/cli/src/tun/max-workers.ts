/**
 * Most workers of `serve --tun --workers`: a queue per worker, and Linux's TUN allows at most
 * 256 queues (MAX_TAP_QUEUES). Alone in this module so that serve's help and option checks
 * (serve-command.ts) and the workers themselves (workers.ts) read one number without the
 * help loading the workers' code.
 */
export const MAX_WORKERS = 64;
