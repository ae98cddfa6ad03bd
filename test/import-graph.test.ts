// What the collector and the sidecar load: the static import graph of plugin/cli.ts (every command
// but `emulate` is imported statically) must not reach the emulator or its certificate library.
// test/install.test.ts checks the same at run time, on the installed binary.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { packageRoot } from '../plugin/paths.js';

interface Graph {
  files: Set<string>;
  packages: Set<string>;
  /** dynamic import() specifiers, per file */
  dynamic: Map<string, string[]>;
}

/** Follows import and export-from declarations that survive compilation (type-only ones are erased). */
function staticGraph(entry: string): Graph {
  const g: Graph = { files: new Set(), packages: new Set(), dynamic: new Map() };
  const visit = (file: string) => {
    if (g.files.has(file)) return;
    g.files.add(file);
    const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const follow = (spec: string) => {
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!spec.startsWith('node:')) g.packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    };
    for (const s of src.statements) {
      if (ts.isImportDeclaration(s) && ts.isStringLiteral(s.moduleSpecifier)) {
        const c = s.importClause;
        const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
        const typeOnly = c && (c.isTypeOnly || (!c.name && named && named.length > 0 && named.every((e) => e.isTypeOnly)));
        if (!typeOnly) follow(s.moduleSpecifier.text);
      } else if (ts.isExportDeclaration(s) && s.moduleSpecifier && ts.isStringLiteral(s.moduleSpecifier) && !s.isTypeOnly) {
        follow(s.moduleSpecifier.text);
      }
    }
    const dyn: string[] = [];
    const walk = (n: ts.Node) => {
      if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) dyn.push(n.arguments[0].text);
      ts.forEachChild(n, walk);
    };
    walk(src);
    if (dyn.length) g.dynamic.set(file, dyn);
  };
  visit(entry);
  return g;
}

describe('what the collector and the sidecar load', () => {
  const cli = join(packageRoot, 'plugin', 'cli.ts');
  const g = staticGraph(cli);
  const rel = (f: string) => relative(packageRoot, f);

  it('the static graph of the CLI holds run and respond but no module of plugin/emulate/ and not selfsigned', () => {
    const files = [...g.files].map(rel);
    assert.ok(files.includes('plugin/collect/run-command.ts') && files.includes('plugin/respond/command.ts'), 'the walk follows the commands');
    assert.ok(g.packages.has('commander') && g.packages.has('@azure/msal-node'), 'the walk sees packages');
    assert.deepEqual(
      files.filter((f) => f.startsWith('plugin/emulate/')),
      [],
    );
    assert.ok(!g.packages.has('selfsigned'), 'selfsigned is imported only by the emulator');
  });

  it('the emulate command loads the emulator on demand, and nothing else does', () => {
    assert.deepEqual(
      [...g.dynamic].map(([f, specs]) => [rel(f), specs]),
      [['plugin/cli.ts', ['./emulate/command.js']]],
    );
    const emulator = staticGraph(join(packageRoot, 'plugin', 'emulate', 'command.ts'));
    assert.ok(emulator.packages.has('selfsigned'), 'the emulator does import selfsigned (else this test proves nothing)');
  });
});
