// ITFlow's PHP, served by PHP's built-in web server from a scratch copy of the checkout the user
// gave (ITFlow's setup wizard writes config.php and uploads/ into its own folder, and the user's
// checkout must not be changed by a test run). ITFlow's router is Apache's directory index plus
// one .htaccess rule keeping config.php and .git unreadable; the built-in server serves a
// folder's index.php the same way, and config.php is simply never asked for here.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The PHP extensions ITFlow loads, and the Debian package that brings each. */
const EXTENSIONS: Record<string, string> = {
  mysqli: 'php-mysql',
  mbstring: 'php-mbstring',
  intl: 'php-intl',
  curl: 'php-curl',
  dom: 'php-xml',
  zip: 'php-zip',
  gd: 'php-gd',
};

export const PHP_PACKAGES = 'php-cli php-mysql php-mbstring php-intl php-curl php-xml php-zip php-gd';

/** Why this run cannot go on, said in one line. */
export class CannotRun extends Error {}

/** Checks that `php` and ITFlow's extensions are there; returns PHP's version. */
export function checkPhp(): string {
  let modules: string;
  let version: string;
  try {
    version = execFileSync('php', ['-r', 'echo PHP_VERSION;'], { encoding: 'utf8' }).trim();
    modules = execFileSync('php', ['-m'], { encoding: 'utf8' }).toLowerCase();
  } catch {
    throw new CannotRun(`php is not installed: apt-get install ${PHP_PACKAGES}`);
  }
  const have = new Set(modules.split('\n').map((line) => line.trim()));
  const missing = Object.entries(EXTENSIONS).filter(([extension]) => !have.has(extension));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map(([, pkg]) => pkg))].join(' ');
    throw new CannotRun(`PHP lacks ${missing.map(([e]) => e).join(', ')}: apt-get install ${packages}`);
  }
  return version;
}

/** Checks `dir` looks like an ITFlow checkout. */
export function checkCheckout(dir: string): void {
  for (const file of ['setup/index.php', 'agent/post/ticket.php', 'api/v1/validate_api_key.php', 'db.sql']) {
    if (!existsSync(join(dir, file))) throw new CannotRun(`${dir} is not an ITFlow checkout (no ${file})`);
  }
}

export interface PhpServer {
  url: string;
  root: string;
  errorLog: string;
  stop(): Promise<void>;
}

/**
 * Copies the checkout (without .git and any config.php) and serves the copy on `port`.
 * `phpZone`: PHP's date.timezone for the server (null: php.ini's). `workers`: requests served at
 * once (PHP_CLI_SERVER_WORKERS; 1, the built-in server's default, serves one at a time).
 */
export async function servePhp(checkout: string, port: number, phpZone: string | null = null, workers = 1): Promise<PhpServer> {
  const root = mkdtempSync(join(tmpdir(), 'itflow-conformance-'));
  cpSync(checkout, root, {
    recursive: true,
    filter: (source) => {
      const relative = source.slice(checkout.length).replace(/^\/+/, '');
      return relative !== '.git' && !relative.startsWith('.git/') && relative !== 'config.php';
    },
  });
  const errorLog = join(root, 'php-errors.log');
  const child = spawn(
    'php',
    // opcache re-reads a changed file only every 2 s by default; the wizard rewrites config.php
    // and the next request must see it.
    [
      '-d',
      'opcache.revalidate_freq=0',
      '-d',
      'display_errors=0',
      '-d',
      'log_errors=1',
      '-d',
      `error_log=${errorLog}`,
      ...(phpZone ? ['-d', `date.timezone=${phpZone}`] : []),
      '-S',
      `127.0.0.1:${port}`,
      '-t',
      root,
    ],
    {
      cwd: root,
      stdio: ['ignore', 'ignore', 'ignore'],
      ...(workers > 1 ? { env: { ...process.env, PHP_CLI_SERVER_WORKERS: String(workers) } } : {}),
    },
  );
  child.once('error', () => {}); // checkPhp ran php already; a failure here shows as an exit below
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitAnswering(url, child);
  } catch (error) {
    await stopChild(child);
    removeCopy(root);
    throw error;
  }
  return {
    url,
    root,
    errorLog,
    async stop() {
      // With PHP_CLI_SERVER_WORKERS the server's forked workers outlive their stopped parent.
      const workerPids = workers > 1 && child.pid ? childPids(child.pid) : [];
      await stopChild(child);
      await stopPids(workerPids);
    },
  };
}

/** The processes `pid` has forked (Linux). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function stopPids(pids: number[]): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 5_000;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export function removeCopy(root: string): void {
  rmSync(root, { recursive: true, force: true });
}

async function waitAnswering(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new CannotRun(`php -S exited with code ${child.exitCode}`);
    const answered = await fetch(`${url}/robots.txt`).then(
      () => true,
      () => false,
    );
    if (answered) return;
    if (Date.now() > deadline) throw new CannotRun(`php -S did not answer on ${url} within 10 s`);
    await sleep(100);
  }
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
