/**
 * Tenant credential stores (SPEC §9): `${secret:NAME}` reads the running tenant's credential
 * NAME. Values are encrypted at rest with AES-256-GCM under `FLOWMETER_SECRETS_KEY` (64 hex
 * characters), bound to their tenant and name (a value copied to another tenant's hash does not
 * decrypt). No store method returns a value to a caller other than the executor.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { FlowError } from '../core/errors.js';

/** Credential names: as `${secret:NAME}` spells them. */
export const SECRET_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** The largest credential value, in bytes. */
export const MAX_SECRET_BYTES = 64 * 1024;

/** The most credentials a tenant may keep (each up to MAX_SECRET_BYTES). */
export const MAX_SECRETS = 1000;

/** INVALID_INPUT for a new credential past MAX_SECRETS. */
export function tooManySecrets(tenant: string, name: string): FlowError {
  return new FlowError(
    'INVALID_INPUT',
    `secret ${name} was not stored: tenant ${tenant} keeps ${MAX_SECRETS} secrets, the most it may; delete one first (replacing an existing one is allowed)`,
  );
}

/** One stored credential as listed: its name and when it was last set; never its value. */
export interface SecretInfo {
  name: string;
  updatedAt: string;
}

export interface SecretStore {
  /** Stores (or replaces) a credential. */
  set(tenant: string, name: string, value: string): Promise<void>;
  /** The tenant's credentials, by name. */
  list(tenant: string): Promise<SecretInfo[]>;
  /** Removes a credential; false when there was none. */
  delete(tenant: string, name: string): Promise<boolean>;
  /** The values of the named credentials the tenant has (for the executor only). */
  read(tenant: string, names: string[]): Promise<Map<string, string>>;
}

/** Checks a name and value before they are stored; one line naming what is wrong. */
export function checkSecret(name: string, value?: unknown): void {
  if (!SECRET_NAME_RE.test(name))
    throw new FlowError('INVALID_INPUT', `secret name ${JSON.stringify(name.slice(0, 80))} must be a letter or _ then letters, digits or _ (at most 128)`);
  if (value === undefined) return;
  if (typeof value !== 'string' || value.length === 0) throw new FlowError('INVALID_INPUT', `secret ${name}: the value must be a non-empty string`);
  if (Buffer.byteLength(value) > MAX_SECRET_BYTES) throw new FlowError('INVALID_INPUT', `secret ${name}: the value is over ${MAX_SECRET_BYTES} bytes`);
}

/** AES-256-GCM with the operator's key; associated data binds a value to its tenant and name. */
export class SecretBox {
  private readonly key: Buffer;
  constructor(hexKey: string | undefined) {
    if (!hexKey || !/^[0-9a-fA-F]{64}$/.test(hexKey.trim())) {
      throw new FlowError('SECRETS_KEY_INVALID', `FLOWMETER_SECRETS_KEY must be 64 hex characters (32 bytes)${hexKey ? '' : '; it is not set'}`);
    }
    this.key = Buffer.from(hexKey.trim(), 'hex');
  }

  seal(tenant: string, name: string, value: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv).setAAD(Buffer.from(`${tenant}\0${name}`));
    const data = Buffer.concat([c.update(value, 'utf8'), c.final()]);
    return `v1.${iv.toString('base64')}.${c.getAuthTag().toString('base64')}.${data.toString('base64')}`;
  }

  open(tenant: string, name: string, sealed: string): string {
    const [v, iv, tag, data] = sealed.split('.');
    try {
      if (v !== 'v1' || !iv || !tag || data === undefined) throw new Error('format');
      const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64')).setAAD(Buffer.from(`${tenant}\0${name}`));
      d.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([d.update(Buffer.from(data, 'base64')), d.final()]).toString('utf8');
    } catch {
      throw new FlowError('SECRETS_KEY_INVALID', `secret ${name} of tenant ${tenant} cannot be decrypted with FLOWMETER_SECRETS_KEY (another key, or altered)`);
    }
  }
}

/** A SecretBox made on first use, so a server without secrets needs no key. */
export function lazySecretBox(env: Record<string, string | undefined>): () => SecretBox {
  let box: SecretBox | null = null;
  return () => (box ??= new SecretBox(env.FLOWMETER_SECRETS_KEY));
}

/** In memory (embedded `dev`/`serve`), falling back to `FLOWMETER_SECRET_<NAME>` for reads. */
export class MemorySecretStore implements SecretStore {
  private readonly byTenant = new Map<string, Map<string, { value: string; updatedAt: string }>>();
  constructor(private readonly env: Record<string, string | undefined> = {}) {}

  async set(tenant: string, name: string, value: string): Promise<void> {
    checkSecret(name, value);
    let m = this.byTenant.get(tenant);
    if (!m) this.byTenant.set(tenant, (m = new Map()));
    if (!m.has(name) && m.size >= MAX_SECRETS) throw tooManySecrets(tenant, name);
    m.set(name, { value, updatedAt: new Date().toISOString() });
  }
  async list(tenant: string): Promise<SecretInfo[]> {
    return [...(this.byTenant.get(tenant) ?? [])].map(([name, s]) => ({ name, updatedAt: s.updatedAt })).sort((a, b) => a.name.localeCompare(b.name));
  }
  async delete(tenant: string, name: string): Promise<boolean> {
    checkSecret(name);
    return this.byTenant.get(tenant)?.delete(name) ?? false;
  }
  async read(tenant: string, names: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const n of names) {
      const v = this.byTenant.get(tenant)?.get(n)?.value ?? this.env[`FLOWMETER_SECRET_${n}`];
      if (v !== undefined) out.set(n, v);
    }
    return out;
  }
}
