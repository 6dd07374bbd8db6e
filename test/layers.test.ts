/**
 * The layering of README.md "Layout": a folder imports only folders below it, so the
 * import graph between top-level folders has no cycle. Type-only imports count too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
/** Lowest first. */
const LAYERS = ['core', 'nodes', 'scenario', 'metering', 'services', 'engine', 'redis', 'scheduler', 'api', 'cli'];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** Every relative import or re-export of a file, as [from folder, to folder]. */
function edges(): Array<{ file: string; from: string; to: string }> {
  const out: Array<{ file: string; from: string; to: string }> = [];
  for (const layer of LAYERS) {
    for (const file of sources(layer)) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const m of text.matchAll(/(?:import|export)\s[^;]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
        const spec = m[1] ?? m[2];
        const to = relative(ROOT, resolve(ROOT, dirname(file), spec)).split('/')[0];
        if (to !== layer) out.push({ file, from: layer, to });
      }
    }
  }
  return out;
}

describe('layers', () => {
  it('every top-level source folder is a known layer', () => {
    const folders = readdirSync(ROOT, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.') && sources(e.name).length > 0)
      .map((e) => e.name)
      .filter((n) => !['node_modules', 'dist', 'test', 'bench', 'examples', 'bin'].includes(n));
    expect(folders.filter((f) => !LAYERS.includes(f))).toEqual([]);
  });

  it('imports only point down the layers', () => {
    const all = edges();
    expect(all.length).toBeGreaterThan(50);
    const up = all.filter((e) => !LAYERS.includes(e.to) || LAYERS.indexOf(e.to) > LAYERS.indexOf(e.from));
    expect(up.map((e) => `${e.file} imports ${e.to}/`)).toEqual([]);
  });
});
