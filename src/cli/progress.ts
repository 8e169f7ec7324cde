/**
 * A progress bar for `connect --file` on a terminal: percentage, octets,
 * rate and ETA on one line of standard error, redrawn at most 10 times a
 * second, erased when done. Nothing at all when standard error is not a
 * terminal or with `--quiet`.
 *
 * @module
 */
import { Transform, type TransformCallback } from 'node:stream';

/** Least time between two redraws (ms): at most 10 per second. */
export const PROGRESS_INTERVAL_MS = 100;

/** What {@link formatProgress} shows. */
export interface ProgressState {
  /** Octets done. */
  done: number;
  /** Octets in all (0 or less: unknown). */
  total: number;
  /** Milliseconds since the transfer began. */
  elapsedMs: number;
  /** Text before the bar, e.g. `2/3` (optional). */
  label?: string;
  /** Width of the bar in characters (default 24). */
  width?: number;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Octets in binary units: `512 B`, `1.5 KiB`, `12.0 MiB`. */
export function formatOctets(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/** A duration in whole seconds as `M:SS` or `H:MM:SS`; `--:--` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * One progress line (no control characters):
 * `[##########--------------]  42.0%  4.2 MiB / 10.0 MiB  1.3 MiB/s  ETA 0:04`.
 * The rate is the mean since the start; the ETA assumes it holds.
 */
export function formatProgress(p: ProgressState): string {
  const width = p.width ?? 24;
  const known = p.total > 0;
  const frac = known ? Math.min(1, Math.max(0, p.done / p.total)) : 0;
  const filled = Math.floor(frac * width);
  const bar = known ? `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]` : `[${'?'.repeat(width)}]`;
  const pct = known ? `${(frac * 100).toFixed(1).padStart(5)}%` : '    ?%';
  const rate = p.elapsedMs > 0 ? (p.done * 1000) / p.elapsedMs : NaN;
  const eta = known && rate > 0 ? formatDuration((p.total - p.done) / rate) : '--:--';
  const sizes = known ? `${formatOctets(p.done)} / ${formatOctets(p.total)}` : formatOctets(p.done);
  const rateText = Number.isFinite(rate) ? `${formatOctets(rate)}/s` : '? B/s';
  return `${p.label ? p.label + ' ' : ''}${bar} ${pct}  ${sizes}  ${rateText}  ETA ${eta}`;
}

/** A terminal-ish stream (standard error). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** Where the line goes (default: standard error). */
  stream?: ProgressStream;
  /** No output at all (`--quiet`). */
  quiet?: boolean;
  /** Clock in ms (tests). */
  now?: () => number;
  /** Text before the bar. */
  label?: string;
}

/**
 * Progress of one transfer of `total` octets. {@link Progress.counter}
 * returns a pass-through stream that counts what flows through it. Draws
 * only when the stream is a terminal and not quiet; redraws at most every
 * {@link PROGRESS_INTERVAL_MS}; {@link Progress.finish} erases the line.
 */
export class Progress {
  /** Octets done so far. */
  done = 0;
  /** Whether anything is drawn at all. */
  readonly enabled: boolean;
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly started: number;
  private lastDraw = -Infinity;
  private drawn = false;

  /** @param total octets in all (0 or less: unknown). */
  constructor(
    /** Octets in all. */
    readonly total: number,
    private readonly options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.enabled = options.quiet !== true && this.stream.isTTY === true;
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
  }

  /** Count `n` more octets and redraw if due. */
  add(n: number): void {
    this.done += n;
    if (!this.enabled) return;
    const t = this.now();
    if (t - this.lastDraw < PROGRESS_INTERVAL_MS && this.done < this.total) return;
    this.lastDraw = t;
    this.draw(t);
  }

  private draw(t: number): void {
    const line = formatProgress({ done: this.done, total: this.total, elapsedMs: t - this.started, ...(this.options.label ? { label: this.options.label } : {}) });
    this.stream.write(`\r${line}\x1b[K`);
    this.drawn = true;
  }

  /** Erase the line (if one was drawn). */
  finish(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }

  /** A pass-through stream that counts the octets flowing through it. */
  counter(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        this.add(chunk.byteLength);
        cb(null, chunk);
      },
    });
  }
}
