/**
 * Loads the Lua scripts of redis/lua/. Shared Lua is pulled in by name, BullMQ's convention:
 * a line `--- @include "lib-settle"` is replaced by redis/lua/lib-settle.lua, itself expanded
 * the same way. Each file is included once per script (a second include of it, or a cycle,
 * adds nothing), so a library may include what it needs without doubling it.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FlowError } from '../core/errors.js';
import { PACKAGE_ROOT } from '../core/package-root.js';

/** The one folder of every script and library. */
export const LUA_DIR = resolve(PACKAGE_ROOT, 'redis', 'lua');

/** An include directive: `--- @include "name"` (the `.lua` suffix is optional). */
const DIRECTIVE_RE = /^---[ \t]*@include\b(.*)$/gm;
const NAME_RE = /^[ \t]+"([A-Za-z0-9_-]+)(?:\.lua)?"[ \t]*$/;

/**
 * The source of script `name` (a file of `dir` without `.lua`) with its includes expanded.
 * Throws INTERNAL naming the script and the include for a missing file or a malformed line.
 */
export function loadLua(name: string, dir: string = LUA_DIR): string {
  const included = new Set<string>([name]);
  const expand = (file: string, text: string): string =>
    text.replace(new RegExp(DIRECTIVE_RE), (line, rest: string) => {
      const m = NAME_RE.exec(rest);
      if (!m) throw new FlowError('INTERNAL', `${file}.lua: malformed include ${JSON.stringify(line)}: write --- @include "name"`);
      const lib = m[1]!;
      if (included.has(lib)) return `-- (${lib}.lua is included above)`;
      included.add(lib);
      return expand(lib, readLua(dir, lib, `${file}.lua includes "${lib}"`));
    });
  return expand(name, readLua(dir, name, `no script ${JSON.stringify(name)}`));
}

function readLua(dir: string, name: string, context: string): string {
  const path = resolve(dir, `${name}.lua`);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'there is no such file' : (err as Error).message;
    throw new FlowError('INTERNAL', `${context}: cannot read ${path}: ${why}`);
  }
}
