/** How the command line fails: one line naming what is wrong, and an exit code (§7). */

export const EXIT = { ok: 0, failed: 1, invalid: 2, halted: 3 } as const;

/** A command-line failure: printed as one line on stderr, then exit with `exitCode`. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.invalid) {
    super(message);
    this.name = 'CliError';
  }
}
