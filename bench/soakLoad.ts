/**
 * The soak's load: single create.php commands at a fixed rate, open loop. Each request starts
 * on its schedule whether or not earlier ones have been answered (a closed loop would slow
 * down with the service and hide exactly the backlog a soak is looking for); only when
 * `maxInFlight` requests are already outstanding is a send skipped, and counted.
 */
export interface LoadOptions {
  url: string;
  key: string;
  rate: number;
  tickets: number;
  maxInFlight: number;
  timeoutMs: number;
}

/** How the requests were answered, cumulative. `failed5xx` excludes 503 (refused, to be retried). */
export interface LoadCounts {
  scheduled: number;
  sent: number;
  skipped: number;
  accepted: number;
  other2xx: number;
  client4xx: number;
  refused503: number;
  failed5xx: number;
  networkErrors: number;
}

/**
 * Command ids of the 202s, 16 bytes each, with the sequence number of the request that got it;
 * a 30-minute run at 1,000/s holds 1.8 million of them, 29 MB instead of ~150 MB of strings.
 */
export class AcceptedIds {
  private ids = Buffer.alloc(16 * 65_536);
  private seqs = new Uint32Array(65_536);
  length = 0;

  push(seq: number, commandId: string): void {
    if (this.length === this.seqs.length) {
      const ids = Buffer.alloc(this.ids.length * 2);
      this.ids.copy(ids);
      this.ids = ids;
      const seqs = new Uint32Array(this.seqs.length * 2);
      seqs.set(this.seqs);
      this.seqs = seqs;
    }
    Buffer.from(commandId.replace(/-/g, ''), 'hex').copy(this.ids, this.length * 16);
    this.seqs[this.length] = seq;
    this.length++;
  }

  id(index: number): Buffer {
    return this.ids.subarray(index * 16, index * 16 + 16);
  }

  seq(index: number): number {
    return this.seqs[index] as number;
  }
}

export class OpenLoopLoad {
  readonly counts: LoadCounts = {
    scheduled: 0,
    sent: 0,
    skipped: 0,
    accepted: 0,
    other2xx: 0,
    client4xx: 0,
    refused503: 0,
    failed5xx: 0,
    networkErrors: 0,
  };
  readonly accepted = new AcceptedIds();
  /** Network error messages and how often each came, for the report. */
  readonly errors = new Map<string, number>();
  inFlight = 0;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private outstanding = new Set<Promise<void>>();
  /** Accept latencies (ms, from each request's scheduled start) since the last `takeLatencies`. */
  private latencies: number[] = [];

  constructor(
    private readonly options: LoadOptions,
    private readonly onAccepted: (commandId: string) => void,
  ) {}

  start(): void {
    this.startedAt = performance.now();
    // Node's timers fire at best every millisecond; each tick sends every request now due.
    this.timer = setInterval(() => this.sendDue(), 1);
  }

  /** Stops scheduling and waits for the requests still outstanding. */
  async stop(): Promise<number> {
    clearInterval(this.timer);
    const seconds = (performance.now() - this.startedAt) / 1000;
    await Promise.all(this.outstanding);
    return seconds;
  }

  takeLatencies(): number[] {
    const taken = this.latencies;
    this.latencies = [];
    return taken;
  }

  private sendDue(): void {
    const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.options.rate);
    while (this.counts.scheduled < due) {
      const seq = this.counts.scheduled++;
      if (this.inFlight >= this.options.maxInFlight) {
        this.counts.skipped++;
        continue;
      }
      const request = this.send(seq, this.startedAt + (seq / this.options.rate) * 1000);
      this.outstanding.add(request);
      void request.finally(() => this.outstanding.delete(request));
    }
  }

  private async send(seq: number, scheduledAt: number): Promise<void> {
    const { url, key, tickets, timeoutMs } = this.options;
    this.counts.sent++;
    this.inFlight++;
    try {
      // Node's fetch (undici) keeps connections alive and reuses them by default.
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': key },
        body: JSON.stringify({ ticket_id: (seq % tickets) + 1, ticket_reply: `soak ${seq}`, minutes: 1 }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await response.text();
      this.latencies.push(performance.now() - scheduledAt);
      this.count(response.status, seq, text);
    } catch (error) {
      this.counts.networkErrors++;
      this.note((error as Error & { cause?: Error }).cause?.message ?? (error as Error).message);
    } finally {
      this.inFlight--;
    }
  }

  private note(message: string): void {
    this.errors.set(message, (this.errors.get(message) ?? 0) + 1);
  }

  private count(status: number, seq: number, body: string): void {
    const commandId =
      status === 202 ? (JSON.parse(body) as { data?: Array<{ command_id?: string }> }).data?.[0]?.command_id : undefined;
    if (commandId) {
      this.counts.accepted++;
      this.accepted.push(seq, commandId);
      this.onAccepted(commandId);
    } else if (status >= 200 && status < 300) this.counts.other2xx++;
    else if (status === 503) this.counts.refused503++;
    else if (status >= 500) this.counts.failed5xx++;
    else this.counts.client4xx++;
  }
}
