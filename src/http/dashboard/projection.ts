// The dashboard's "Read projection" panel: what `npm run cli -- projection status` tells (the same
// readProjectionStatus: one round trip to MySQL), and how this intake has answered read.php's
// listings since it started (its own replyqueue_read_listings_total, no query).
import type { FastifyInstance } from 'fastify';
import type { Pool } from 'mysql2/promise';
import type { ServiceTables } from '../../db/tables.js';
import type { ServiceMetrics } from '../../metrics/registry.js';
import { readProjectionStatus } from '../../read/projection/status.js';

export interface ProjectionPanelDeps {
  pool: Pool;
  tables: ServiceTables;
  maxLagSeconds: number;
  metrics: ServiceMetrics;
}

export interface ListingCount {
  source: string;
  /** Why ITFlow's tables answered (reply_id, condition, off, lag, stale); null for the projection. */
  reason: string | null;
  count: number;
}

const LISTINGS_METRIC = 'replyqueue_read_listings_total';
const startedAt = new Date(Date.now() - process.uptime() * 1000).toISOString();

export function registerProjectionPanel(api: FastifyInstance, deps: ProjectionPanelDeps): void {
  api.get('/projection', async () => {
    const status = await readProjectionStatus(deps.pool, deps.tables, deps.maxLagSeconds);
    const listings = await listingCounts(deps.metrics);
    return {
      ...status,
      caughtUpAt: isoUtc(status.caughtUpAt),
      repliesSweptAt: isoUtc(status.repliesSweptAt),
      ticketsSweptAt: isoUtc(status.ticketsSweptAt),
      listings: {
        since: startedAt,
        projection: listings.filter((l) => l.source === 'projection').reduce((sum, l) => sum + l.count, 0),
        itflow: listings.filter((l) => l.source === 'itflow').reduce((sum, l) => sum + l.count, 0),
        bySource: listings,
      },
    };
  });
}

/** read.php's listings by what answered them, as this process counted them, most first. */
async function listingCounts(metrics: ServiceMetrics): Promise<ListingCount[]> {
  const metric = metrics.registry.getSingleMetric(LISTINGS_METRIC);
  if (!metric) return [];
  const { values } = await metric.get();
  return values
    .filter((v) => v.value > 0)
    .map((v) => ({ source: String(v.labels.source), reason: v.labels.reason ? String(v.labels.reason) : null, count: v.value }))
    .sort((a, b) => b.count - a.count);
}

/** MySQL's UTC DATETIME text as ISO 8601. */
function isoUtc(value: string | null): string | null {
  return value === null ? null : `${value.replace(' ', 'T')}Z`;
}
