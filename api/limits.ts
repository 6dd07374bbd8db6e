/** Limits of the HTTP server, apart so the command line can name them without loading it. */

/** Largest request body accepted by default, in bytes (SPEC §8: 1 MB). */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
