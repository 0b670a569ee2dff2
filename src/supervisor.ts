// `npm start`: the intake and SERVICE_WORKERS queue workers, each in a process of its own (both
// cores, and an event loop each), started, watched and stopped by this one. A process that dies
// is started again; SIGTERM or SIGINT stops them all gracefully; if this process itself is
// killed, each child notices its IPC channel close and stops on its own. /metrics on the intake
// answers for the whole service: the intake asks this process, which gathers every child's
// metrics and adds them up (src/supervision.ts is the children's side).
import { type ChildProcess, fork } from 'node:child_process';
import { getPriority, setPriority } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import type { Config } from './config.js';
import { processLogger } from './logger.js';
import { configOrExit, runProcess } from './signals.js';
import { type FromChild, SUPERVISED_ENV, type ToChild } from './supervision.js';

/** A crash within this long of a start doubles the wait before the next start (up to the cap). */
const STABLE_MS = 60_000;
const FIRST_RESTART_MS = 1_000;
const MAX_RESTART_MS = 30_000;
/** How long a metrics scrape waits for the children's share. */
const GATHER_TIMEOUT_MS = 2_000;

interface Member {
  name: string;
  entry: 'intake' | 'worker';
  /** Settings of its own: WORKER_PORT + n for the n-th worker after the first, so each has its port. */
  env: Record<string, string>;
  child: ChildProcess | null;
  startedAt: number;
  restartMs: number;
  ready: boolean;
}

/** `npm start`: supervised processes, or — with SERVICE_WORKERS=0 — intake and worker in this one. */
export async function superviseOrRun(label: string): Promise<void> {
  const config = configOrExit();
  if (config.SERVICE_WORKERS === 0) return runProcess({ intake: true, worker: true }, label);
  await new Supervisor(config, processLogger(config.LOG_LEVEL, config.LOG_FORMAT), label).start();
}

class Supervisor {
  private readonly members: Member[];
  /** How much lower the workers' CPU priority is than this process's (WORKER_NICE). */
  private readonly workerNice: number;
  private stopping = false;
  private exitCode = 0;
  private nextRequest = 0;
  private readonly gathering = new Map<number, { parts: object[][]; waiting: number; done: () => void }>();

  constructor(
    config: Config,
    private readonly logger: Logger,
    private readonly label: string,
  ) {
    this.workerNice = config.WORKER_NICE;
    const member = (name: string, entry: Member['entry'], env: Record<string, string> = {}): Member => ({
      name,
      entry,
      env,
      child: null,
      startedAt: 0,
      restartMs: FIRST_RESTART_MS,
      ready: false,
    });
    this.members = [
      member('intake', 'intake'),
      ...Array.from({ length: config.SERVICE_WORKERS }, (_, i) =>
        member(
          `worker-${i + 1}`,
          'worker',
          config.WORKER_PORT === undefined || config.WORKER_PORT === 0 ? {} : { WORKER_PORT: String(config.WORKER_PORT + i) },
        ),
      ),
    ];
  }

  async start(): Promise<void> {
    this.handleSignals();
    // One after the other: the first migrates and checks grants and schema, so a problem there
    // is told once, by the intake, rather than by every process at the same moment.
    let url: string | null = null;
    for (const member of this.members) {
      if (this.stopping) return;
      const ready = await this.spawn(member);
      if (this.stopping) return;
      if (ready === null) return this.abortStart(member);
      url ??= ready.url;
    }
    this.logger.info({ url, processes: this.members.map((m) => ({ name: m.name, pid: m.child?.pid })) }, `${this.label} started`);
  }

  /** Starts a member's process; resolves once it is ready (with its URL, if it listens), or null if it exits first. */
  private spawn(member: Member): Promise<{ url: string | null } | null> {
    const entry = fileURLToPath(new URL(`../workers/${member.entry}${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
    const child = fork(entry, [], {
      env: { ...process.env, ...member.env, [SUPERVISED_ENV]: member.name },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    member.child = child;
    if (member.entry === 'worker' && this.workerNice > 0) this.lowerPriority(member, child);
    member.startedAt = Date.now();
    member.ready = false;
    return new Promise((resolve) => {
      child.on('message', (message: FromChild) => {
        if (message?.type === 'ready') {
          member.ready = true;
          resolve({ url: message.url });
        } else if (message?.type === 'metrics') {
          void this.answerScrape(child, message.id);
        } else if (message?.type === 'metrics-part') {
          this.receivePart(message.id, message.metrics);
        }
      });
      child.on('exit', (code, signal) => {
        member.child = null;
        if (!member.ready) return resolve(null);
        this.exited(member, code, signal);
      });
    });
  }

  /** Gives a worker's process a nice value WORKER_NICE above this one's; a refusal is told, not fatal. */
  private lowerPriority(member: Member, child: ChildProcess): void {
    if (child.pid === undefined) return;
    try {
      setPriority(child.pid, Math.min(19, getPriority() + this.workerNice));
    } catch (error) {
      this.logger.warn(
        { process: member.name, err: (error as Error).message },
        'could not lower the process priority (WORKER_NICE)',
      );
    }
  }

  /** A process that had started has exited: expected while stopping, else started again. */
  private exited(member: Member, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping) {
      this.maybeDone();
      return;
    }
    const crashedSoon = Date.now() - member.startedAt < STABLE_MS;
    const delay = crashedSoon ? member.restartMs : FIRST_RESTART_MS;
    member.restartMs = crashedSoon ? Math.min(member.restartMs * 2, MAX_RESTART_MS) : FIRST_RESTART_MS;
    this.logger.warn(
      { process: member.name, code, signal, restartInMs: delay },
      'a process of the service exited; starting it again',
    );
    setTimeout(() => {
      if (this.stopping) return;
      void this.spawn(member).then((ready) => {
        if (ready !== null) {
          this.logger.info({ process: member.name, pid: member.child?.pid }, 'process started again');
        } else if (!this.stopping) {
          // It could not start (MySQL away, say): try again later, as after a crash.
          this.exited(member, 1, null);
        }
      });
    }, delay).unref();
  }

  /** A process could not start: the others are stopped and the service exits 1 (its reason is on stderr). */
  private abortStart(member: Member): void {
    this.stopping = true;
    this.logger.debug({ process: member.name }, 'a process could not start');
    this.exitCode = 1;
    this.stopChildren('SIGTERM');
    this.maybeDone();
  }

  private handleSignals(): void {
    const stop = (signal: NodeJS.Signals) => {
      if (this.stopping) {
        this.logger.warn({ signal }, 'second signal: stopping every process now');
        this.stopChildren('SIGKILL');
        process.exit(1);
      }
      this.stopping = true;
      this.logger.info({ signal }, 'shutting down');
      this.stopChildren('SIGTERM');
      this.maybeDone();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  }

  private stopChildren(signal: NodeJS.Signals): void {
    for (const member of this.members) {
      const child = member.child;
      if (child === null) continue;
      child.once('exit', (code) => {
        if (code !== 0) this.exitCode = 1;
      });
      child.kill(signal);
    }
  }

  private maybeDone(): void {
    if (!this.stopping || this.members.some((m) => m.child !== null)) return;
    if (this.exitCode === 0) this.logger.info('stopped');
    process.exit(this.exitCode);
  }

  /** A scrape of the intake's /metrics: every process's metrics, added up, sent back to the intake. */
  private async answerScrape(requester: ChildProcess, id: number): Promise<void> {
    const request = this.nextRequest++;
    const children = this.members.flatMap((m) => (m.child?.connected && m.ready ? [m.child] : []));
    const parts: object[][] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), GATHER_TIMEOUT_MS);
      const finish = () => {
        clearTimeout(timer);
        this.gathering.delete(request);
        resolve();
      };
      this.gathering.set(request, { parts, waiting: children.length, done: finish });
      for (const child of children) child.send({ type: 'metrics-part', id: request } satisfies ToChild);
      if (children.length === 0) finish();
    });
    const registry = AggregatorRegistry.aggregate(parts);
    const answer: ToChild = { type: 'metrics', id, contentType: registry.contentType, text: await registry.metrics() };
    if (requester.connected) requester.send(answer);
  }

  private receivePart(request: number, metrics: object[]): void {
    const gathering = this.gathering.get(request);
    if (gathering === undefined) return;
    gathering.parts.push(metrics);
    if (--gathering.waiting === 0) gathering.done();
  }
}
