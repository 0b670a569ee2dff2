import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { runLoad } from './load.js';
import { clearRedisPrefix, ENTRIES, spawnEntry, startBenchService, stopProcess, waitForLedger, waitReady } from './service.js';
import {
  BENCH_KEY,
  BENCH_MYSQL,
  BENCH_REDIS,
  benchServiceEnv,
  createBenchDatabase,
  freshBench,
  percentile,
  tuningFromEnvironment,
} from './setup.js';
import { OpenLoopLoad } from './soakLoad.js';
import { type RestartMark, soakSvg } from './soakPlot.js';
import { fmt, rssStats, samplesCsv } from './soakReport.js';
import { LagTracker, QueueDepth, rssMiB, type Sample } from './soakSamples.js';
import { verifyExactlyOnce } from './soakVerify.js';

/**
 * `npm run soak`: single commands at a fixed rate for a long time against the intake and a
 * worker running as separate processes, restarting the worker on the way — gracefully
 * (SIGTERM), as a deploy does, or with --crash every other restart is a SIGKILL — then checking that every accepted command was
 * applied exactly once. Samples memory, backlog and lag every 5 s; writes a CSV, a JSON
 * summary and an SVG plot. Exits 1 on a 5xx other than 503, or a lost or duplicated command.
 */
const program = new Command('soak')
  .option('--minutes <n>', 'minutes of load', '30')
  .option('--rate <n|auto>', 'commands/s; auto: half of the applied/s a max-throughput probe measures', 'auto')
  .option('--probe-seconds <n>', 'length of the --rate auto probe', '20')
  .option('--tickets <n>', 'tickets the commands are spread over', '10000')
  .option('--restarts <n>', 'worker restarts, evenly spaced (SIGTERM, as a deploy does)', '2')
  .option('--crash', 'make every other restart a SIGKILL (a crash: its lanes wait WORKER_LOCK_SECONDS)')
  .option('--max-in-flight <n>', 'requests outstanding at most; a send due beyond it is skipped and counted', '256')
  .option('--drain-seconds <n>', 'how long to wait for the queue to drain after the load', '600')
  .option('--port <n>', "the intake's port (the worker's health port is the next one)", '18191')
  .option('--out <dir>', 'where the CSV, JSON and SVG go', 'bench/results')
  .parse();
const opts = program.opts<{
  minutes: string;
  rate: string;
  probeSeconds: string;
  tickets: string;
  restarts: string;
  crash?: boolean;
  maxInFlight: string;
  drainSeconds: string;
  port: string;
  out: string;
}>();

// Its own database, queue prefix and port, so a soak and a bench can share a machine.
const DATABASE = 'itflow_soak';
const PREFIX = 'rqsoak';
const SAMPLE_MS = 5000;
const loadSeconds = Number(opts.minutes) * 60;
const tickets = Number(opts.tickets);
const tuning = tuningFromEnvironment();
const serviceEnv = benchServiceEnv(DATABASE, PREFIX, opts.port);
const intakeUrl = `http://127.0.0.1:${opts.port}`;
const workerPort = String(Number(opts.port) + 1);
const workerUrl = `http://127.0.0.1:${workerPort}`;
const lanes = Number(process.env.QUEUE_PARTITIONS ?? 32);

// Whatever happens, no service process outlives the soak.
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
process.on('SIGINT', () => process.exit(130));

async function start(role: 'intake' | 'worker'): Promise<ChildProcess> {
  const env = role === 'worker' ? { ...serviceEnv, WORKER_PORT: workerPort } : serviceEnv;
  const child = spawnEntry(ENTRIES[role][0] as string, env);
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!(await waitReady(role === 'worker' ? workerUrl : intakeUrl, 30_000))) throw new Error(`the ${role} did not become ready`);
  return child;
}

/** The --rate auto probe: applied/s of single commands as fast as they are taken, on the split topology. */
async function probeAppliedRate(url: string): Promise<number> {
  const service = await startBenchService('split', serviceEnv);
  try {
    const result = await runLoad({
      url: `${service.url}/api/v1/tickets/replies/create.php`,
      key: BENCH_KEY,
      connections: 32,
      tickets,
      seconds: Number(opts.probeSeconds),
    });
    const ledger = await waitForLedger(url, result.ok, 600_000);
    return (result.ok / ledger.spanMs) * 1000;
  } finally {
    await service.stop();
  }
}

console.log(`Creating ${DATABASE} with ${fmt(tickets)} tickets…`);
const url = await createBenchDatabase(BENCH_MYSQL, DATABASE, tickets);
await clearRedisPrefix(BENCH_REDIS, PREFIX);

let probedAppliedPerSecond: number | null = null;
let rate: number;
if (opts.rate === 'auto') {
  console.log(`Rate auto: ${opts.probeSeconds} s max-throughput probe (split topology)…`);
  probedAppliedPerSecond = await probeAppliedRate(url);
  rate = Math.max(1, Math.round(probedAppliedPerSecond / 2));
  console.log(`  probe applied ${fmt(probedAppliedPerSecond)}/s → soak at ${fmt(rate)}/s`);
  await freshBench(url, PREFIX);
} else {
  rate = Number(opts.rate);
  if (!(rate > 0)) throw new Error(`--rate must be a positive number or auto, not ${opts.rate}`);
  console.log(`Rate ${fmt(rate)}/s (the default, --rate auto, takes half of a measured maximum).`);
}

const intake = await start('intake');
let worker = await start('worker');
let workerGeneration = 0;
console.log(`Intake pid ${intake.pid} on ${intakeUrl}, worker pid ${worker.pid} (health on ${workerUrl}).`);

const redis = new Redis(BENCH_REDIS);
const depth = new QueueDepth(redis, PREFIX, lanes);
const ledgerConn = await mysql.createConnection({ uri: url });
const tracker = new LagTracker(ledgerConn);
const load = new OpenLoopLoad(
  {
    url: `${intakeUrl}/api/v1/tickets/replies/create.php`,
    key: BENCH_KEY,
    rate,
    tickets,
    maxInFlight: Number(opts.maxInFlight),
    timeoutMs: 30_000,
  },
  (commandId) => tracker.accepted(commandId),
);

const samples: Sample[] = [];
const workerPids: number[] = [worker.pid as number];
const restarts: Array<RestartMark & { oldPid: number; newPid: number; stoppedAfterS: number; readyAfterS: number }> = [];
const runStarted = performance.now();
const elapsed = () => (performance.now() - runStarted) / 1000;
let previous = { t: 0, ...load.counts };

async function takeSample(): Promise<Sample> {
  const t = elapsed();
  const counts = { ...load.counts };
  const seconds = Math.max(t - previous.t, 1e-3);
  const [lags, queue] = await Promise.all([tracker.finishedSinceLastLook(), depth.read()]);
  lags.sort((a, b) => a - b);
  const accepts = load.takeLatencies().sort((a, b) => a - b);
  const sample: Sample = {
    t,
    intakeRssMiB: rssMiB(intake.pid),
    workerRssMiB: worker.exitCode === null && worker.signalCode === null ? rssMiB(worker.pid) : Number.NaN,
    workerPid: worker.pid as number,
    ...queue,
    inFlight: load.inFlight,
    sentPerSecond: (counts.sent - previous.sent) / seconds,
    acceptedPerSecond: (counts.accepted - previous.accepted) / seconds,
    appliedPerSecond: lags.length / seconds,
    refused503: counts.refused503 - previous.refused503,
    failed5xx: counts.failed5xx - previous.failed5xx,
    networkErrors: counts.networkErrors - previous.networkErrors,
    skipped: counts.skipped - previous.skipped,
    acceptP99Ms: percentile(accepts, 99),
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
  };
  previous = { t, ...counts };
  samples.push(sample);
  if (samples.length % 6 === 0) {
    console.log(
      `  ${fmt(t)} s: sent ${fmt(sample.sentPerSecond)}/s, applied ${fmt(sample.appliedPerSecond)}/s, ` +
        `waiting ${fmt(sample.waiting)}, lag p99 ${fmt(sample.lagP99Ms)} ms, ` +
        `RSS intake ${fmt(sample.intakeRssMiB)} MiB, worker ${fmt(sample.workerRssMiB)} MiB`,
    );
  }
  return sample;
}

/** Samples every SAMPLE_MS until stopped; `next()` resolves with the next sample taken. */
const sampler = (() => {
  let waiters: Array<(s: Sample) => void> = [];
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running
      .then(async () => {
        const sample = await takeSample();
        for (const resolve of waiters) resolve(sample);
        waiters = [];
      })
      .catch((error: Error) => console.error(`  sample failed: ${error.message}`));
  }, SAMPLE_MS);
  return {
    next: () => new Promise<Sample>((resolve) => waiters.push(resolve)),
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
})();

async function restartWorker(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const at = elapsed();
  const old = worker;
  await stopProcess(old, signal);
  const stoppedAfterS = elapsed() - at;
  worker = await start('worker');
  workerGeneration++;
  workerPids.push(worker.pid as number);
  const readyAfterS = elapsed() - at;
  restarts.push({ t: at, signal, oldPid: old.pid as number, newPid: worker.pid as number, stoppedAfterS, readyAfterS });
  console.log(
    `  ${fmt(at, 1)} s: worker ${old.pid} ${signal} → exited after ${fmt(stoppedAfterS, 1)} s; ` +
      `worker ${worker.pid} ready ${fmt(readyAfterS, 1)} s after the signal (restart ${workerGeneration}).`,
  );
}

const restartCount = Number(opts.restarts);
console.log(
  `Soak: ${fmt(rate)} commands/s for ${opts.minutes} min over ${fmt(tickets)} tickets, ` +
    `${restartCount} worker restart(s), sampling every ${SAMPLE_MS / 1000} s…`,
);
load.start();
for (let i = 1; i <= restartCount; i++) {
  await sleep(Math.max(0, (loadSeconds * i) / (restartCount + 1) - elapsed()) * 1000);
  await restartWorker(opts.crash && i % 2 === 0 ? 'SIGKILL' : 'SIGTERM');
}
await sleep(Math.max(0, loadSeconds - elapsed()) * 1000);
const sendSeconds = await load.stop();
const drainStarted = elapsed();
console.log(`Load stopped after ${fmt(sendSeconds, 1)} s; waiting for the queue to drain…`);
let drained = false;
while (elapsed() - drainStarted < Number(opts.drainSeconds)) {
  const sample = await sampler.next();
  if (tracker.pendingCount === 0 && sample.waiting + sample.active === 0) {
    drained = true;
    break;
  }
}
const drainSeconds = elapsed() - drainStarted;
await sampler.stop();
console.log(drained ? `Drained in ${fmt(drainSeconds)} s.` : `Not drained within ${opts.drainSeconds} s.`);

console.log('Verifying exactly-once…');
const verification = await verifyExactlyOnce(url, load.accepted, load.counts.scheduled);
await ledgerConn.end();
await depth.close();
redis.disconnect();
await Promise.all([stopProcess(intake, 'SIGTERM'), stopProcess(worker, 'SIGTERM')]);

const counts = load.counts;
// A request that timed out or lost its connection may still have been accepted: its reply is
// no duplicate. Any other surplus of replies over 202s is one.
const extraReplies = verification.replies - counts.accepted;
const duplicated = verification.duplicateReplies + Math.max(0, extraReplies - counts.networkErrors);
const lost = verification.lost + verification.failedInLedger + Math.max(0, verification.applied - verification.replies);
const failures = [
  counts.failed5xx > 0 ? `${counts.failed5xx} responses 5xx other than 503` : '',
  lost > 0 ? `${lost} accepted commands not applied` : '',
  duplicated > 0 ? `${duplicated} commands applied more than once` : '',
  drained ? '' : `queue not drained within ${opts.drainSeconds} s`,
].filter(Boolean);
const rss = {
  intake: rssStats(samples, (s) => s.intakeRssMiB),
  worker: rssStats(samples, (s) => s.workerRssMiB),
  workers: workerPids.map((pid) => ({ pid, ...rssStats(samples, (s) => (s.workerPid === pid ? s.workerRssMiB : Number.NaN)) })),
};

const stamp = new Date()
  .toISOString()
  .replace(/\.\d+Z$/, 'Z')
  .replace(/[-:]/g, '');
mkdirSync(opts.out, { recursive: true });
const files = {
  csv: join(opts.out, `soak-${stamp}.csv`),
  json: join(opts.out, `soak-${stamp}.json`),
  svg: join(opts.out, `soak-${stamp}.svg`),
};
const summary = {
  passed: failures.length === 0,
  failures,
  options: { ...opts, rate, probedAppliedPerSecond, lanes, tuning },
  load: {
    seconds: sendSeconds,
    rateAsked: rate,
    sentPerSecond: counts.sent / sendSeconds,
    acceptedPerSecond: counts.accepted / sendSeconds,
    ...counts,
    errors: Object.fromEntries(load.errors),
  },
  restarts,
  drain: { drained, seconds: drainSeconds },
  verification: { ...verification, extraReplies, duplicated, lost },
  rss,
  files,
};
writeFileSync(files.csv, samplesCsv(samples));
writeFileSync(files.json, `${JSON.stringify(summary, null, 2)}\n`);
writeFileSync(
  files.svg,
  soakSvg(
    samples,
    restarts,
    sendSeconds,
    `Soak: ${fmt(rate)} commands/s for ${opts.minutes} min, intake + worker, ${restarts.length} worker restart(s)`,
  ),
);

const rssLine = (name: string, r: { start: number; end: number; max: number }) =>
  `  ${name.padEnd(22)} start ${fmt(r.start)} MiB, end ${fmt(r.end)} MiB, max ${fmt(r.max)} MiB`;
console.log(`
Duration          ${fmt(sendSeconds, 1)} s of load, ${fmt(drainSeconds)} s drain
Rate              asked ${fmt(rate)}/s, sent ${fmt(summary.load.sentPerSecond, 1)}/s, accepted ${fmt(summary.load.acceptedPerSecond, 1)}/s
Requests          ${fmt(counts.sent)} sent, ${fmt(counts.skipped)} skipped (${opts.maxInFlight} in flight)
Answers           ${fmt(counts.accepted)} × 202, ${fmt(counts.other2xx)} other 2xx, ${fmt(counts.client4xx)} × 4xx, ${fmt(counts.refused503)} × 503, ${fmt(counts.failed5xx)} other 5xx, ${fmt(counts.networkErrors)} network errors
Ledger            ${fmt(verification.applied)} of the 202s applied, ${fmt(verification.failedInLedger)} failed, ${fmt(verification.lost)} missing; ${fmt(verification.ledgerRows)} rows in all
Replies           ${fmt(verification.replies)} 'soak %' replies, ${fmt(verification.duplicateReplies)} texts repeated
Exactly once      lost ${fmt(lost)}, duplicated ${fmt(duplicated)}
Worker restarts   ${restarts.map((r) => `${r.signal} at ${fmt(r.t)} s (ready after ${fmt(r.readyAfterS, 1)} s)`).join(', ') || 'none'}
RSS
${rssLine(`intake ${intake.pid}`, rss.intake)}
${rss.workers.map((w) => rssLine(`worker ${w.pid}`, w)).join('\n')}
Lag p50 / p99 by quarter of the run (by send time):
${verification.quarters.map((q, i) => `  Q${i + 1}: ${fmt(q.lagP50Ms)} / ${fmt(q.lagP99Ms)} ms over ${fmt(q.commands)} commands`).join('\n')}
Files             ${files.csv}, ${files.json}, ${files.svg}
${failures.length === 0 ? 'PASSED' : `FAILED: ${failures.join('; ')}`}`);
if (Object.keys(summary.load.errors).length > 0) console.log('Network errors:', summary.load.errors);
process.exit(failures.length === 0 ? 0 : 1);
