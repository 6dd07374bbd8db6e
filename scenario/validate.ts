/**
 * Validation of a scenario document: the schema, then the graph, every problem at once as
 * `path: message`, plus warnings.
 */

import { CronExpressionParser } from 'cron-parser';
import type { z } from 'zod';
import { normalizeCron } from '../core/cron.js';
import { nestsDeeper, tooDeep } from '../core/json-depth.js';
import { PATH_RE } from '../core/paths.js';
import { didYouMean } from '../core/suggest.js';
import { hasUnclosedTemplate, templatePaths, templateStrings } from '../core/templates.js';
import { NODE_TYPES, nodeType } from '../nodes/index.js';
import { checkGraph } from './graph.js';
import { knownFieldsAt } from './known-fields.js';
import { type Scenario, schemas } from './schema.js';

export interface ValidationResult {
  scenario: Scenario | null;
  problems: string[];
  warnings: string[];
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(document)';
}

/** `"x"`, with the closest known field when one is close enough to be a typo. */
function unknownKey(key: string, known: readonly string[]): string {
  const hint = didYouMean(key, known);
  return `${JSON.stringify(key)}${hint}`;
}

function zodProblems(error: z.ZodError, doc: unknown, skip: (path: ReadonlyArray<PropertyKey>) => boolean): string[] {
  const out: string[] = [];
  for (const issue of error.issues) {
    if (skip(issue.path)) continue;
    if (issue.code === 'invalid_union' && issue.errors.length) {
      // A condition that matches no form: report the closest branch's issues.
      const best = issue.errors.reduce((a, b) => (b.length < a.length ? b : a));
      for (const sub of best) out.push(`${formatPath([...issue.path, ...sub.path])}: ${sub.message}`);
      continue;
    }
    if (issue.code === 'unrecognized_keys') {
      const known = knownFieldsAt(doc, issue.path);
      out.push(`${formatPath(issue.path)}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => unknownKey(k, known)).join(', ')}`);
      continue;
    }
    out.push(`${formatPath(issue.path)}: ${issue.message}`);
  }
  return out;
}

/** Validates a parsed JSON document. Never throws on any input. */
export function validateScenario(doc: unknown): ValidationResult {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return { scenario: null, problems: ['(document): a scenario must be a JSON object'], warnings: [] };
  }
  // Before anything walks it: deeper documents would overflow the stack of what does.
  if (nestsDeeper(doc)) return { scenario: null, problems: [`(document): ${tooDeep('the document')}`], warnings: [] };
  const raw = doc as Record<string, unknown>;
  const problems: string[] = [];
  const badTypeNodes = new Set<number>();
  const rawNodes = Array.isArray(raw.nodes) ? raw.nodes : [];
  rawNodes.forEach((n, i) => {
    const t = (n as { type?: unknown } | null)?.type;
    if (n === null || typeof n !== 'object' || Array.isArray(n)) {
      problems.push(`nodes[${i}]: a node must be an object`);
      badTypeNodes.add(i);
    } else if (typeof t !== 'string' || !nodeType(t)) {
      const types = NODE_TYPES.map((d) => d.type);
      const hint = typeof t === 'string' ? didYouMean(t, types) : '';
      problems.push(`nodes[${i}].type: ${t === undefined ? 'missing' : `unknown node type ${JSON.stringify(t)}`}${hint || ` (one of: ${types.join(', ')})`}`);
      badTypeNodes.add(i);
    }
  });
  const { scenario: scenarioSchema, node: nodeSchema } = schemas();
  const parsed = scenarioSchema.safeParse(doc);
  if (!parsed.success) {
    problems.push(...zodProblems(parsed.error, doc, (p) => p[0] === 'nodes' && typeof p[1] === 'number' && badTypeNodes.has(p[1])));
  }

  // Graph checks run on every node with an id, even when its shape or type is wrong: its id
  // exists (no "does not exist" for edges into it), and its references are checked when its
  // own fields parse without the unknown ones. A node that is not valid as it stands turns off
  // the reachability warnings: a misspelt field (`nxt`) may be the edge that reaches the rest.
  let edgesKnown = true;
  const nodes = rawNodes.flatMap((n, index) => {
    const r = n as { id?: unknown; type: string } | null;
    if (typeof r?.id !== 'string') {
      edgesKnown = false;
      return [];
    }
    if (badTypeNodes.has(index)) {
      edgesKnown = false;
      return [{ index, id: r.id, type: r.type, parsed: null, strict: false }];
    }
    const one = nodeSchema.safeParse(n);
    if (one.success) return [{ index, id: r.id, type: r.type, parsed: one.data as unknown, strict: true }];
    const lenient = nodeType(r.type)!.config.safeParse(n);
    edgesKnown = false;
    return [{ index, id: r.id, type: r.type, parsed: lenient.success ? (lenient.data as unknown) : null, strict: false }];
  });
  const rec = (v: unknown) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {});
  const graph = checkGraph({
    start: raw.start,
    nodes,
    lists: rec(raw.lists),
    tables: rec(raw.tables),
    connections: rec(raw.connections),
    reachability: edgesKnown,
  });
  problems.push(...graph.problems);

  const warnings = [...graph.warnings];
  const vars = declaredVars(raw, rawNodes);
  for (const n of nodes) {
    if (!n.strict) continue;
    nodeContentProblems(n.index, n.parsed as Record<string, unknown>, vars, problems, warnings);
  }
  problems.push(...triggerProblems(raw.trigger));
  problems.push(...reservedNameProblems(raw, rawNodes));

  return {
    scenario: problems.length === 0 && parsed.success ? (parsed.data as Scenario) : null,
    problems: problems.map(oneLine),
    warnings: warnings.map(oneLine),
  };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f\u2028\u2029]/g;
const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * One problem, one line: keys, ids and names from the document may hold newlines or other
 * control characters; they are escaped as in JSON.
 */
function oneLine(problem: string): string {
  return problem.replace(CONTROL, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The global variables a template may read: those the scenario declares in `variables` and
 * those a Function sets with `setVar("name", …)`; null (any) when a Function calls `setVar`
 * with a name that is not a string literal.
 */
function declaredVars(raw: Record<string, unknown>, nodes: unknown[]): Set<string> | null {
  const names = new Set(ownKeys(raw.variables));
  for (const n of nodes) {
    const code = (n as { code?: unknown } | null)?.code;
    if (typeof code !== 'string') continue;
    for (const m of code.matchAll(/\bsetVar\s*\(\s*(?:(['"`])([^'"`\\]*)\1\s*,)?/g)) {
      if (m[2] === undefined) return null;
      names.add(m[2]);
    }
  }
  return names;
}

/**
 * Checks of a node's content beyond its shape (except in the type's raw fields, such as
 * code): templates (an unclosed `{{`, a path not rooted at msg or vars; a warning for
 * `vars.NAME` that nothing declares) and the type's own checks (such as Function syntax).
 */
function nodeContentProblems(index: number, node: Record<string, unknown>, vars: Set<string> | null, problems: string[], warnings: string[]): void {
  const def = nodeType(String(node.type));
  const raw = def?.rawFields ?? [];
  for (const [key, value] of Object.entries(node)) {
    if (raw.includes(key)) continue;
    for (const [where, text] of templateStrings(value, `nodes[${index}].${key}`)) {
      if (!text.includes('{{')) continue;
      if (hasUnclosedTemplate(text)) problems.push(`${where}: unclosed {{ in ${JSON.stringify(text)}; write {{path}}`);
      for (const p of templatePaths(text)) {
        if (!PATH_RE.test(p)) problems.push(`${where}: template {{${p}}} must name a path rooted at msg or vars`);
        const name = p.split('.')[1];
        if (vars && p.startsWith('vars.') && name !== undefined && !vars.has(name)) {
          warnings.push(`${where}: {{${p}}} reads vars.${name}, which the scenario's variables do not declare and no Function sets${didYouMean(name, vars)}`);
        }
      }
    }
  }
  for (const problem of def?.check?.(node as never) ?? []) problems.push(`nodes[${index}].${problem}`);
}

/** Names that reach JavaScript's object machinery: never a name of anything in a scenario. */
const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

function ownKeys(v: unknown): string[] {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [];
}

/** Every reserved key in a JSON value, as paths under `path`. */
function reservedKeysIn(value: unknown, path: string, out: string[], depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 100) return;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) reservedKeysIn(v, `${path}[${i}]`, out, depth + 1);
    return;
  }
  for (const k of Object.keys(value)) {
    if (RESERVED.has(k)) out.push(`${path}.${k}: ${JSON.stringify(k)} is a reserved name; use another key`);
    reservedKeysIn((value as Record<string, unknown>)[k], `${path}.${k}`, out, depth + 1);
  }
}

/**
 * `__proto__`, `constructor` and `prototype` as names of lists, tables, variables or connections,
 * or as keys of a node's headers, query or body: refused (they would be dropped or reach the
 * prototype of the objects built from them).
 */
function reservedNameProblems(raw: Record<string, unknown>, nodes: unknown[]): string[] {
  const out: string[] = [];
  for (const field of ['lists', 'tables', 'variables', 'connections'] as const) {
    for (const k of ownKeys(raw[field])) if (RESERVED.has(k)) out.push(`${field}.${k}: ${JSON.stringify(k)} is a reserved name; use another name`);
  }
  for (const [name, conn] of Object.entries(raw.connections ?? {})) {
    if (!RESERVED.has(name)) reservedKeysIn((conn as Record<string, unknown> | null)?.headers, `connections.${name}.headers`, out);
  }
  for (const [name, table] of Object.entries(raw.tables ?? {})) {
    if (!RESERVED.has(name))
      for (const k of ownKeys(table)) if (RESERVED.has(k)) out.push(`tables.${name}.${k}: ${JSON.stringify(k)} is a reserved name; use another key`);
  }
  nodes.forEach((n, i) => {
    for (const field of ['headers', 'query', 'body']) reservedKeysIn((n as Record<string, unknown> | null)?.[field], `nodes[${i}].${field}`, out);
  });
  return out;
}

function triggerProblems(trigger: unknown): string[] {
  const t = trigger as { type?: unknown; schedule?: unknown; timezone?: unknown } | undefined;
  if (t?.type !== 'cron') return [];
  const out: string[] = [];
  const tz = typeof t.timezone === 'string' ? t.timezone : 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    out.push(`trigger.timezone: unknown IANA timezone ${JSON.stringify(tz)}`);
  }
  if (typeof t.schedule === 'string') {
    const fields = t.schedule.trim().split(/\s+/).length;
    if (fields !== 5 && fields !== 6) out.push(`trigger.schedule: a cron expression has 5 or 6 fields, got ${fields}`);
    else {
      try {
        CronExpressionParser.parse(normalizeCron(t.schedule), { tz: out.length ? 'UTC' : tz, strict: false });
      } catch (err) {
        out.push(`trigger.schedule: ${(err as Error).message}`);
      }
    }
  }
  return out;
}
