import type { Config } from '../config.js';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { serviceTables } from '../db/tables.js';
import { rebuildProjection } from '../read/projection/follower.js';
import { readProjectionStatus } from '../read/projection/status.js';
import { detect, StartupError } from '../service.js';

const REPORT_EVERY = 100_000;

/**
 * `projection rebuild`: derives the read projection again from ITFlow's tables (see
 * rebuildProjection), telling progress on `progress`. Checks and migrates the database first, as
 * `npm run migrate` does. read.php reads ITFlow's tables while it runs; workers keep applying.
 */
export async function rebuildCommand(config: Config, progress: (line: string) => void): Promise<string> {
  const pool = createPool(config.DATABASE_URL, 2);
  try {
    await detect(config, pool);
    const tables = serviceTables(config);
    await migrate(pool, tables);
    const started = performance.now();
    let reported = 0;
    const result = await rebuildProjection(pool, tables, {
      progress: (watermark) => {
        if (watermark - reported < REPORT_EVERY) return;
        reported = watermark;
        progress(`… replies up to id ${watermark.toLocaleString('en-US')}`);
      },
    });
    if (!result) throw new StartupError('A worker held the read projection for 60 s; try again.');
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const { added, changed, removed } = result.changes;
    return (
      `Rebuilt the read projection from ITFlow's tables: ${result.replies.toLocaleString('en-US')} replies in ${seconds} s ` +
      `(${added} added, ${changed} changed, ${removed} removed; ${result.ticketsMoved} rows moved with their ticket's client). ` +
      'read.php serves from it again.'
    );
  } finally {
    await pool.end();
  }
}

/** `projection status`: how far behind ticket_replies the projection is, as read.php judges it. */
export async function statusCommand(config: Config): Promise<string> {
  const pool = createPool(config.DATABASE_URL, 1);
  try {
    await detect(config, pool);
    const tables = serviceTables(config);
    await migrate(pool, tables);
    const view = await readProjectionStatus(pool, tables, config.PROJECTION_MAX_LAG_SECONDS);
    return [
      `Read projection: ${view.summary}.`,
      `  lag: ${view.lagSeconds === null ? '—' : `${view.lagSeconds.toFixed(3)} s`} (caught up at ${view.caughtUpAt ?? '—'} UTC)`,
      `  watermark: reply id ${view.watermark.toLocaleString('en-US')}; ${view.idsBehind.toLocaleString('en-US')} id(s) past it`,
      `  older replies last swept: ${view.repliesSweptAt ?? '—'} UTC; tickets last swept: ${view.ticketsSweptAt ?? '—'} UTC`,
    ].join('\n');
  } finally {
    await pool.end();
  }
}
