import { describe, expect, it } from 'vitest';
import type { ChunkJob } from '../../src/queue/chunks.js';
import { chunkIdOf } from '../../src/queue/chunks.js';
import { Coalescer } from '../../src/queue/coalescer.js';
import type { CommandJob } from '../../src/queue/jobs.js';

/**
 * The intake's chunking of single commands, on its own (the HTTP path through it is covered by
 * the create, order and fault tests): what is sent, when, and what each command's client hears.
 */
const job = (commandId: string, ticketId = 1): CommandJob => ({
  v: 1,
  commandId,
  acceptedAt: Date.now(),
  apiKeyId: 1,
  idempotencyKey: null,
  fingerprint: '0'.repeat(64),
  command: { ticketId, reply: { body: commandId, type: 'Internal', timeWorked: '00:00:00' }, status: 0 },
  origin: { ip: '127.0.0.1', userAgent: 'test' },
  notify: false,
});

function recorder(options = { chunkSize: 4, lingerMs: 5, maxHoldMs: 30 }, refuse = false) {
  const chunks: ChunkJob[] = [];
  const alone: CommandJob[] = [];
  const coalescer = new Coalescer(
    async (sent) => {
      chunks.push(...sent);
      return refuse ? sent : [];
    },
    async (single) => {
      alone.push(single);
    },
    options,
  );
  return { coalescer, chunks, alone };
}

const ids = (chunk: ChunkJob | undefined) => chunk?.commands.map((c) => c.commandId);

describe('coalescing single commands into chunks', () => {
  it('sends the commands a lane takes within the linger as one chunk, in order, ids derived from it', async () => {
    const { coalescer, chunks } = recorder();
    const slots = [coalescer.reserve(3), coalescer.reserve(3), coalescer.reserve(3)];
    const filled = Promise.all(slots.map((slot) => slot.fill(job(slot.commandId))));
    expect(chunks).toHaveLength(0); // still lingering
    await filled;
    expect(chunks).toHaveLength(1);
    expect(ids(chunks[0])).toEqual(slots.map((s) => s.commandId));
    for (const slot of slots) expect(chunkIdOf(slot.commandId)).toBe(chunks[0]?.chunkId);
  });

  it('keeps lanes apart and sends a full chunk without waiting for the linger', async () => {
    const { coalescer, chunks } = recorder({ chunkSize: 2, lingerMs: 10_000, maxHoldMs: 10_000 });
    const a = [coalescer.reserve(1), coalescer.reserve(1)];
    const other = coalescer.reserve(2);
    await Promise.all(a.map((slot) => slot.fill(job(slot.commandId))));
    expect(chunks.map(ids)).toEqual([a.map((s) => s.commandId)]);
    other.cancel();
    await coalescer.flush();
    expect(chunks).toHaveLength(1); // a chunk whose only place was given back sends nothing
  });

  it('waits for places handed out; a cancelled place leaves a gap, a place filled after its chunk left goes alone', async () => {
    const { coalescer, chunks, alone } = recorder({ chunkSize: 10, lingerMs: 2, maxHoldMs: 20 });
    const [first, cancelled, slow, last] = [
      coalescer.reserve(0),
      coalescer.reserve(0),
      coalescer.reserve(0),
      coalescer.reserve(0),
    ];
    const answers = [first, last].map((slot) => slot?.fill(job(slot.commandId)));
    cancelled?.cancel();
    await new Promise((resolve) => setTimeout(resolve, 8));
    expect(chunks).toHaveLength(0); // linger over, but `slow` is still being checked
    await Promise.all(answers);
    expect(ids(chunks[0])).toEqual([first?.commandId, last?.commandId]); // sent after maxHoldMs
    await slow?.fill(job(slow.commandId));
    expect(alone.map((j) => j.commandId)).toEqual([slow?.commandId]);
  });

  it('answers every command of a chunk Redis refused with a 503 to retry', async () => {
    const { coalescer } = recorder(undefined, true);
    const slots = [coalescer.reserve(5), coalescer.reserve(5)];
    const answers = await Promise.allSettled(slots.map((slot) => slot.fill(job(slot.commandId))));
    for (const answer of answers) {
      expect(answer.status).toBe('rejected');
      expect((answer as PromiseRejectedResult).reason).toMatchObject({ status: 503, headers: { 'Retry-After': '5' } });
    }
  });

  it('refuses to settle one place twice', () => {
    const { coalescer } = recorder();
    const slot = coalescer.reserve(0);
    slot.cancel();
    expect(() => slot.cancel()).toThrow(/settled twice/);
  });
});
