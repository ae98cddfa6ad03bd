// Entry points the rest of the program uses: load + check + compile a transforms directory into a
// TransformMapper (or every problem), validate it for `defender-fluent validate`, and reload it on
// SIGHUP or a file change while keeping the running transforms when the new ones are broken.
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { ContentType } from '../config/load.js';
import { checkLogFilterFields } from '../config/log-filters.js';
import type { LogFilter } from '../generated/config.js';
import { transformsDir } from '../paths.js';
import { formatProblem, type Problem } from '../schema-check.js';
import { loadTransformDir, type LoadedTransform } from './load.js';
import { overlaysDir } from './overlays.js';
import { child, itemsOf, typesOf, type JsonSchema } from './schema-nav.js';
import { compileTransform, TransformMapper, TransformStats, type TransformMapperOptions } from './transform-mapper.js';

export { transformsDir };

export type LoadMapperResult = { ok: true; mapper: TransformMapper; transforms: LoadedTransform[] } | { ok: false; problems: Problem[] };

/** Loads, checks and compiles every transform of dir; returns the mapper, or all problems at once. */
export function loadMapper(dir: string = transformsDir, opts: TransformMapperOptions = {}): LoadMapperResult {
  const loaded = loadTransformDir(dir);
  if (loaded.problems.length) return { ok: false, problems: loaded.problems };
  const compiled = [];
  const problems: Problem[] = [];
  for (const t of loaded.transforms) {
    try {
      compiled.push(compileTransform(t));
    } catch (e) {
      problems.push({ file: t.file, pointer: '', message: `cannot compile: ${(e as Error).message}` });
    }
  }
  if (problems.length) return { ok: false, problems };
  return { ok: true, mapper: new TransformMapper(compiled, opts), transforms: loaded.transforms };
}

/** Problems of the transform files and lookups of dir (empty when they load); for `validate`. */
export function validateTransforms(dir: string = transformsDir): Problem[] {
  const r = loadMapper(dir);
  return r.ok ? [] : r.problems;
}

/** Dotted output paths each content type's transforms set (with their parent objects), for log filter checks. */
/**
 * Per content type, every dotted output path the transforms set, with the JSON types its values may
 * have in the index schema (a list field gives its items' types: filters match any item).
 */
export function outputFields(transforms: LoadedTransform[]): Map<ContentType, Map<string, Set<string>>> {
  const out = new Map<ContentType, Map<string, Set<string>>>();
  for (const t of transforms) {
    const fields = out.get(t.content) ?? new Map<string, Set<string>>();
    const schema = t.outputSchema;
    for (const r of t.rules) {
      let node: JsonSchema | undefined = schema;
      for (let i = 1; i <= r.target.length; i++) {
        node = node && child(schema, node, r.target[i - 1] as string);
        const path = r.target.slice(0, i).join('.');
        const types = fields.get(path) ?? new Set<string>();
        if (node) {
          const own = typesOf(schema, node);
          const items = own.has('array') ? itemsOf(schema, node) : undefined;
          for (const ty of items ? typesOf(schema, items) : own) types.add(ty);
        }
        fields.set(path, types);
      }
    }
    out.set(t.content, fields);
  }
  return out;
}

/**
 * Log filter fields that no record of the filter's content types has, and values of a type the field
 * never holds (a typo, or `severity eq critical` on a numeric field, would make the filter never match). `connectors` are the config's connectors, `file` the config file for the problems.
 */
export function logFilterFieldProblems(file: string, connectors: { logFilters?: LogFilter[] }[], dir: string = transformsDir): Problem[] {
  const loaded = loadTransformDir(dir);
  if (loaded.problems.length) return [];
  const known = outputFields(loaded.transforms);
  return connectors.flatMap((c, i) => checkLogFilterFields(c.logFilters ?? [], `/connectors/${i}/logFilters`, known).map((p) => ({ file, ...p })));
}

/** Logs the first transform_error of each transform, then one in every 1000 (a bad mapping can hit every record). */
export function sampledErrorLog(logger: Logger): (transform: string, message: string) => void {
  const seen = new Map<string, number>();
  return (transform, message) => {
    const n = (seen.get(transform) ?? 0) + 1;
    seen.set(transform, n);
    if (n === 1 || n % 1000 === 0) logger.warn({ transform, count: n }, `record marked with transform_error (delivered, not dropped): ${message}`);
  };
}

export interface ReloaderOptions extends TransformMapperOptions {
  logger?: Logger;
  /** debounce of file-change reloads, ms (editors write files in several steps) */
  debounceMs?: number;
}

/**
 * Holds the current TransformMapper. The collector asks for current() once per batch, so a reload
 * that succeeds applies from the next batch; one that fails keeps the previous transforms and logs why.
 */
export class TransformReloader {
  private mapper: TransformMapper;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  readonly stats: TransformStats;
  reloads = 0;
  failedReloads = 0;
  lastProblems: Problem[] = [];

  private constructor(
    readonly dir: string,
    initial: TransformMapper,
    private readonly opts: ReloaderOptions,
  ) {
    this.mapper = initial;
    this.stats = initial.stats;
  }

  /** The initial load: `run` refuses to start when this returns problems. */
  static open(dir: string = transformsDir, opts: ReloaderOptions = {}): { ok: true; reloader: TransformReloader } | { ok: false; problems: Problem[] } {
    const stats = opts.stats ?? new TransformStats();
    const onError = opts.onError ?? (opts.logger ? sampledErrorLog(opts.logger) : undefined);
    const full = { ...opts, stats, ...(onError ? { onError } : {}) };
    const r = loadMapper(dir, full);
    if (!r.ok) return r;
    return { ok: true, reloader: new TransformReloader(dir, r.mapper, full) };
  }

  current(): TransformMapper {
    return this.mapper;
  }

  /** For the collector's `mapper: () => RecordMapper` option. */
  readonly mapperFn = (): TransformMapper => this.mapper;

  reload(): { ok: boolean; problems: Problem[] } {
    const r = loadMapper(this.dir, { ...this.opts, stats: this.stats });
    if (!r.ok) {
      this.failedReloads++;
      this.lastProblems = r.problems;
      this.opts.logger?.error({ problems: r.problems.map(formatProblem) }, `transform reload failed (${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}): keeping the previous transforms`);
      return { ok: false, problems: r.problems };
    }
    this.mapper = r.mapper;
    this.reloads++;
    this.lastProblems = [];
    this.opts.logger?.info({ transforms: r.transforms.map((t) => t.name) }, 'transforms reloaded; applied from the next batch');
    return { ok: true, problems: [] };
  }

  /** Reloads when a file of dir, dir/lookups or dir/overlays changes (debounced). Returns a function that stops watching. */
  watch(onReload?: (result: { ok: boolean; problems: Problem[] }) => void): () => void {
    const schedule = () => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        const result = this.reload();
        onReload?.(result);
      }, this.opts.debounceMs ?? 250);
    };
    for (const d of [this.dir, join(this.dir, 'lookups'), overlaysDir(this.dir)]) {
      if (!existsSync(d)) continue;
      const w = watch(d, { persistent: false }, (_event, name) => {
        if (!name || String(name).endsWith('.json')) schedule();
      });
      w.on('error', (e) => this.opts.logger?.warn({ err: e.message, dir: d }, 'cannot watch transforms directory'));
      this.watchers.push(w);
    }
    return () => this.unwatch();
  }

  unwatch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
