// The dispatcher's counter, in the process's own registry (src/metrics/registry.ts).
import { Counter, type Registry } from 'prom-client';

const OUTCOMES = ['delivered', 'retrying', 'failed'] as const;

/** Counts each delivery attempt by outcome; returns what the dispatcher calls (DispatcherOptions.onAttempt). */
export function countWebhookAttempts(registry: Registry): (outcome: (typeof OUTCOMES)[number]) => void {
  const attempts = new Counter({
    name: 'replyqueue_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome: delivered (a 2xx), retrying (failed, tried again later), failed (given up; replayable).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of OUTCOMES) attempts.inc({ outcome }, 0);
  return (outcome) => attempts.inc({ outcome });
}
