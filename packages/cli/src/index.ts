/**
 * @stepwire/cli is the `stepwire` command. The simulated network it drives (Sim,
 * createNetwork, the ladder and the dissector) lives in @stepwire/sim: import it from there.
 */
export {};
