/**
 * What a run's redaction starts from (SPEC §9): every execution of a run — the first, a resume
 * after a halt, a recovery by another worker, a replay — loads the tenant's credentials the
 * scenario names and registers every secret value the scenario's connections and Mail nodes
 * may use, before any node runs. A message that picked up a secret before a halt is scrubbed
 * after the resume even though the node that read the secret does not run again.
 */

import type { Redactor } from '../core/redact.js';
import { type RefSources, refNames, resolveRefs } from '../core/redact.js';
import type { NodeServices } from '../nodes/define.js';
import { nodeType } from '../nodes/index.js';
import type { Scenario } from '../scenario/schema.js';

/** Loads the tenant's credentials by name (missing ones absent). */
export type SecretLoader = (tenant: string, names: string[]) => Promise<Map<string, string>>;

const WHOLE_ENV = /^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$/;

/** Resolves `s` for redaction only: a missing or refused reference yields nothing. */
function tryResolve(s: string | undefined, from: RefSources, add: (v: string) => void): string | undefined {
  if (s === undefined) return undefined;
  try {
    return resolveRefs(s, from, add);
  } catch {
    return undefined;
  }
}

/** The `${secret:…}` names and whether any `${env:…}` appears, per scenario object (scanned once). */
const refsOf = new WeakMap<Scenario, { secrets: string[]; env: boolean }>();

function scenarioRefs(scenario: Scenario): { secrets: string[]; env: boolean } {
  let refs = refsOf.get(scenario);
  if (refs === undefined) {
    refs = { secrets: [...refNames(scenario, 'secret')], env: refNames(scenario, 'env').size > 0 };
    refsOf.set(scenario, refs);
  }
  return refs;
}

/**
 * The services a run's nodes see (with `secret` reading the loaded credentials), after
 * registering with `redactor` every secret value the scenario can use.
 */
export async function runServices(scenario: Scenario, tenant: string, base: NodeServices, redactor: Redactor, load?: SecretLoader): Promise<NodeServices> {
  const refs = scenarioRefs(scenario);
  const names = refs.secrets;
  let loaded = new Map<string, string>();
  let failure: unknown = null;
  try {
    if (load && names.length) loaded = await load(tenant, names);
  } catch (err) {
    // A store that cannot decrypt (SECRETS_KEY_INVALID) fails the nodes that need a secret.
    failure = err;
  }
  const services: NodeServices = {
    ...base,
    secret: (name) => {
      if (failure) throw failure;
      return loaded.get(name);
    },
  };
  if (names.length === 0 && !refs.env) return services;
  const from: RefSources = { env: base.env, secret: services.secret };
  const add = (v: string) => redactor.add(v);
  for (const conn of Object.values(scenario.connections ?? {})) {
    // As the Connector does: a base URL read whole from the environment is configuration.
    if (conn.baseUrl && !WHOLE_ENV.test(conn.baseUrl.trim())) tryResolve(conn.baseUrl, from, add);
    for (const v of Object.values(conn.headers ?? {})) tryResolve(v, from, add);
    const auth = conn.auth;
    if (auth?.type === 'bearer') tryResolve(auth.token, from, add);
    else if (auth?.type === 'header') {
      tryResolve(auth.name, from, add);
      tryResolve(auth.value, from, add);
    } else if (auth?.type === 'basic') {
      const user = tryResolve(auth.username, from, () => undefined);
      const pass = tryResolve(auth.password, from, add);
      if (user !== undefined && pass !== undefined) add(Buffer.from(`${user}:${pass}`).toString('base64'));
    }
  }
  for (const node of scenario.nodes) {
    for (const v of nodeType(node.type)?.credentials?.(node) ?? []) tryResolve(v, from, add);
  }
  return services;
}
