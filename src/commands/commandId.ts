import { randomFillSync } from 'node:crypto';

/** Random bytes drawn from the system 4 KiB at a time: 256 ids per draw instead of one. */
const pool = Buffer.alloc(4096);
let used = pool.length;

/**
 * Command ids are UUIDv7 (RFC 9562): the first 48 bits are the creation time in ms, the rest
 * random. Being time-ordered, new ledger rows go to the end of its primary key instead of
 * landing all over the B-tree as random UUIDs do — a large part of the ledger's write cost.
 */
export function newCommandId(now = Date.now()): string {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const bytes = Buffer.from(pool.subarray(used, used + 16));
  used += 16;
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x70; // version 7
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80; // RFC 9562 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
