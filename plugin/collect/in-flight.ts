/**
 * Deliveries handed to the sink and not yet acknowledged, at most `limit` of them: the collector
 * reads, parses and maps the next slice of a page while the pipeline acknowledges the previous
 * ones, instead of idling through every round trip. A cursor may only move after drain().
 */
export class InFlightDeliveries {
  private readonly pending: Promise<void>[] = [];
  private failure: { error: unknown } | null = null;

  constructor(private readonly limit: number) {}

  /** Adds a delivery; waits for the oldest when the window is full. Throws the first failure. */
  async add(delivery: Promise<void>): Promise<void> {
    this.pending.push(
      delivery.catch((error: unknown) => {
        this.failure ??= { error };
      }),
    );
    if (this.pending.length >= this.limit) await this.pending.shift();
    if (this.failure) throw this.failure.error;
  }

  /** Waits for every delivery; throws the first failure. */
  async drain(): Promise<void> {
    while (this.pending.length) await this.pending.shift();
    if (this.failure) throw this.failure.error;
  }
}
