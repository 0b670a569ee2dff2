import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH_KEY } from './setup.js';

/**
 * The bulk scenario: `total` replies posted to `endpoint` (the service's bulk.php, or the bare
 * pipeline's /bulk, which answers the same `data[].status`), `perRequest` items a request,
 * `inFlight` requests at a time, spread over `tickets` tickets — as fast as they are taken, or
 * paced at `itemsPerSecond`; `historical` items carry a created_at a year back, a minute apart,
 * as a bulk import of old comments does. Returns how long accepting took.
 */
export async function sendBulkLoad(
  endpoint: string,
  {
    total,
    perRequest,
    inFlight,
    tickets,
    itemsPerSecond,
    historical = false,
  }: { total: number; perRequest: number; inFlight: number; tickets: number; itemsPerSecond?: number; historical?: boolean },
): Promise<{ accepted: number; seconds: number; failed: number }> {
  let next = 0;
  let accepted = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) {
        const first = next;
        next += perRequest;
        if (itemsPerSecond !== undefined) {
          const due = started + (first / itemsPerSecond) * 1000;
          if (due > performance.now()) await sleep(due - performance.now());
        }
        const items = Array.from({ length: Math.min(perRequest, total - first) }, (_, i) => ({
          ticket_id: ((first + i) % tickets) + 1,
          ticket_reply: `Bulk reply ${first + i}: checked the logs, all green again.`,
          minutes: 1,
          ...(historical ? { created_at: historicalTime(first + i) } : {}),
        }));
        const response = await fetch(endpoint, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-API-Key': BENCH_KEY },
          body: JSON.stringify(items),
        });
        const body = (await response.json()) as { data?: Array<{ status?: string }> };
        const queued = body.data?.filter((r) => r.status === 'queued').length ?? 0;
        accepted += queued;
        failed += items.length - queued;
      }
    }),
  );
  return { accepted, seconds: (performance.now() - started) / 1000, failed };
}

const YEAR_AGO = Date.UTC(2025, 10, 1);

/** Item n's created_at: a minute after item n − 1's, from a year back ('YYYY-MM-DD HH:MM:SS'). */
function historicalTime(n: number): string {
  return new Date(YEAR_AGO + n * 60_000).toISOString().slice(0, 19).replace('T', ' ');
}
