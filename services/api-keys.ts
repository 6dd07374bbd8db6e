/** API keys: random, shown once, stored only as SHA-256 hashes. */
import { createHash, randomBytes } from 'node:crypto';

export function newApiKey(): string {
  return `fmk_${randomBytes(24).toString('base64url')}`;
}

export function apiKeyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** A key's public id: the first 16 hex digits of its hash (what `keys list` shows and `keys revoke` takes). */
export function apiKeyId(keyOrHash: string, isHash = false): string {
  return (isHash ? keyOrHash : apiKeyHash(keyOrHash)).slice(0, 16);
}

/** Key ids as `keys revoke` accepts them. */
export const KEY_ID_RE = /^[0-9a-f]{16}$/;

/** One key as listed: never the key itself. */
export interface KeyInfo {
  id: string;
  createdAt: string;
  lastUsedAt: string | null;
}

/** How often (ms) a process records a key's last use, at most. */
export const LAST_USED_EVERY_MS = 60_000;
