import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH_KEY } from './setup.js';

/**
 * The bulk scenario: `total` replies posted to `endpoint` (the service's bulk.php, or the bare
 * pipeline's /bulk, which answers the same `data[].status`), `perRequest` items a request,
 * `inFlight` requests at a time, spread over `tickets` tickets — as fast as they are taken, or
 * paced at `itemsPerSecond`. Returns how long accepting took.
 */
export async function sendBulkLoad(
  endpoint: string,
  {
    total,
    perRequest,
    inFlight,
    tickets,
    itemsPerSecond,
  }: { total: number; perRequest: number; inFlight: number; tickets: number; itemsPerSecond?: number },
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
