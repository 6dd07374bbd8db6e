/** How the command line fails: one line naming what is wrong, and an exit code (§7). */
import { EXIT } from '../core/errors.js';

export { EXIT };

/** A command-line failure: printed as one line on stderr, then exit with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.invalid,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
