import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { registerSecret } from '../log.js';
import { escapePointer } from '../schema-check.js';

const reference = /\$\{(env|file):([^}]*)\}/g;

export interface SecretProblem {
  pointer: string;
  message: string;
}

export interface ResolveResult {
  value: unknown;
  problems: SecretProblem[];
  /** JSON pointers of strings that were (wholly or partly) built from a reference */
  referenced: Set<string>;
}

/**
 * Replaces ${env:NAME} and ${file:path} in every string of the parsed config. File paths are
 * resolved against the config's folder and trailing newlines trimmed (Docker/K8s secret files).
 * Resolved values are registered for log redaction.
 */
export function resolveReferences(value: unknown, baseDir: string, env: NodeJS.ProcessEnv): ResolveResult {
  const problems: SecretProblem[] = [];
  const referenced = new Set<string>();
  const walk = (v: unknown, pointer: string): unknown => {
    if (typeof v === 'string') {
      if (!v.includes('${')) return v;
      let failed = false;
      const out = v.replace(reference, (_m, kind: string, arg: string) => {
        referenced.add(pointer);
        if (!arg.trim()) {
          problems.push({ pointer, message: `\${${kind}:} names no ${kind === 'env' ? 'variable' : 'file'} (expected \${${kind}:${kind === 'env' ? 'NAME' : '/path'}})` });
          failed = true;
          return '';
        }
        if (kind === 'env') {
          const got = env[arg];
          if (got === undefined || got === '') {
            // an empty value would otherwise surface as a schema "too short" error that hides the cause
            problems.push({ pointer, message: `environment variable ${arg} is ${got === undefined ? 'not set' : 'set but empty'} (referenced as \${env:${arg}})` });
            failed = true;
            return '';
          }
          registerSecret(got);
          return got;
        }
        const path = isAbsolute(arg) ? arg : resolve(baseDir, arg);
        try {
          const got = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
          if (got === '') {
            problems.push({ pointer, message: `secret file ${path} is empty` });
            failed = true;
            return '';
          }
          registerSecret(got);
          return got;
        } catch (e) {
          problems.push({ pointer, message: `cannot read secret file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}` });
          failed = true;
          return '';
        }
      });
      return failed ? v : out;
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${pointer}/${i}`));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, `${pointer}/${escapePointer(k)}`);
      return out;
    }
    return v;
  };
  return { value: walk(value, ''), problems, referenced };
}
