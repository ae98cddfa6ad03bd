// A tiny request/response protocol over Node's IPC channel, so each benchmark can run the emulator,
// the forward server and the collector in separate processes (each gets its own CPU and RSS).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

type Msg = { id?: number; cmd?: string; args?: unknown; result?: unknown; error?: string; ready?: unknown };

export interface Child<R = unknown> {
  proc: ChildProcess;
  /** what the child sent with ready() */
  info: R;
  call<T = unknown>(cmd: string, args?: unknown): Promise<T>;
  /** asks the child to exit; kills it if it has not after 5 s */
  stop(): Promise<void>;
}

/** Forks `file` (a bench/proc/*.ts module) with the parent's loader flags plus `execArgv`. */
export async function startChild<R>(file: URL, args: string[] = [], execArgv: string[] = []): Promise<Child<R>> {
  const proc = fork(fileURLToPath(file), args, { execArgv: [...process.execArgv, ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) => proc.once('exit', () => ((exited = true), resolve())));
  void exit.then(() => {
    for (const p of pending.values()) p.reject(new Error(`${file.pathname} exited`));
    pending.clear();
  });
  proc.on('message', (m: Msg) => {
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(m.error));
    else p?.resolve(m.result);
  });
  const info = await new Promise<R>((resolve, reject) => {
    const onMsg = (m: Msg) => {
      if ('ready' in m) {
        proc.off('message', onMsg);
        resolve(m.ready as R);
      }
    };
    proc.on('message', onMsg);
    void exit.then(() => reject(new Error(`${file.pathname} exited before it was ready`)));
  });
  return {
    proc,
    info,
    call<T>(cmd: string, a?: unknown) {
      return new Promise<T>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        proc.send({ id, cmd, args: a });
      });
    },
    async stop() {
      if (exited) return;
      proc.send({ cmd: '__exit' });
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(t);
    },
  };
}

/** In the child: answers calls with `handlers` and announces readiness with `info`. */
export function serve(info: unknown, handlers: Record<string, (args: any) => unknown>, onExit: () => Promise<void> | void = () => undefined): void {
  process.on('message', async (m: Msg) => {
    if (m.cmd === '__exit') {
      await onExit();
      process.exit(0);
    }
    if (m.id === undefined || !m.cmd) return;
    try {
      const h = handlers[m.cmd];
      if (!h) throw new Error(`unknown command ${m.cmd}`);
      process.send!({ id: m.id, result: await h(m.args) });
    } catch (e) {
      process.send!({ id: m.id, error: (e as Error)?.stack ?? String(e) });
    }
  });
  process.send!({ ready: info });
}
