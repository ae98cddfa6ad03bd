import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Works from both plugin/*.ts (tsx, tests) and dist/plugin/*.js (installed binary).
function findPackageRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`package.json not found above ${start}`);
    dir = parent;
  }
  return dir;
}

export const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
export const schemaDir = join(packageRoot, 'schemas');
export const transformsDir = join(packageRoot, 'transforms');
/** the packaged hunting queries, next to the transforms */
export const huntingDir = join(packageRoot, 'hunting');

const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
export const version = pkg.version;
export const userAgent = `MdePartner-DefenderFluent-defender-fluent/${version}`;
