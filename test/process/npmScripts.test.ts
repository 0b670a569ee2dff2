import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createItflowDatabase, dropDatabase, withDatabase } from '../../src/demo/itflowDatabase.js';
import { deleteQueueKeys, uniqueName } from '../helpers/harness.js';

/**
 * The npm scripts as someone runs them right after `npm ci` (a copy of the project with no
 * dist/): `npm run start:intake` and `start:worker` build first, and `npm run cli` builds only
 * when a source changed or an output is missing.
 */
describe('npm scripts on a fresh checkout', () => {
  const root = join(import.meta.dirname, '..', '..');
  let copy: string;
  const database = uniqueName('npm');
  const env = () => ({
    ...process.env,
    DATABASE_URL: withDatabase(inject('mysqlUrl'), database),
    REDIS_URL: inject('redisUrl'),
    PORT: '0',
    QUEUE_PREFIX: database,
    QUEUE_PARTITIONS: '4',
    LOG_LEVEL: 'info',
  });
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    copy = mkdtempSync(join(tmpdir(), 'replyqueue-npm-'));
    for (const entry of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'workers', 'scripts']) {
      if (existsSync(join(root, entry))) cpSync(join(root, entry), join(copy, entry), { recursive: true });
    }
    rmSync(join(copy, 'dist'), { recursive: true, force: true });
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
    await createItflowDatabase(inject('mysqlUrl'), database, '2.6.7');
  });
  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null || !child.pid) continue;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {} // the group is gone already
    }
    if (copy) rmSync(copy, { recursive: true, force: true });
    await dropDatabase(inject('mysqlUrl'), database);
    await deleteQueueKeys(inject('redisUrl'), database);
  });

  /** `npm run …` in the copy, in a process group of its own (npm, its shell and node are stopped together). */
  function npm(args: string[]) {
    const child = spawn('npm', ['run', '--silent', ...args], {
      cwd: copy,
      env: env(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = once(child, 'exit').then(([code]) => code as number | null);
    return {
      child,
      exited,
      output: () => output,
      async until(pattern: RegExp, timeoutMs = 90_000) {
        const deadline = Date.now() + timeoutMs;
        while (!pattern.test(output)) {
          if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${pattern} in:\n${output}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      },
      stop: () => child.pid && process.kill(-child.pid, 'SIGTERM'),
    };
  }
  const mtime = (path: string) => statSync(join(copy, path)).mtimeMs;

  it('`npm run start:intake` and `npm run start:worker` build what they run', async () => {
    const intake = npm(['start:intake']);
    await intake.until(/intake started/);
    intake.stop();
    await intake.exited;
    rmSync(join(copy, 'dist'), { recursive: true, force: true });
    const worker = npm(['start:worker']);
    await worker.until(/worker started/);
    worker.stop();
    await worker.exited;
    expect(existsSync(join(copy, 'dist/workers/worker.js'))).toBe(true);
  }, 240_000);

  it('`npm run cli` leaves a current dist/ as it is, and rebuilds after a source changes or an output goes', async () => {
    const first = npm(['cli', '--', '--help']);
    expect(await first.exited).toBe(0);
    const built = mtime('dist/workers/cli.js');
    const service = mtime('dist/src/service.js');

    const again = npm(['cli', '--', '--help']);
    expect(await again.exited).toBe(0);
    expect(again.output()).toContain('ITFlow Reply Queue command-line tool');
    expect(mtime('dist/workers/cli.js')).toBe(built);
    expect(mtime('dist/src/service.js')).toBe(service);

    const source = join(copy, 'workers/cli.ts');
    writeFileSync(source, readFileSync(source, 'utf8').replace('ITFlow Reply Queue command-line tool', 'Edited description'));
    const edited = npm(['cli', '--', '--help']);
    expect(await edited.exited).toBe(0);
    expect(edited.output()).toContain('Edited description');

    rmSync(join(copy, 'dist/src/queue/lua'), { recursive: true });
    const missing = npm(['cli', '--', '--help']);
    expect(await missing.exited).toBe(0);
    expect(existsSync(join(copy, 'dist/src/queue/lua'))).toBe(true);
  }, 240_000);
});
