/** API keys: random, shown once, stored only as SHA-256 hashes. */
import { createHash, randomBytes } from 'node:crypto';

export function newApiKey(): string {
  return `fmk_${randomBytes(24).toString('base64url')}`;
}

export function apiKeyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
