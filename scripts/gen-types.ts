// Generates plugin/generated/**.ts from schemas/**.schema.json (the single source of the types).
// `npm run gen` writes them; `--check` exits 1 when a generated file is stale (used by a test too).
import { compileFromFile } from 'json-schema-to-typescript';
import { readdir, readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSchema, referencedFiles } from '../plugin/schema-check.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schemaDir = join(root, 'schemas');
const outDir = join(root, 'plugin', 'generated');

const banner = '/* Generated from schemas/ by `npm run gen` (json-schema-to-typescript). Do not edit. */';

async function schemaFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await schemaFiles(full)));
    else if (entry.name.endsWith('.schema.json')) out.push(full);
  }
  return out.sort();
}

/** Map of output path (relative to repo root) → generated source. */
export async function generateAll(): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const file of await schemaFiles(schemaDir)) {
    const schemaRel = relative(schemaDir, file).split(sep).join(posix.sep);
    const rel = schemaRel.replace(/\.schema\.json$/, '.ts');
    // A schema another file defines (`"$ref": "lake-record.schema.json"`) is imported from that file's
    // generated module, not declared again in every module that uses it.
    const refs = referencedFiles(schemaRel, loadSchema(schemaRel));
    const imports = refs.map((ref) => {
      const title = loadSchema(ref).title;
      if (typeof title !== 'string') throw new Error(`schemas/${ref}: a schema referenced by another file needs a title (its type name)`);
      return `import type { ${title} } from './${posix.relative(posix.dirname(schemaRel), ref).replace(/\.schema\.json$/, '.js')}';\n`;
    });
    const ts = await compileFromFile(file, {
      bannerComment: banner,
      cwd: dirname(file),
      additionalProperties: false,
      strictIndexSignatures: true,
      style: { singleQuote: true },
      format: false,
      declareExternallyReferenced: refs.length === 0,
    });
    result.set(relative(root, join(outDir, rel)), imports.length ? ts.replace(`${banner}\n`, `${banner}\n${imports.join('')}`) : ts);
  }
  return result;
}

async function main(check: boolean): Promise<void> {
  const generated = await generateAll();
  const stale: string[] = [];
  if (!check) await rm(outDir, { recursive: true, force: true });
  for (const [rel, ts] of generated) {
    const full = join(root, rel);
    if (check) {
      const current = await readFile(full, 'utf8').catch(() => null);
      if (current !== ts) stale.push(rel);
    } else {
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, ts);
    }
  }
  if (stale.length) {
    console.error(`stale generated types (run npm run gen): ${stale.join(', ')}`);
    process.exit(1);
  }
  if (!check) console.log(`generated ${generated.size} files into ${relative(root, outDir)}/`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.includes('--check'));
}
