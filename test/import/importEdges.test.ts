import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createItflowDatabase, dropDatabase } from '../../src/demo/itflowDatabase.js';
import { DEMO_KEYS, seedDemoData } from '../../src/demo/seed.js';
import { createLogger } from '../../src/logger.js';
import { type RunningService, startService } from '../../src/service.js';
import { deleteQueueKeys, type Harness, startHarness, testConfig, uniqueName } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * The import CLI's edges, as an operator meets them: which rejected lines a file of reasons
 * holds after a re-run, a resume or a dry run; what the summary says after Ctrl-C and after a
 * resume; the progress an operator watches (no nonsense ETA on a terminal, a CSV header not
 * counted); no state left behind by an import refused outright; state files ignored by git;
 * and `generate:import` writing a file for the demo database's own tickets.
 */
describe('CLI import edges', () => {
  let h: Harness;
  let world: World;
  let tickets: number[];
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'replyqueue-import-edges-'));
    h = await startHarness({ generation: '2.6.7' });
    world = await seedWorld(h.db, '2.6.7');
    tickets = await Promise.all([1, 2, 3, 4].map(() => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  const importArgs = (file: string, args: string[], key = world.keys.all) => [
    'import',
    file,
    '--url',
    h.url,
    '--api-key',
    key,
    ...args,
  ];
  const runImport = (file: string, ...args: string[]) =>
    spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), importArgs(file, ['--json', ...args]));
  const summaryOf = (output: string) => JSON.parse(output.split('\n').find((line) => line.startsWith('{"file"')) as string);
  const stateOf = (file: string) => JSON.parse(readFileSync(`${file}.import-state.json`, 'utf8'));
  const rejectedLines = (path: string) =>
    readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).line as number);

  /** `lines` replies over the test's tickets; every `badEvery`-th line names a ticket that does not exist. */
  function ndjson(name: string, lines: number, badEvery = 0): string {
    const file = join(dir, name);
    const rows = Array.from({ length: lines }, (_, i) =>
      JSON.stringify({
        ticket_id: badEvery > 0 && (i + 1) % badEvery === 0 ? 999999 : tickets[i % tickets.length],
        ticket_reply: `${name} line ${i + 1}`,
        created_at: '2026-01-01 10:00:00',
      }),
    );
    writeFileSync(file, `${rows.join('\n')}\n`);
    return file;
  }

  it('rejected lines: each run of a file starts its file of reasons afresh, and a dry run writes its own', async () => {
    const file = ndjson('reasons.ndjson', 10, 5);
    const first = runImport(file);
    expect(await first.exited).toBe(3);
    expect(rejectedLines(`${file}.rejected.ndjson`)).toEqual([5, 10]);

    const dry = runImport(file, '--dry-run');
    expect(await dry.exited).toBe(3);
    expect(summaryOf(dry.output()).rejectedFile).toBe(`${file}.dry-run.rejected.ndjson`);
    const dryAgain = runImport(file, '--dry-run');
    expect(await dryAgain.exited).toBe(3);
    expect(rejectedLines(`${file}.dry-run.rejected.ndjson`)).toEqual([5, 10]);
    expect(rejectedLines(`${file}.rejected.ndjson`)).toEqual([5, 10]);

    // The same name, other lines: a new import, whose reasons replace the old ones.
    writeFileSync(file, `${readFileSync(file, 'utf8')}${JSON.stringify({ ticket_id: 999999, ticket_reply: 'eleventh' })}\n`);
    const second = runImport(file);
    expect(await second.exited).toBe(3);
    expect(rejectedLines(`${file}.rejected.ndjson`)).toEqual([5, 10, 11]);
  });

  it('rejected lines after a crash and a resume: every refused line once, none lost, none twice', async () => {
    const lines = 20_000;
    const file = ndjson('crash-reasons.ndjson', lines, 50);
    const first = runImport(file, '--batch-size', '100', '--concurrency', '1');
    const answered = () => (existsSync(`${file}.import-state.json`) ? stateOf(file).answeredThrough : 0);
    for (let i = 0; i < 800 && answered() < 2000; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    // Let it answer more lines than the last save says, so the resume sends some again.
    await new Promise((resolve) => setTimeout(resolve, 600));
    first.child.kill('SIGKILL');
    await first.exited;
    const resumedFrom = stateOf(file).answeredThrough;
    expect(resumedFrom).toBeLessThan(lines);

    const second = runImport(file, '--batch-size', '500', '--concurrency', '4');
    expect(await second.exited).toBe(3);
    const summary = summaryOf(second.output());
    expect(summary).toMatchObject({ read: lines, rejected: lines / 50, resumedFrom });
    const expected = Array.from({ length: lines / 50 }, (_, i) => (i + 1) * 50);
    expect(rejectedLines(`${file}.rejected.ndjson`)).toEqual(expected);
  });

  it('after Ctrl-C and after the resume, the summary tells this run’s rows and rate from the whole import’s', async () => {
    const lines = 20_000;
    const file = ndjson('summary.ndjson', lines);
    const first = runImport(file, '--batch-size', '100', '--concurrency', '1');
    const answered = () => (existsSync(`${file}.import-state.json`) ? stateOf(file).answeredThrough : 0);
    for (let i = 0; i < 800 && answered() < 2000; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(130);
    const interrupted = summaryOf(first.output());
    expect(interrupted.interrupted).toBe(true);
    // Ctrl-C stops waiting: what was queued and not yet seen applied is said, not dropped.
    expect(interrupted.applied + interrupted.notYetApplied).toBe(interrupted.queued + interrupted.duplicates);
    expect(interrupted.thisRun).toMatchObject({ read: interrupted.read, applied: interrupted.applied });
    expect(interrupted.rowsPerSecond).toBeCloseTo(interrupted.thisRun.read / interrupted.elapsedSeconds, 0);
    const saved = stateOf(file);

    const second = runImport(file, '--batch-size', '500', '--concurrency', '4');
    expect(await second.exited).toBe(0);
    const resumed = summaryOf(second.output());
    expect(resumed).toMatchObject({ read: lines, applied: lines, notYetApplied: 0, resumedFrom: saved.answeredThrough });
    expect(resumed.thisRun).toEqual({
      read: lines - saved.totals.read,
      queued: resumed.queued - saved.totals.queued,
      applied: lines - saved.totals.applied,
      rejected: 0,
      duplicates: resumed.duplicates - saved.totals.duplicates,
    });
    expect(resumed.rowsPerSecond).toBeCloseTo(resumed.thisRun.read / resumed.elapsedSeconds, 0);

    // Run once more: nothing left to do, and the text says so.
    const third = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), importArgs(file, []));
    expect(await third.exited).toBe(0);
    expect(third.output()).toMatch(/read\s+20,000 \(0 in this run\)/);
    expect(third.output()).toMatch(/applied\s+20,000 \(0 in this run\)/);
    expect(third.output()).toMatch(/rows\/s\s+0 \(this run\)/);
  });

  it('on a terminal, the progress bar never shows an ETA it cannot know (no NaN, Infinity, NFs)', async () => {
    // Long enough (500 requests one at a time) for the bar to be redrawn mid-way with a rate to go on.
    const file = ndjson('tty.ndjson', 5000);
    const command = [
      process.execPath,
      '--import',
      'tsx',
      'workers/cli.ts',
      ...importArgs(file, ['--batch-size', '10', '--concurrency', '1']),
    ]
      .map((part) => `'${part}'`)
      .join(' ');
    // `script` gives the CLI a terminal, as an operator's shell does.
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      env: { ...process.env, ...h.processEnv({ LOG_LEVEL: 'silent' }), COLUMNS: '200' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    const etas = [...output.matchAll(/ETA (\S+)/g)].map((m) => m[1] as string);
    console.info('ETAs shown:', etas.join(' '));
    // Some estimate was made while lines were being sent (the run takes a few seconds).
    expect(etas.some((e) => /^[1-9]\d*s$|m|h/.test(e))).toBe(true);
    for (const eta of etas) expect(eta).toMatch(/^(--|\d+s|\d+m\d{2}s|\d+h\d{2}m)$/);
    expect(output).not.toMatch(/NaN|Infinity|NFs|NULL|INF/);
  }, 90_000);

  it('CSV: progress counts rows, not the header', async () => {
    const ticket = tickets[0] as number;
    const file = join(dir, 'progress.csv');
    writeFileSync(file, ['ticket_id,ticket_reply', `${ticket},first`, `${ticket},second`].join('\n'));
    const run = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), importArgs(file, []));
    expect(await run.exited).toBe(0);
    expect(run.output()).toMatch(/^sending: 0\/2 lines/m);
    expect(run.output()).toMatch(/^done: 2\/2 lines/m);
    expect(run.output()).not.toMatch(/\/3 lines/);
  });

  it('an import refused outright (a wrong API key) leaves no state file and no file of reasons', async () => {
    const file = ndjson('refused.ndjson', 5);
    const run = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), importArgs(file, [], 'not-a-key'));
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('The service refused the import request (401)');
    expect(existsSync(`${file}.import-state.json`)).toBe(false);
    expect(existsSync(`${file}.rejected.ndjson`)).toBe(false);
  });

  it('git ignores the state files an import leaves beside its file', () => {
    for (const path of ['examples/import-sample.ndjson.import-state.json', 'data/replies.csv.import-state.json.tmp']) {
      expect(execFileSync('git', ['check-ignore', path], { encoding: 'utf8' }).trim()).toBe(path);
    }
  });
});

describe('generate:import for the demo database', () => {
  const database = uniqueName('gendemo');
  const prefix = uniqueName('q');
  let dir: string;
  let service: RunningService;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'replyqueue-generate-'));
    await createItflowDatabase(inject('mysqlUrl'), database, '2.6.7');
    const config = testConfig(database, prefix);
    await seedDemoData(config.DATABASE_URL);
    service = await startService(config, { intake: true, worker: true }, createLogger('silent'));
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await service?.close();
    await dropDatabase(inject('mysqlUrl'), database);
    await deleteQueueKeys(inject('redisUrl'), prefix);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const generate = async (...args: string[]) => {
    const run = spawnEntry('bench/generateImport.ts', { DATABASE_URL: `${inject('mysqlUrl').replace(/\/$/, '')}/itflow` }, args);
    expect(await run.exited, run.output()).toBe(0);
    return run.output();
  };
  const ticketsIn = (file: string) =>
    new Set(
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).ticket_id),
    );

  it('--database NAME spreads the lines over that database’s open tickets, and the demo key imports them all', async () => {
    const file = join(dir, 'demo.ndjson');
    expect(await generate('--database', database, '--lines', '60', '--out', file)).toContain(
      `over the 5 open tickets of ${database}`,
    );
    expect([...ticketsIn(file)].sort()).toEqual([1, 2, 3, 4, 6]);
    const run = spawnEntry('workers/cli.ts', { LOG_LEVEL: 'silent' }, [
      'import',
      file,
      '--url',
      service.url as string,
      '--api-key',
      DEMO_KEYS.admin,
      '--json',
    ]);
    expect(await run.exited).toBe(0);
    expect(
      JSON.parse(
        run
          .output()
          .split('\n')
          .find((l) => l.startsWith('{"file"')) as string,
      ),
    ).toMatchObject({
      read: 60,
      applied: 60,
      rejected: 0,
    });
  });

  it('--tickets A-B names the tickets themselves', async () => {
    const file = join(dir, 'range.ndjson');
    await generate('--tickets', '1-4', '--lines', '8', '--out', file);
    expect([...ticketsIn(file)].sort()).toEqual([1, 2, 3, 4]);
  });
});
