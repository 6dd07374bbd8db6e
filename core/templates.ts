/**
 * Templates: strings with `{{path}}` parts. A string that is exactly one `{{path}}` yields the
 * raw value (or null when missing); otherwise values are stringified into the string (missing
 * values as the empty string).
 */
import { getPath, type Scope } from './paths.js';

const WHOLE = /^\{\{\s*([^{}]+?)\s*\}\}$/;
const PART = /\{\{\s*([^{}]+?)\s*\}\}/g;

function stringify(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function renderString(template: string, scope: Scope): unknown {
  if (!template.includes('{{')) return template;
  const whole = WHOLE.exec(template);
  if (whole) {
    const v = getPath(scope, whole[1]!);
    return v === undefined ? null : v;
  }
  return template.replace(PART, (_, path: string) => stringify(getPath(scope, path)));
}

/** Renders a template and always yields a string (for URLs, headers, subjects). */
export function renderText(template: string | undefined, scope: Scope): string {
  if (template === undefined) return '';
  return stringify(renderString(template, scope));
}

/** Renders every string inside a JSON value (object keys are kept as they are). */
export function renderDeep(value: unknown, scope: Scope): unknown {
  if (typeof value === 'string') return renderString(value, scope);
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, scope));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = renderDeep(v, scope);
    return out;
  }
  return value;
}

/** Every path named by `{{...}}` parts of the strings inside `value` (for validation). */
export function templatePaths(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') {
    for (const m of value.matchAll(PART)) out.push(m[1]!.trim());
  } else if (Array.isArray(value)) {
    for (const v of value) templatePaths(v, out);
  } else if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) templatePaths(v, out);
  }
  return out;
}

/** Every string inside a JSON value, with its path below `path` (`.key`, `[i]`), for validation. */
export function templateStrings(value: unknown, path: string, out: Array<[string, string]> = [], depth = 0): Array<[string, string]> {
  if (typeof value === 'string') out.push([path, value]);
  else if (depth > 100) return out;
  else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) templateStrings(v, `${path}[${i}]`, out, depth + 1);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) templateStrings(v, `${path}.${k}`, out, depth + 1);
  }
  return out;
}

/** Whether `text` has a `{{` that no `}}` closes (once its complete `{{path}}` parts are taken out). */
export function hasUnclosedTemplate(text: string): boolean {
  return text.replace(PART, '').includes('{{');
}
