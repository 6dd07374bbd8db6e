/**
 * Secrets: `${env:NAME}` and `${secret:NAME}` references (SPEC §1, §9) and the redaction of
 * their values from task logs, errors and API answers.
 */
import { FlowError } from './errors.js';

/** `${env:NAME}` with NAME = [A-Za-z_][A-Za-z0-9_]*. */
export const ENV_REF_RE = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces every `${env:NAME}` in `value` with the variable's value, passing each resolved value
 * to `onSecret` (so it can be redacted later). An unset variable throws `ENV_MISSING`; the
 * message names the variable, never a value.
 */
export function resolveEnvRefs(value: string, env: (name: string) => string | undefined, onSecret: (value: string) => void): string {
  if (!value.includes('${env:')) return value;
  return value.replace(ENV_REF_RE, (_, name: string) => {
    const resolved = env(name);
    if (resolved === undefined) throw new FlowError('ENV_MISSING', `environment variable ${name} is not set`);
    onSecret(resolved);
    return resolved;
  });
}

/** `${env:NAME}` or `${secret:NAME}`: group 1 the kind, group 2 the name. */
export const REF_RE = /\$\{(env|secret):([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Where references are resolved from: the environment and the tenant's credential store. */
export interface RefSources {
  env: (name: string) => string | undefined;
  /** The tenant's stored credential NAME (undefined when it has none). */
  secret?: (name: string) => string | undefined;
}

/** Whether `value` holds a `${env:…}` or `${secret:…}` reference. */
export function hasRefs(value: string): boolean {
  return value.includes('${env:') || value.includes('${secret:');
}

/**
 * Replaces every `${env:NAME}` and `${secret:NAME}` in `value`, passing each resolved value to
 * `onSecret`. An unset variable throws `ENV_MISSING`, a missing credential `SECRET_MISSING`;
 * messages name the reference, never a value.
 */
export function resolveRefs(value: string, from: RefSources, onSecret: (value: string) => void): string {
  if (!hasRefs(value)) return value;
  return value.replace(REF_RE, (_, kind: string, name: string) => {
    if (kind === 'env') return resolveEnvRefs(`\${env:${name}}`, from.env, onSecret);
    const resolved = from.secret?.(name);
    if (resolved === undefined) throw new FlowError('SECRET_MISSING', `secret ${name} is not set for this tenant (flowmeter secrets set ${name})`);
    onSecret(resolved);
    return resolved;
  });
}

/** The names of every `${env:…}` (or `${secret:…}`) reference in the strings of a JSON value. */
export function refNames(value: unknown, kind: 'env' | 'secret', out = new Set<string>(), depth = 0): Set<string> {
  if (typeof value === 'string') {
    if (hasRefs(value)) for (const m of value.matchAll(new RegExp(REF_RE.source, 'g'))) if (m[1] === kind) out.add(m[2]!);
  } else if (value !== null && typeof value === 'object' && depth < 100) {
    for (const [k, v] of Object.entries(value)) {
      refNames(k, kind, out, depth + 1);
      refNames(v, kind, out, depth + 1);
    }
  }
  return out;
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
