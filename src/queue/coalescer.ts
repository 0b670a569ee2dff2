import { Unavailable } from '../errors.js';
import { type ChunkJob, commandIdInChunk, newChunkId } from './chunks.js';
import type { CommandJob } from './jobs.js';

/**
 * Commands accepted one by one (create.php) still travel in chunks: the intake holds each
 * lane's newest chunk open for a moment (`lingerMs`, default 2 ms) and sends it as one BullMQ
 * job, so BullMQ's per-job cost in Redis, the intake and the worker is paid once per chunk
 * rather than once per command. Under load a chunk gathers every command the lane took while
 * the previous one was being sent; a lone command waits at most `lingerMs`.
 *
 * A command gets its place (and so its id, derived from the chunk's) when it is about to be
 * queued — `reserve`, then `fill` with the job, or `cancel`. A chunk is sent once every place
 * handed out is filled or cancelled and it is full or has lingered; a place still unfilled when
 * its chunk has been held `maxHoldMs` is left out, and its command, when it comes, is queued as
 * a job of its own under the same id (commands.php finds it either way). A client learns its
 * command is accepted only once the job holding it is in Redis, so per-ticket order is the
 * order of the answers, as before.
 */
export interface Slot {
  readonly commandId: string;
  /** Puts the job in its place; resolves once the job holding it is in Redis. */
  fill(job: CommandJob): Promise<void>;
  /** Gives the place up (the command was refused before it was queued). */
  cancel(): void;
}

export interface CoalescerOptions {
  /** Commands in one chunk. */
  chunkSize: number;
  /** How long a chunk that is not full waits for more commands, in ms. */
  lingerMs: number;
  /** Longest a chunk waits for places handed out but not yet filled, in ms. */
  maxHoldMs: number;
}

interface Pending {
  job: CommandJob;
  resolve(): void;
  reject(error: unknown): void;
}

interface OpenChunk {
  lane: number;
  chunkId: string;
  handedOut: number;
  unsettled: number;
  filled: Map<number, Pending>;
  lingered: boolean;
  sent: boolean;
  timer?: NodeJS.Timeout;
}

export class Coalescer {
  private readonly open = new Map<number, OpenChunk>();
  private readonly sending = new Set<Promise<unknown>>();

  constructor(
    /** Sends chunks to Redis; resolves with those that could not be added. */
    private readonly sendChunks: (chunks: ChunkJob[]) => Promise<ChunkJob[]>,
    /** Queues one command as a job of its own (a place filled after its chunk left). */
    private readonly sendAlone: (job: CommandJob) => Promise<void>,
    private readonly options: CoalescerOptions,
  ) {}

  reserve(lane: number): Slot {
    let chunk = this.open.get(lane);
    if (!chunk || chunk.sent || chunk.handedOut >= this.options.chunkSize) {
      chunk = { lane, chunkId: newChunkId(), handedOut: 0, unsettled: 0, filled: new Map(), lingered: false, sent: false };
      this.open.set(lane, chunk);
      this.startLinger(chunk);
    }
    const open = chunk;
    const position = open.handedOut++;
    open.unsettled++;
    const commandId = commandIdInChunk(open.chunkId, position);
    let settled = false;
    const settle = () => {
      if (settled) throw new Error(`place ${commandId} settled twice`);
      settled = true;
      if (!open.sent) open.unsettled--;
    };
    return {
      commandId,
      fill: (job) => {
        settle();
        if (open.sent) return this.sendAlone(job);
        return new Promise<void>((resolve, reject) => {
          open.filled.set(position, { job, resolve, reject });
          this.sendIfReady(open);
        });
      },
      cancel: () => {
        settle();
        if (!open.sent) this.sendIfReady(open);
      },
    };
  }

  private startLinger(chunk: OpenChunk): void {
    chunk.timer = setTimeout(() => {
      chunk.lingered = true;
      if (!this.sendIfReady(chunk)) chunk.timer = setTimeout(() => this.send(chunk), this.options.maxHoldMs);
    }, this.options.lingerMs);
  }

  /** Sends the chunk if nothing handed out is still unsettled and it is full or has lingered. */
  private sendIfReady(chunk: OpenChunk): boolean {
    const full = chunk.handedOut >= this.options.chunkSize;
    if (chunk.sent || chunk.unsettled > 0 || !(full || chunk.lingered)) return false;
    this.send(chunk);
    return true;
  }

  private send(chunk: OpenChunk): void {
    if (chunk.sent) return;
    chunk.sent = true;
    clearTimeout(chunk.timer);
    if (this.open.get(chunk.lane) === chunk) this.open.delete(chunk.lane);
    const pending = [...chunk.filled].sort(([a], [b]) => a - b).map(([, p]) => p);
    if (pending.length === 0) return;
    const job: ChunkJob = { v: 1, kind: 'chunk', chunkId: chunk.chunkId, commands: pending.map((p) => p.job) };
    const sent = this.sendChunks([job]).then(
      (failed) => {
        // The chunk's lane refused it (Redis away): each of its clients gets a 503 to retry.
        const error = failed.length > 0 ? new Unavailable() : null;
        for (const p of pending) error ? p.reject(error) : p.resolve();
      },
      (error: unknown) => {
        for (const p of pending) p.reject(error);
      },
    );
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
  }

  /** Sends every open chunk now and resolves once every chunk sent has been answered (shutting down). */
  async flush(): Promise<void> {
    for (const chunk of [...this.open.values()]) this.send(chunk);
    await Promise.allSettled([...this.sending]);
  }
}
