import { X509Certificate, createPrivateKey } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';

/** Kernel pseudo-filesystems: writes there fail oddly or hang, never persist. */
const pseudo = ['/proc', '/sys', '/dev'];

/**
 * Why `dir` cannot hold the collector's and sidecar's state, or undefined. Checked at load so
 * that `validate` says it and `run` refuses with the reason (it crashed with a stack trace on a
 * stateDir that is a file, a lock that is a folder, or a folder under /proc).
 */
export function stateDirProblem(dir: string): string | undefined {
  // the deepest part that exists decides (a missing folder is created by run)
  let existing = dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  let real: string;
  try {
    real = realpathSync(existing);
  } catch (e) {
    return `cannot resolve ${existing}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
  }
  const under = pseudo.find((p) => real === p || real.startsWith(`${p}${sep}`));
  if (under) return `${dir} is under ${under}, a kernel pseudo-filesystem: state written there is not kept (use a folder on disk, e.g. /var/lib/defender-fluent)`;
  if (!statSync(existing).isDirectory()) return `${existing} is a file, not a folder`;
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch {
    return `${existing} is not writable by this user`;
  }
  if (existing !== dir) return undefined;
  for (const name of ['collector.lock', 'respond-caps.json', 'status.json', 'audit.log', 'cursors']) {
    const p = join(dir, name);
    if (!existsSync(p)) continue;
    const isDir = statSync(p).isDirectory();
    if (name === 'cursors' ? !isDir : isDir) return `${p} is a ${isDir ? 'folder' : 'file'}; expected a ${isDir ? 'file' : 'folder'} (remove it)`;
  }
  return undefined;
}

/** Why `file` is not a PEM certificate (or private key), or undefined. */
export function pemProblem(file: string, kind: 'certificate' | 'key'): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? `file not found: ${file}` : `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
  }
  try {
    if (kind === 'key') createPrivateKey(text);
    else if (!/-----BEGIN CERTIFICATE-----/.test(text)) throw new Error('no "-----BEGIN CERTIFICATE-----" block');
    else new X509Certificate(text);
    return undefined;
  } catch (e) {
    return `${file} is not a PEM ${kind === 'key' ? 'private key' : 'certificate'} (${(e as Error).message.split('\n')[0]})`;
  }
}
