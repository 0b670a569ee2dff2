// Whether read.php serves its listings from the read projection now, and why not: what
// `projection status` prints and the dashboard's "Read projection" panel shows, judged as
// readListing (serve.ts) judges each listing.
import type { ServiceTables } from '../../db/tables.js';
import type { Sql } from './rows.js';
import { MAX_TAIL_IDS } from './serve.js';
import { type ProjectionView, readProjectionView } from './state.js';

/** Why read.php reads ITFlow's tables: switched off, being built, lag past the limit, too many replies past the watermark. */
export type NotServingReason = 'off' | 'building' | 'lag' | 'behind';

export interface ProjectionStatus extends ProjectionView {
  /** PROJECTION_MAX_LAG_SECONDS. */
  maxLagSeconds: number;
  /** Whether read.php's listings (those it can answer) are served from the projection. */
  serving: boolean;
  /** Why not; null while serving. */
  reason: NotServingReason | null;
  /** The judgement in a sentence. */
  summary: string;
}

export async function readProjectionStatus(db: Sql, tables: ServiceTables, maxLagSeconds: number): Promise<ProjectionStatus> {
  return judge(await readProjectionView(db, tables), maxLagSeconds);
}

export function judge(view: ProjectionView, maxLagSeconds: number): ProjectionStatus {
  const [reason, summary]: [NotServingReason | null, string] =
    maxLagSeconds === 0
      ? ['off', 'read.php reads ITFlow’s tables (PROJECTION_MAX_LAG_SECONDS=0)']
      : view.lagSeconds === null
        ? ['building', 'being built: read.php reads ITFlow’s tables until a worker’s follower has read ticket_replies to the end']
        : view.lagSeconds > maxLagSeconds
          ? ['lag', `read.php reads ITFlow’s tables: lag over PROJECTION_MAX_LAG_SECONDS=${maxLagSeconds} (is a worker running?)`]
          : view.idsBehind > MAX_TAIL_IDS
            ? [
                'behind',
                `read.php reads ITFlow’s tables: more than ${MAX_TAIL_IDS.toLocaleString('en-US')} replies past the watermark (is a worker running?)`,
              ]
            : [null, `read.php serves from it (lag within PROJECTION_MAX_LAG_SECONDS=${maxLagSeconds})`];
  return { ...view, maxLagSeconds, serving: reason === null, reason, summary };
}
