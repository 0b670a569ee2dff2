// Bulk items travel in chunks: one BullMQ job carries up to CHUNK_MAX commands of one lane, in
// acceptance order, so BullMQ's per-job cost is paid once per chunk, not once per command.
//
// Each command keeps its own id, derived from its chunk's: the chunk id is a command id (UUIDv7)
// whose last three hex digits are 000, and its commands are numbered 001, 002, … in those
// digits. So commands.php finds a command still in a chunk from its id alone, with no index.
import { z } from 'zod';
import { newCommandId } from '../commands/commandId.js';
import { type CommandJob, commandJobSchema } from './jobs.js';

export const CHUNK_MAX = 4095;

export const chunkJobSchema = z.object({
  v: z.literal(1),
  kind: z.literal('chunk'),
  chunkId: z.uuid(),
  commands: z.array(commandJobSchema).min(1).max(CHUNK_MAX),
});
export type ChunkJob = z.infer<typeof chunkJobSchema>;

export function newChunkId(): string {
  return `${newCommandId().slice(0, 33)}000`;
}

export function commandIdInChunk(chunkId: string, position: number): string {
  if (position < 0 || position >= CHUNK_MAX) throw new RangeError(`chunk position ${position}`);
  return `${chunkId.slice(0, 33)}${(position + 1).toString(16).padStart(3, '0')}`;
}

/** The chunk a command id would belong to (itself for a chunk id). */
export function chunkIdOf(commandId: string): string {
  return `${commandId.slice(0, 33)}000`;
}

export function isChunk(data: unknown): data is { kind: 'chunk' } {
  return typeof data === 'object' && data !== null && (data as { kind?: unknown }).kind === 'chunk';
}

/**
 * The commands a job carries: a chunk's, in acceptance order, or the job's own. A payload that
 * cannot be read counts as one command, known by the job's id.
 */
export function commandsIn(job: { id?: string; data: unknown }): Array<Partial<CommandJob>> {
  if (isChunk(job.data)) return (job.data as ChunkJob).commands ?? [];
  const data = job.data as Partial<CommandJob> | undefined;
  return [{ ...data, commandId: data?.commandId ?? String(job.id) }];
}
