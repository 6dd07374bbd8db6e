/**
 * Dotted paths rooted at `msg` or `vars`: `msg.payload.items.0.id`.
 */

import { FlowError } from './errors.js';
import type { Message } from './types.js';

export const PATH_RE = /^(msg|vars)(\.[^.\s{}]+)*$/;
export const MSG_PATH_RE = /^msg(\.[^.\s{}]+)+$/;

export interface Scope {
  msg: Message;
  vars: Record<string, unknown>;
}

const splitCache = new Map<string, string[]>();
function split(path: string): string[] {
  let parts = splitCache.get(path);
  if (!parts) {
    parts = path.split('.');
    if (splitCache.size > 10_000) splitCache.clear();
    splitCache.set(path, parts);
  }
  return parts;
}

/** The value at `path`, or undefined when any step is missing. */
export function getPath(scope: Scope, path: string): unknown {
  const parts = split(path.trim());
  let cur: unknown = parts[0] === 'vars' ? scope.vars : parts[0] === 'msg' ? scope.msg : undefined;
  for (let i = 1; i < parts.length; i++) {
    if (cur === null || typeof cur !== 'object') return undefined;
    const key = parts[i]!;
    if (!Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

const UNSAFE = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * A copy of `msg` with `value` written at `path` (which must start with `msg.`). Objects on the
 * way are copied, so the input message is never mutated; missing steps become objects.
 */
export function setPath(msg: Message, path: string, value: unknown): Message {
  const parts = split(path.trim());
  if (parts[0] !== 'msg' || parts.length < 2) throw new FlowError('PATH_NOT_WRITABLE', `cannot write to ${path}: it must start with msg.`);
  const root: Message = { ...msg };
  let cur: Record<string, unknown> | unknown[] = root;
  for (let i = 1; i < parts.length; i++) {
    const key = parts[i]!;
    if (UNSAFE.has(key)) throw new FlowError('PATH_NOT_WRITABLE', `cannot write to ${path}: "${key}" is not allowed in a path`);
    // A named field on an array would not survive JSON (the task log, Redis, the API).
    if (Array.isArray(cur) && !/^(0|[1-9]\d*)$/.test(key)) {
      throw new FlowError('PATH_NOT_WRITABLE', `cannot write to ${path}: ${parts.slice(0, i).join('.')} is an array, and "${key}" is not an index`);
    }
    if (i === parts.length - 1) {
      (cur as Record<string, unknown>)[key] = value;
    } else {
      const next = (cur as Record<string, unknown>)[key];
      const copy = Array.isArray(next) ? [...next] : next !== null && typeof next === 'object' ? { ...(next as object) } : {};
      (cur as Record<string, unknown>)[key] = copy;
      cur = copy as Record<string, unknown>;
    }
  }
  return root;
}
