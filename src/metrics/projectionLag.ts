import type { Pool } from 'mysql2/promise';
import type { ServiceTables } from '../db/tables.js';
import { readProjectionView } from '../read/projection/state.js';
import type { ServiceMetrics } from './registry.js';

/**
 * The read projection's lag, read from its state row when Prometheus scrapes: seconds since its
 * follower last read ticket_replies to the end (+Inf while it is being built), and the replies
 * written since past its watermark. While MySQL does not answer they read NaN (not 0: unknown).
 */
export function watchProjectionLag(metrics: ServiceMetrics, pool: Pool, tables: ServiceTables): void {
  const read = () => readProjectionView(pool, tables).catch(() => null);
  metrics.scrapedGauge(
    'replyqueue_read_projection_lag_seconds',
    "Seconds since the read projection last caught up with ticket_replies (+Inf while it is being built); read.php reads ITFlow's tables past PROJECTION_MAX_LAG_SECONDS.",
    [],
    async (gauge) => {
      const view = await read();
      gauge.set(view ? (view.lagSeconds ?? Number.POSITIVE_INFINITY) : Number.NaN);
    },
    // Every process reads the same row: the service's value is any one of them.
    'max',
  );
  metrics.scrapedGauge(
    'replyqueue_read_projection_replies_behind',
    "ticket_replies ids past the read projection's watermark: replies written since its follower's last round (read.php reads those from ticket_replies).",
    [],
    async (gauge) => {
      const view = await read();
      gauge.set(view ? view.idsBehind : Number.NaN);
    },
    'max',
  );
}
