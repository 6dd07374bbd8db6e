/**
 * Secrets: `${env:NAME}` references (SPEC §1) and the redaction of their values from task logs,
 * errors and API answers.
 */
import { FlowError } from './errors.js';

/** `${env:NAME}` with NAME = [A-Za-z_][A-Za-z0-9_]*. */
export const ENV_REF_RE = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Whether `value` holds at least one `${env:NAME}` reference. */
export function hasEnvRefs(value: string): boolean {
  ENV_REF_RE.lastIndex = 0;
  const found = ENV_REF_RE.test(value);
  ENV_REF_RE.lastIndex = 0;
  return found;
}

/**
 * Replaces every `${env:NAME}` in `value` with the variable's value, passing each resolved value
 * to `onSecret` (so it can be redacted later). An unset variable throws `ENV_MISSING`; the
 * message names the variable, never a value.
 */
export function resolveEnvRefs(
  value: string,
  env: (name: string) => string | undefined,
  onSecret: (value: string) => void,
): string {
  if (!value.includes('${env:')) return value;
  return value.replace(ENV_REF_RE, (_, name: string) => {
    const resolved = env(name);
    if (resolved === undefined) throw new FlowError('ENV_MISSING', `environment variable ${name} is not set`);
    onSecret(resolved);
    return resolved;
  });
}

/** What a redacted secret is replaced with. */
export const REDACTED = '[redacted]';

/** Secrets shorter than this are not redacted (they would match too much ordinary text). */
export const MIN_SECRET_LENGTH = 4;

/**
 * Scrubs registered secrets from text. Longer secrets are replaced first, so a secret that
 * contains another one is redacted whole.
 */
export class Redactor {
  private readonly secrets = new Set<string>();
  private sorted: string[] | null = [];

  /** Registers a secret; values shorter than {@link MIN_SECRET_LENGTH} are ignored. */
  add(secret: string): void {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH || this.secrets.has(secret)) return;
    this.secrets.add(secret);
    this.sorted = null;
  }

  /** How many secrets are registered. */
  get size(): number {
    return this.secrets.size;
  }

  /** `text` with every registered secret replaced by `[redacted]`. */
  redact(text: string): string {
    if (this.secrets.size === 0 || !text) return text;
    if (!this.sorted) this.sorted = [...this.secrets].sort((a, b) => b.length - a.length);
    let out = text;
    for (const s of this.sorted) if (out.includes(s)) out = out.split(s).join(REDACTED);
    return out;
  }

  /**
   * A copy of a JSON value with secrets redacted in every string inside it (object keys
   * included). Values without strings are returned as they are.
   */
  redactDeep<T>(value: T): T {
    if (this.secrets.size === 0) return value;
    return this.deep(value, 0) as T;
  }

  private deep(value: unknown, depth: number): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (value === null || typeof value !== 'object' || depth > 200) return value;
    if (Array.isArray(value)) return value.map((v) => this.deep(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, this.redact(k), { value: this.deep(v, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
}
