import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ItemResult } from '../http/bulkAccept.js';
import { RejectedLines, rejectedPath } from './rejected.js';
import { type Format, fingerprintFile, readItems, UNREADABLE } from './source.js';
import { AnsweredLines, emptyTotals, loadState, newTally, saveState, type Tally, type Totals } from './state.js';

/**
 * `import FILE`: streams an NDJSON or CSV file into bulk.php, `batchSize` lines per request and
 * `concurrency` requests at a time; keeps every line's idempotency key derived from the file's
 * digest and its line number, so an import interrupted (Ctrl-C, crash) and started again sends
 * nothing twice; writes refused lines with their reasons beside the file; waits until every
 * queued line is applied (unless told not to), reading outcomes through commands.php.
 */
export interface ImportOptions {
  file: string;
  format: Format;
  url: string;
  apiKey: string;
  batchSize: number;
  concurrency: number;
  wait: boolean;
  dryRun: boolean;
  /** Most lines queued but not yet known to be applied; reading pauses above it (memory stays flat). */
  maxPending: number;
  report: (event: Progress) => void;
  /** Set when the operator interrupts: stop reading, finish what is in flight, save the state. */
  stopped: () => boolean;
  /** The column (CSV) or field (NDJSON) that holds each line's external_id, when it is not `external_id`. */
  externalIdFrom?: string;
}

/**
 * A line as it is sent: keyed by the file and its line (so a resumed import sends nothing twice),
 * quiet (`notify: false`: an import pings no one, unless a line says otherwise), and with its
 * external id taken from the column named for it (a number becomes its decimal text).
 */
export function asImported(
  item: Record<string, unknown>,
  idempotencyKey: string,
  externalIdFrom?: string,
): Record<string, unknown> {
  const sent: Record<string, unknown> = { idempotency_key: idempotencyKey, notify: false, ...item };
  if (externalIdFrom !== undefined && externalIdFrom !== 'external_id') {
    const value = item[externalIdFrom];
    delete sent[externalIdFrom];
    if (value !== undefined && value !== null && value !== '')
      sent.external_id = typeof value === 'number' ? String(value) : value;
  }
  return sent;
}

export interface Progress {
  phase: 'sending' | 'waiting' | 'done';
  totalLines: number;
  linesDone: number;
  totals: Totals;
  resumedFrom: number;
}

/** The whole import's totals (every run of it), with this run's apart. */
export interface ImportSummary extends Totals {
  file: string;
  resumedFrom: number;
  /** What this run added to the totals; the rest was counted by the runs it resumed. */
  thisRun: Totals;
  /** Lines queued whose application was not seen yet (an interrupted run, or --no-wait). */
  notYetApplied: number;
  /** This run's. */
  elapsedSeconds: number;
  /** Lines this run read (and had answered) per second of this run. */
  rowsPerSecond: number;
  interrupted: boolean;
  rejectedFile: string | null;
  dryRun: boolean;
}

interface Line {
  line: number;
  item: unknown;
}

interface Pending {
  line: number;
  tally: Tally;
}

export async function runImport(o: ImportOptions): Promise<ImportSummary> {
  const started = Date.now();
  const { sha256, lines: totalLines } = await fingerprintFile(o.file);
  // A CSV's header row is no line to import.
  const header = o.format === 'csv' ? Math.min(1, totalLines) : 0;
  // Names the import in each bulk request, for the service's dashboard (src/http/dashboard/importTraffic.ts).
  const importHeaders = {
    'X-Import-Id': sha256.slice(0, 16),
    'X-Import-File': encodeURIComponent(basename(o.file)),
    'X-Import-Lines': String(totalLines - header),
  };
  const state = o.dryRun ? null : loadState(o.file, sha256);
  const resumedFrom = state?.answeredThrough ?? 0;
  // A copy: AnsweredLines adds to the totals it is given, and this run's share is told apart at the end.
  const before = { ...(state?.totals ?? emptyTotals()) };
  const answered = new AnsweredLines(resumedFrom, { ...before });
  // Commands of saved lines still to be seen applied: their tallies are already in the totals.
  const foldedTally: Tally = { ...emptyTotals(), folded: true };
  const pending = new Map<string, Pending>((state?.pending ?? []).map(([id, line]) => [id, { line, tally: foldedTally }]));
  const rejected = await RejectedLines.open(
    rejectedPath(o.file, o.dryRun),
    state ? { through: resumedFrom, pendingLines: new Set(state.pending.map(([, line]) => line)) } : null,
  );
  // A CSV's header is a line of the file, not a line to import: progress counts the others.
  const progress = (phase: Progress['phase']) =>
    o.report({
      phase,
      totalLines: totalLines - header,
      linesDone: Math.max(0, answered.answeredThrough - header),
      totals: answered.live(),
      resumedFrom: Math.max(0, resumedFrom - header),
    });

  const count = (tally: Tally, key: keyof Totals) => {
    if (tally.folded) answered.totals[key]++;
    else tally[key]++;
  };
  const reject = (tally: Tally, line: number, item: unknown, status: number, message: string) => {
    count(tally, 'rejected');
    rejected.write({ line, http_status: status, message, item });
  };
  const save = () => {
    if (o.dryRun) return;
    const through = answered.answeredThrough;
    // Nothing answered yet (the first request refused outright, say): no state to resume from.
    if (state === null && through === 0) return;
    const saved = [...pending].filter(([, p]) => p.line <= through).map(([id, p]): [string, number] => [id, p.line]);
    saveState(o.file, { sha256, answeredThrough: through, totals: answered.totals, pending: saved });
  };

  const send = async (batch: Line[], firstLine: number) => {
    // A line that is not JSON is refused here; the rest go to the service, keyed by their line.
    const readable = batch.filter(({ item }) => item !== UNREADABLE);
    const items = readable.map(({ line, item }) =>
      typeof item === 'object' && item !== null && !Array.isArray(item)
        ? asImported(item as Record<string, unknown>, `import:${sha256.slice(0, 16)}:${line}`, o.externalIdFrom)
        : item,
    );
    const results = readable.length > 0 ? await postBulk(o, items, importHeaders) : [];
    const answers = new Map(readable.map(({ line }, i) => [line, results[i] as ItemResult]));
    const tally = newTally();
    for (const { line, item } of batch) {
      tally.read++;
      const result = answers.get(line);
      if (!result) {
        reject(tally, line, null, 400, `Line ${line} is not valid JSON.`);
      } else if ('http_status' in result && !('command_id' in result)) {
        reject(tally, line, item, result.http_status, result.message);
      } else if ('command_id' in result) {
        count(tally, result.replayed ? 'duplicates' : 'queued');
        if (result.status === 'applied') count(tally, 'applied');
        else if (result.status === 'failed') reject(tally, line, item, result.http_status, result.message);
        else pending.set(result.command_id, { line, tally });
      } // else a dry run's { status: 'valid' }
    }
    answered.add(firstLine, (batch.at(-1) as Line).line, tally);
  };

  // Sending: batches in file order, `concurrency` in flight, each with the tickets it carries.
  // A full batch whose last ticket goes on in the next line leaves that ticket's trailing run
  // to the next batch, so a file grouped by ticket never splits a ticket across requests; a
  // batch sharing a ticket with one in flight waits for it, so each ticket's lines are accepted
  // in file order (within one request the service puts a ticket's historical lines in
  // created_at order).
  const inFlight = new Map<Promise<void>, Set<string>>();
  let batch: Line[] = [];
  let batchFirst = resumedFrom + 1;
  let lastSaved = 0;
  /** `next`: the ticket of the line about to join, or null at the end of the file. */
  const flush = async (next: string | null) => {
    if (batch.length === 0) return;
    let cut = batch.length;
    const lastTicket = ticketOf((batch.at(-1) as Line).item);
    if (next !== null && lastTicket === next) {
      while (cut > 0 && ticketOf((batch[cut - 1] as Line).item) === lastTicket) cut--;
      if (cut === 0) cut = batch.length;
    }
    const lines = batch.slice(0, cut);
    batch = batch.slice(cut);
    const tickets = new Set(lines.map(({ item }) => ticketOf(item)).filter((t): t is string => t !== null));
    for (;;) {
      const sharing = [...inFlight].filter(([, other]) => [...tickets].some((t) => other.has(t))).map(([p]) => p);
      if (sharing.length === 0) break;
      await Promise.race(sharing);
    }
    const sending = send(lines, batchFirst).finally(() => inFlight.delete(sending));
    batchFirst = (lines.at(-1) as Line).line + 1;
    inFlight.set(sending, tickets);
    while (inFlight.size >= o.concurrency) await Promise.race(inFlight.keys());
  };
  progress('sending');
  let failure: unknown = null;
  try {
    for await (const { line, item } of readItems(o.file, o.format, resumedFrom)) {
      if (o.stopped()) break;
      if (batch.length >= o.batchSize) await flush(ticketOf(item));
      batch.push({ line, item });
      while (o.wait && !o.dryRun && pending.size > o.maxPending && !o.stopped()) await settle(o, pending, count, reject);
      if (Date.now() - lastSaved > 1000) {
        save();
        lastSaved = Date.now();
        progress('sending');
      }
    }
    if (!o.stopped()) while (batch.length > 0) await flush(null);
    await Promise.all(inFlight.keys());
  } catch (error) {
    failure = error;
    await Promise.allSettled(inFlight.keys());
  }
  save();
  if (failure) throw failure;

  // Waiting: until every queued line is applied (or refused by a worker).
  if (o.wait && !o.dryRun) {
    while (pending.size > 0 && !o.stopped()) {
      progress('waiting');
      await settle(o, pending, count, reject);
      save();
    }
  }
  progress('done');
  const elapsedSeconds = (Date.now() - started) / 1000;
  const totals = answered.live();
  const thisRun = Object.fromEntries(
    (Object.keys(totals) as Array<keyof Totals>).map((key) => [key, totals[key] - before[key]]),
  ) as unknown as Totals;
  return {
    file: o.file,
    ...totals,
    resumedFrom,
    elapsedSeconds,
    thisRun,
    notYetApplied: pending.size,
    rowsPerSecond: thisRun.read / Math.max(elapsedSeconds, 0.001),
    interrupted: o.stopped(),
    rejectedFile: rejected.written ? rejected.path : null,
    dryRun: o.dryRun,
  };
}

/** A line's ticket_id as text (7, "7" and " 07 " alike), or null when it has none to read. */
function ticketOf(item: unknown): string | null {
  if (typeof item !== 'object' || item === null || !('ticket_id' in item)) return null;
  const id = String((item as { ticket_id: unknown }).ticket_id).trim();
  return /^\d+$/.test(id) ? String(Number(id)) : id === '' ? null : id;
}

/** One look at up to a thousand pending commands; the finished ones leave `pending`. */
async function settle(
  o: ImportOptions,
  pending: Map<string, Pending>,
  count: (tally: Tally, key: keyof Totals) => void,
  reject: (tally: Tally, line: number, item: unknown, status: number, message: string) => void,
): Promise<void> {
  const ids = [...pending.keys()].slice(0, 1000);
  const statuses = await call<Array<ItemResult & { command_id: string; status: string }>>(o, 'commands.php', {
    command_ids: ids,
  });
  let finished = 0;
  for (const status of statuses) {
    const entry = pending.get(status.command_id);
    if (!entry) continue;
    if (status.status === 'applied') count(entry.tally, 'applied');
    else if (status.status === 'failed' && 'http_status' in status)
      reject(entry.tally, entry.line, null, status.http_status, status.message);
    else continue;
    pending.delete(status.command_id);
    finished++;
  }
  if (finished === 0) await sleep(250);
}

async function postBulk(o: ImportOptions, items: unknown[], headers: Record<string, string>): Promise<ItemResult[]> {
  return call<ItemResult[]>(o, `bulk.php${o.dryRun ? '?dry_run=1' : ''}`, items, headers);
}

/**
 * A JSON POST to the service, retried while it says to wait (429, 503, 409 with Retry-After)
 * or cannot be reached; any other refusal of the whole request stops the import.
 */
async function call<T>(o: ImportOptions, path: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let response: Response;
    try {
      response = await fetch(`${o.url}/api/v1/tickets/replies/${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': o.apiKey, ...headers },
        body: JSON.stringify(body),
      });
    } catch (error) {
      if (attempt >= 30) throw new Error(`Cannot reach the service at ${o.url}: ${(error as Error).message}`);
      await sleep(Math.min(5000, 200 * attempt));
      continue;
    }
    const answer = (await response.json().catch(() => ({}))) as { data?: T; message?: string };
    if (response.ok || (response.status === 400 && answer.data)) return answer.data as T;
    const retryAfter = Number(response.headers.get('retry-after'));
    if ([429, 503].includes(response.status) && attempt < 100) {
      await sleep((Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : 1) * 1000);
      continue;
    }
    throw new Error(`The service refused the import request (${response.status}): ${answer.message ?? 'no message'}`);
  }
}
