import type { Pool, RowDataPacket } from 'mysql2/promise';
import { idText } from '../apply/ledger.js';
import type { ServiceTables } from '../db/tables.js';
import { Conflict, IdempotencyMismatch } from '../errors.js';
import { keyLayoutOf, type Piped, pipelined } from './cluster.js';
import { redisKeys } from './keys.js';
import type { RedisClient } from './redis.js';
import { runScript } from './scripts.js';

/**
 * `ageMs`: how long ago the holder claimed the key, by Redis's clock (the claim's time to live
 * spent), so intakes whose clocks differ agree on it; Infinity for a holder the ledger confirmed.
 */
export type Claim = { kind: 'new' } | { kind: 'existing'; commandId: string; ageMs: number; fingerprint: string };
export type BatchClaim = Claim | { kind: 'mismatch'; error: IdempotencyMismatch };

const CLAIM_TTL_SECONDS_MAX = 86_400;

/**
 * A claim's age by Redis's clock: every claim is set with the same time to live (`ttlSeconds`),
 * so what it has spent of it is how long ago it was made or taken over — the same answer on every
 * intake, whatever their clocks say (the stamp in the value is the claiming intake's clock). A
 * claim the ledger confirmed (stamp 0) or without a time to live counts as old.
 */
function claimAge(stamp: string, remainingMs: unknown, ttlSeconds: number): number {
  if (stamp === '0' || typeof remainingMs !== 'number' || remainingMs < 0) return Number.POSITIVE_INFINITY;
  return Math.max(0, ttlSeconds * 1000 - remainingMs);
}

/**
 * Idempotency keys, per API key. The first request to use a key claims it in Redis (SET NX),
 * recording its command id and the fingerprint of what it asked; a later request with the same
 * key gets that command back instead of creating another — or 422 if it asks something else.
 *
 * Redis holds claims for up to a day (memory); the ledger holds the key with the finished
 * command for the whole retention and has the last word: a new claim is checked against it,
 * so a Redis that restarted or let a claim expire cannot let a key be used twice.
 */
export class IdempotencyClaims {
  constructor(
    protected readonly redis: RedisClient,
    protected readonly pool: Pool,
    protected readonly tables: ServiceTables,
    protected readonly prefix: string,
    private readonly retentionSeconds: number,
  ) {}

  /** What the client calls the key, in messages. */
  protected readonly keyName: string = 'idempotency key';

  protected redisKey(apiKeyId: number, idempotencyKey: string): string {
    return redisKeys(this.prefix, keyLayoutOf(this.redis)).idempotency(apiKeyId, idempotencyKey);
  }

  /** Claims the key for `commandId`, or returns the command that already holds it. */
  async claim(apiKeyId: number, idempotencyKey: string, fingerprint: string, commandId: string): Promise<Claim> {
    const key = this.redisKey(apiKeyId, idempotencyKey);
    const ttl = Math.min(this.retentionSeconds, CLAIM_TTL_SECONDS_MAX);
    const claimed = await this.redis.set(key, `${commandId} ${fingerprint} ${Date.now()}`, 'EX', ttl, 'NX');
    if (claimed === 'OK') {
      // A claim this request cannot check against the ledger (MySQL away) is given back at once,
      // so the client's retry is not refused as "still being accepted".
      const finished = await this.inLedger(apiKeyId, idempotencyKey).catch(async (error: unknown) => {
        await this.release(apiKeyId, idempotencyKey, commandId).catch(() => {});
        throw error;
      });
      if (!finished) return { kind: 'new' };
      await this.redis.set(key, `${finished.commandId} ${finished.fingerprint} 0`, 'EX', ttl);
      return this.compare(idempotencyKey, { ...finished, ageMs: Number.POSITIVE_INFINITY }, fingerprint);
    }
    const [read, ttlLeft] = (await this.redis.pipeline().get(key).pttl(key).exec()) ?? [];
    const failed = read?.[0] ?? ttlLeft?.[0];
    if (failed) throw failed;
    const [value, remainingMs] = [read?.[1], ttlLeft?.[1]];
    const [holder = '', held = '', at = '0'] = String(value ?? '').split(' ');
    if (holder === '') return this.claim(apiKeyId, idempotencyKey, fingerprint, commandId); // expired in between
    return this.compare(
      idempotencyKey,
      { commandId: holder, fingerprint: held, ageMs: claimAge(at, remainingMs, ttl) },
      fingerprint,
    );
  }

  /** Hands a claim whose command was lost (never queued, or dropped with a Redis restart) to a new command. */
  async takeOver(
    apiKeyId: number,
    idempotencyKey: string,
    fingerprint: string,
    lostCommandId: string,
    commandId: string,
  ): Promise<boolean> {
    const key = this.redisKey(apiKeyId, idempotencyKey);
    const ttl = Math.min(this.retentionSeconds, CLAIM_TTL_SECONDS_MAX);
    const swapped = await runScript(
      this.redis,
      'idempotencyTakeOver',
      [key],
      [lostCommandId, `${commandId} ${fingerprint} ${Date.now()}`, ttl],
    );
    return swapped === 1;
  }

  /**
   * claim() for a bulk request's items, in three round trips whatever their number: the SET NXs
   * in one pipeline, the ledger check of the fresh claims in one query, the GETs of the keys
   * held by others in one pipeline (on a cluster, the pipelines one per node, sent at once).
   */
  async claimMany(
    apiKeyId: number,
    entries: Array<{ idempotencyKey: string; fingerprint: string; commandId: string }>,
  ): Promise<BatchClaim[]> {
    if (entries.length === 0) return [];
    const ttl = Math.min(this.retentionSeconds, CLAIM_TTL_SECONDS_MAX);
    const keys = entries.map((e) => this.redisKey(apiKeyId, e.idempotencyKey));
    const set = await pipelined(
      this.redis,
      entries.map((e, i): Piped => {
        const key = keys[i] as string;
        return { key, queue: (pipeline) => pipeline.set(key, `${e.commandId} ${e.fingerprint} ${Date.now()}`, 'EX', ttl, 'NX') };
      }),
    );
    const fresh = entries.filter((_, i) => set[i]?.[1] === 'OK');
    // A SET that failed (Redis lost mid-request, a failover) says nothing about its key: the
    // request fails (503) rather than take the key for someone else's.
    await this.failOnError(apiKeyId, fresh, set);
    const finished = await this.inLedgerMany(
      apiKeyId,
      fresh.map((e) => e.idempotencyKey),
    ).catch(async (error: unknown) => {
      await Promise.all(fresh.map((e) => this.release(apiKeyId, e.idempotencyKey, e.commandId).catch(() => {})));
      throw error;
    });
    // A fresh claim the ledger does not know is new: nothing more to ask. A fresh claim the
    // ledger knows takes the ledger's command, and Redis is told; a key someone else already
    // held is read with its time to live (the reads go first in the pipeline, two answers each).
    const reads = entries.flatMap((_, i) => (set[i]?.[1] === 'OK' ? [] : [i]));
    const commands: Piped[] = reads.flatMap((i): Piped[] => {
      const key = keys[i] as string;
      return [
        { key, queue: (pipeline) => pipeline.get(key) },
        { key, queue: (pipeline) => pipeline.pttl(key) },
      ];
    });
    entries.forEach((e, i) => {
      const holder = finished.get(e.idempotencyKey);
      const key = keys[i] as string;
      if (holder)
        commands.push({ key, queue: (pipeline) => pipeline.set(key, `${holder.commandId} ${holder.fingerprint} 0`, 'EX', ttl) });
    });
    const answers = await pipelined(this.redis, commands);
    await this.failOnError(apiKeyId, fresh, answers);
    // A key held a moment ago and gone now (it expired, or a failover's new primary never had it).
    if (reads.some((_, n) => answers[2 * n]?.[1] === null)) {
      await this.releaseAll(apiKeyId, fresh);
      throw new Conflict(`A request with this ${this.keyName} is still being accepted. Retry in a moment.`, 1);
    }
    const heldBy = new Map(
      reads.map((i, n) => [i, { value: String(answers[2 * n]?.[1] ?? ''), remainingMs: answers[2 * n + 1]?.[1] }]),
    );
    return entries.map((e, i): BatchClaim => {
      const holder = finished.get(e.idempotencyKey);
      if (!holder && !heldBy.has(i)) return { kind: 'new' };
      const read = heldBy.get(i);
      const [commandId = '', fingerprint = '', at = '0'] = holder
        ? [holder.commandId, holder.fingerprint, '0']
        : (read?.value ?? '').split(' ');
      if (commandId === e.commandId) return { kind: 'new' };
      try {
        const ageMs = claimAge(at, read?.remainingMs, ttl);
        return this.compare(e.idempotencyKey, { commandId, fingerprint, ageMs }, e.fingerprint);
      } catch (error) {
        return { kind: 'mismatch', error: error as IdempotencyMismatch };
      }
    });
  }

  /** Throws the first error among a pipeline's answers, after giving back the keys this request claimed. */
  private async failOnError(
    apiKeyId: number,
    claimed: Array<{ idempotencyKey: string; commandId: string }>,
    answers: Array<[Error | null, unknown]>,
  ): Promise<void> {
    const failed = answers.find(([error]) => error !== null);
    if (!failed) return;
    await this.releaseAll(apiKeyId, claimed);
    throw failed[0];
  }

  private async releaseAll(apiKeyId: number, claimed: Array<{ idempotencyKey: string; commandId: string }>): Promise<void> {
    await Promise.all(claimed.map((e) => this.release(apiKeyId, e.idempotencyKey, e.commandId).catch(() => {})));
  }

  /** Gives the key back when the command could not be queued, so a retry may use it. */
  async release(apiKeyId: number, idempotencyKey: string, commandId: string): Promise<void> {
    const key = this.redisKey(apiKeyId, idempotencyKey);
    await runScript(this.redis, 'deleteIfHeld', [key], [commandId]);
  }

  protected compare(
    idempotencyKey: string,
    holder: { commandId: string; fingerprint: string; ageMs: number },
    fingerprint: string,
  ): Claim {
    if (holder.fingerprint !== fingerprint) {
      throw new IdempotencyMismatch(idempotencyKey, holder.commandId);
    }
    return { kind: 'existing', commandId: holder.commandId, ageMs: holder.ageMs, fingerprint: holder.fingerprint };
  }

  private async inLedger(apiKeyId: number, idempotencyKey: string): Promise<{ commandId: string; fingerprint: string } | null> {
    return (await this.inLedgerMany(apiKeyId, [idempotencyKey])).get(idempotencyKey) ?? null;
  }

  /** The durable holders of these keys (the ledger's, for idempotency keys). */
  protected async inLedgerMany(
    apiKeyId: number,
    idempotencyKeys: string[],
  ): Promise<Map<string, { commandId: string; fingerprint: string }>> {
    if (idempotencyKeys.length === 0) return new Map();
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT idempotency_key, command_id, fingerprint FROM ${this.tables.commands} WHERE api_key_id = ? AND idempotency_key IN (?)`,
      [apiKeyId, idempotencyKeys],
    );
    return new Map(
      rows.map((row) => [
        String(row.idempotency_key),
        { commandId: idText(row.command_id), fingerprint: (row.fingerprint as Buffer).toString('hex') },
      ]),
    );
  }
}
