#!/usr/bin/env node
// The last step of `npm test`: runs the shared conformance suite (../shared/conformance/run.mjs)
// when that folder sits beside the project, and fails when it fails. Without it, one line says
// so: the project's own copy of the cases (test/conformance/cases/) has run in vitest already.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const runner = '../shared/conformance/run.mjs';
if (!existsSync(runner)) {
  console.log(`conformance: ${runner} not found beside the project; skipped (test/conformance/cases ran in vitest)`);
  process.exit(0);
}
const r = spawnSync(process.execPath, [runner, ...process.argv.slice(2)], { stdio: 'inherit' });
if (r.error) throw r.error;
process.exit(r.status ?? 1);
