import type { Pool } from 'mysql2/promise';
import type { ServiceMetrics } from './registry.js';

/** The fields of mysql2's pool that say how busy it is (not in its typings). */
interface PoolInternals {
  _allConnections: { length: number };
  _freeConnections: { length: number };
  _connectionQueue: { length: number };
}

/**
 * MySQL connections per pool, read at scrape time from the pool itself (no query): in use,
 * open, and requests waiting for a connection. `lookup` is the intake's and housekeeping's
 * pool, `apply` the worker's.
 */
export function watchPools(metrics: ServiceMetrics, pools: Record<string, Pool>): void {
  const internals = () =>
    Object.entries(pools).map(([name, pool]) => [name, (pool as unknown as { pool: PoolInternals }).pool] as const);
  metrics.scrapedGauge(
    'replyqueue_mysql_pool_connections_in_use',
    'MySQL connections checked out of the pool.',
    ['pool'],
    (gauge) => {
      for (const [name, p] of internals()) gauge.set({ pool: name }, p._allConnections.length - p._freeConnections.length);
    },
  );
  metrics.scrapedGauge('replyqueue_mysql_pool_connections_open', 'MySQL connections the pool holds open.', ['pool'], (gauge) => {
    for (const [name, p] of internals()) gauge.set({ pool: name }, p._allConnections.length);
  });
  metrics.scrapedGauge(
    'replyqueue_mysql_pool_waiting_requests',
    'Requests waiting for a free MySQL connection.',
    ['pool'],
    (gauge) => {
      for (const [name, p] of internals()) gauge.set({ pool: name }, p._connectionQueue.length);
    },
  );
}
