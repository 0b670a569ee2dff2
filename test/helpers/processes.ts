import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

/** A service process started the way an operator starts one (an entry point under workers/). */
export interface ServiceProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first stdout/stderr line matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the first `count` lines matching `pattern` (one from each of npm start's processes, say). */
  waitForLines(pattern: RegExp, count: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
}

const running = new Set<ChildProcess>();

/** Kills every process a test started and did not stop (a failed assertion skips its kill). */
export function killLeftovers(): void {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  running.clear();
}

export function spawnEntry(entry: string, env: Record<string, string>, args: string[] = []): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let text = '';
  const watchers: Array<() => void> = [];
  const onData = (chunk: Buffer) => {
    text += chunk.toString();
    for (const watcher of [...watchers]) watcher();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  return {
    child,
    output: () => text,
    exited,
    waitFor(pattern, timeoutMs = 20_000) {
      return this.waitForLines(pattern, 1, timeoutMs).then(([line]) => line as string);
    },
    waitForLines(pattern, count, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const lines = text.split('\n').filter((l) => pattern.test(l));
          if (lines.length < count) return false;
          cleanup();
          resolve(lines.slice(0, count));
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`not ${count} line(s) matching ${pattern} within ${timeoutMs} ms; output:\n${text}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          watchers.splice(watchers.indexOf(check), 1);
        };
        watchers.push(check);
        check();
      });
    },
  };
}

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * `count` consecutive TCP ports nothing listens on now, below Linux's ephemeral range (32768 and
 * up), so no outgoing connection of another test takes one before the service binds it (a port
 * from freePort() is ephemeral, and the one after it may be any connection's).
 */
export async function freePorts(count: number): Promise<number> {
  const bindable = (port: number) =>
    new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if ((await Promise.all(ports.map(bindable))).every(Boolean)) return base;
  }
}

/**
 * A test's own redis-server on `port` (so the test can kill and restart it without touching
 * the shared one), with `args` added to its command line; resolves once it takes connections.
 */
export async function startRedisServer(port: number, args: string[] = []): Promise<ChildProcess> {
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...args], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://127.0.0.1:${port}`).then(
      () => true,
      (error: { cause?: { code?: string } }) => error.cause?.code !== 'ECONNREFUSED',
    );
    if (up) return redis;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('redis-server did not start');
}

/** The names of npm start's processes (`intake`, `worker-1`, …), from its "… started" line. */
export function processNames(startedLine: string): string[] {
  return (JSON.parse(startedLine).processes as Array<{ name: string }>).map((p) => p.name);
}

/** How many lines matching `pattern` each process wrote (JSON log lines, by their `process` field). */
export function linesPerProcess(output: string, pattern: RegExp): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of output.split('\n')) {
    if (!line.startsWith('{') || !pattern.test(line)) continue;
    const name = String(JSON.parse(line).process ?? '(supervisor)');
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}
