import type { OpenedPage } from '../defender/client.js';

/**
 * One page asked for ahead of time, by the $skip it was asked at: the API's time to first byte
 * for page n+1 then overlaps with the processing of page n. A page not taken (the current one
 * was the last, or linked on, or the poll failed) is closed unread.
 */
export class PageAhead {
  private pending: { skip: number; page: Promise<OpenedPage> } | null = null;

  get asked(): boolean {
    return this.pending !== null;
  }

  ask(skip: number, open: () => Promise<OpenedPage>): void {
    this.drop();
    const page = open();
    page.catch(() => undefined); // a failure surfaces when (if) the page is taken and read
    this.pending = { skip, page };
  }

  /** The page asked for at `skip`, if that is the one waiting; anything else waiting is dropped. */
  take(skip: number): Promise<OpenedPage> | null {
    const p = this.pending;
    if (p?.skip === skip) {
      this.pending = null;
      return p.page;
    }
    this.drop();
    return null;
  }

  drop(): void {
    void this.pending?.page.then(
      (p) => p.discard(),
      () => undefined,
    );
    this.pending = null;
  }
}
