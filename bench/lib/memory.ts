// Peak resident memory of this process, measured two ways: the kernel's high-water mark
// (VmHWM in /proc/self/status: every page ever resident, nothing can slip between samples) and
// process.memoryUsage().rss sampled every 50 ms as a cross-check where /proc is missing.
import { readFileSync } from 'node:fs';

const MB = 1024 * 1024;

export function vmHwmMB(): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export class RssSampler {
  maxMB = process.memoryUsage.rss() / MB;
  readonly startMB = this.maxMB;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 50) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): void {
    const rss = process.memoryUsage.rss() / MB; // rss() alone: memoryUsage() also walks the heap spaces
    if (rss > this.maxMB) this.maxMB = rss;
  }

  stop(): { sampledPeakMB: number; hwmMB: number | undefined; startMB: number } {
    clearInterval(this.timer);
    this.sample();
    return { sampledPeakMB: this.maxMB, hwmMB: vmHwmMB(), startMB: this.startMB };
  }
}
