/** Where the package's own files (Lua scripts, the dashboard) are found at run time. */
import { dirname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The package root, from source (core/) or from the build (dist/core/). */
export const PACKAGE_ROOT = here.includes(`${sep}dist${sep}`) ? resolve(here, '..', '..') : resolve(here, '..');
