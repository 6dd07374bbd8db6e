/**
 * Which environment variables a tenant's scenario may read with `${env:NAME}` in production
 * (SPEC §9): only those the operator lists in `FLOWMETER_TENANT_ENV`; default none. Embedded
 * `run` and `dev` read the environment freely (a builder's own machine).
 */
import { FlowError } from '../core/errors.js';
import { refNames } from '../core/redact.js';

/**
 * Operator settings a node reads through `services.env` itself (never for a tenant's
 * `${env:…}`, which deploy refuses unless listed): the default mail sender.
 */
const OPERATOR_READS = new Set(['FLOWMETER_MAIL_FROM']);

/** The names listed in `FLOWMETER_TENANT_ENV` (comma-separated; blanks ignored). */
export function parseTenantEnv(env: Record<string, string | undefined>): ReadonlySet<string> {
  return new Set(
    (env.FLOWMETER_TENANT_ENV ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/**
 * Refuses a scenario document naming any `${env:NAME}` outside `allowed` with
 * `ENV_NOT_ALLOWED`, one line naming the variable. `allowed` null: everything is allowed.
 */
export function assertEnvAllowed(doc: unknown, allowed: ReadonlySet<string> | null): void {
  if (!allowed) return;
  const refused = [...refNames(doc, 'env')].filter((n) => !allowed.has(n)).sort();
  if (refused.length === 0) return;
  const names = refused.map((n) => `\${env:${n}}`).join(', ');
  throw new FlowError('ENV_NOT_ALLOWED', `the scenario reads ${names}, which this server does not let tenants read (FLOWMETER_TENANT_ENV)`);
}

/**
 * The `services.env` of a production worker: allowed names only (defence in depth for scenarios
 * stored before the operator narrowed the list, or written to the store directly). Any other
 * name fails the node with `ENV_NOT_ALLOWED`; its value is never read.
 */
export function tenantEnvReader(env: Record<string, string | undefined>, allowed: ReadonlySet<string>): (name: string) => string | undefined {
  return (name) => {
    if (allowed.has(name) || OPERATOR_READS.has(name)) return env[name];
    throw new FlowError('ENV_NOT_ALLOWED', `\${env:${name}} is not readable by tenants on this server (FLOWMETER_TENANT_ENV)`);
  };
}
