// The children's side of `npm start`'s supervision (src/supervisor.ts): a process started by the
// supervisor says when it is ready, hands over its metrics when asked, stops when the supervisor
// goes away, and leaves Ctrl-C to the supervisor (a terminal sends SIGINT to every process of the
// group; the supervisor then sends each child one SIGTERM).
import type { ServiceMetrics } from './metrics/registry.js';

/** Set in a supervised child's environment: the name it runs under (`intake`, `worker-1`, …). */
export const SUPERVISED_ENV = 'REPLYQUEUE_SUPERVISED_AS';

export type FromChild =
  | { type: 'ready'; url: string | null }
  /** The intake's /metrics was scraped: the whole service's metrics, please. */
  | { type: 'metrics'; id: number }
  /** This process's share of a scrape. */
  | { type: 'metrics-part'; id: number; metrics: object[] };

export type ToChild = { type: 'metrics'; id: number; contentType: string; text: string } | { type: 'metrics-part'; id: number };

/** The name this process runs under when a supervisor started it, else undefined. */
export function supervisedAs(): string | undefined {
  return process.send !== undefined ? process.env[SUPERVISED_ENV] : undefined;
}

/**
 * Joins the supervisor: tells it the process is ready, answers its metric requests, makes this
 * process's /metrics (the intake's) answer for every process, and stops when the supervisor is
 * gone (its IPC channel closes when it exits or is killed).
 */
export function joinSupervisor(url: string | null, metrics: ServiceMetrics, stop: (reason: string) => void): void {
  const send = (message: FromChild) => {
    if (process.connected) process.send?.(message);
  };
  const pending = new Map<number, (answer: { contentType: string; text: string } | null) => void>();
  let nextId = 0;
  metrics.gatherFrom(
    () =>
      new Promise((resolve) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          resolve(null);
        }, 3_000);
        pending.set(id, (answer) => {
          clearTimeout(timer);
          resolve(answer);
        });
        send({ type: 'metrics', id });
      }),
  );
  process.on('message', (message: ToChild) => {
    if (message?.type === 'metrics-part') {
      void metrics.registry.getMetricsAsJSON().then((json) => send({ type: 'metrics-part', id: message.id, metrics: json }));
    } else if (message?.type === 'metrics') {
      const answer = pending.get(message.id);
      pending.delete(message.id);
      answer?.({ contentType: message.contentType, text: message.text });
    }
  });
  process.on('disconnect', () => stop('supervisor gone'));
  send({ type: 'ready', url });
}
