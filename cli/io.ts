/**
 * Where a command-line invocation writes and what it reads: its streams and environment
 * (`cliIo()`; tests run the CLI in process with their own), scenario files and payloads.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import { type ValidationResult, validateScenario } from '../scenario/validate.js';
import { CliError } from './errors.js';

/** A stream a command writes to. */
export interface CliStream {
  write(text: string): unknown;
  /** True on a terminal (progress lines and colours only then). */
  isTTY?: boolean;
}

/** The streams and environment of one command-line invocation. */
export interface CliIo {
  /** What the command prints (results). */
  stdout: CliStream;
  /** Warnings, problems and the one-line error. */
  stderr: CliStream;
  /** Read for FLOWMETER_* settings instead of `process.env`. */
  env: Record<string, string | undefined>;
  /** Input, for commands that read it (default: `process.stdin`, opened only when read). */
  stdin?: NodeJS.ReadableStream;
}

/** The process's own streams and environment. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

const current = new AsyncLocalStorage<CliIo>();

/** The io of the invocation in progress (set by `main`), else the process's own. */
export function cliIo(): CliIo {
  return current.getStore() ?? processIo();
}

/** Runs `fn` with `io` as what `cliIo()` returns in it and everything it awaits. */
export function withCliIo<T>(io: CliIo, fn: () => T): T {
  return current.run(io, fn);
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new CliError(`cannot read ${what} ${file}: ${why}`);
  }
}

export function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${where} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Reads and validates a scenario file; the caller decides what to do with problems. */
export function loadScenarioFile(file: string): ValidationResult {
  return validateScenario(parseJson(readText(file, 'scenario file'), file));
}

/** The run's input from `--input FILE` or `--payload JSON` (at most one). */
export function readPayload(opts: { input?: string; payload?: string }): unknown {
  if (opts.input !== undefined && opts.payload !== undefined) throw new CliError('give either --input FILE or --payload JSON, not both');
  if (opts.input !== undefined) return parseJson(readText(opts.input, 'input file'), opts.input);
  if (opts.payload !== undefined) return parseJson(opts.payload, '--payload');
  return null;
}

export function parseCount(value: string, flag: string, min = 0): number {
  if (!/^\d+$/.test(value.trim())) throw new CliError(`${flag} must be a whole number, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new CliError(`${flag} must be at least ${min}, got ${value}`);
  return n;
}

export function requireValid(file: string, result: ValidationResult): NonNullable<ValidationResult['scenario']> {
  const { stderr } = cliIo();
  for (const w of result.warnings) stderr.write(`warning: ${w}\n`);
  if (!result.scenario) {
    for (const p of result.problems) stderr.write(`${p}\n`);
    throw new CliError(`${file}: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'} (listed above)`);
  }
  return result.scenario;
}
