import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';

/**
 * HTTP load of single commands against create.php (or the bare pipeline's /one, which takes the
 * same body and ignores the key): `wrk` when it is installed (a C load generator leaves more of
 * a 2-core machine to the service), otherwise autocannon from npm. The report names which.
 */
export interface LoadResult {
  generator: string;
  requests: number;
  ok: number;
  seconds: number;
  p50: number;
  p99: number;
}

export interface LoadOptions {
  url: string;
  key: string;
  connections: number;
  seconds: number;
  tickets: number;
  /** A fixed request rate (per second, all connections together) instead of as fast as it goes. */
  rate?: number;
}

const run = promisify(execFile);

async function hasWrk(): Promise<boolean> {
  return run('wrk', ['--version']).then(
    () => true,
    (error: { code?: string; stdout?: string }) => error.code !== 'ENOENT' && /wrk/.test(String(error.stdout ?? '')),
  );
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  // wrk cannot hold a fixed rate; autocannon can.
  return options.rate === undefined && (await hasWrk()) ? wrk(options) : autocannonLoad(options);
}

function toMs(text: string): number {
  const match = /([\d.]+)(us|ms|s)/.exec(text);
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

async function wrk(o: LoadOptions): Promise<LoadResult> {
  const script = join(tmpdir(), `replyqueue-bench-${process.pid}.lua`);
  writeFileSync(
    script,
    `counter = 0
request = function()
  counter = counter + 1
  local body = '{"ticket_id": ' .. ((counter % ${o.tickets}) + 1) .. ', "ticket_reply": "Bench reply ' .. counter .. '", "minutes": 1}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-API-Key"] = "${o.key}"}, body)
end
`,
  );
  const { stdout } = await run('wrk', ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', '-s', script, o.url], {
    maxBuffer: 1 << 20,
  });
  const requests = Number(/(\d+) requests in ([\d.]+)(\w+)/.exec(stdout)?.[1]);
  const seconds = toMs(/requests in ([\d.]+\w+)/.exec(stdout)?.[1] ?? '') / 1000;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const failed = non2xx + (errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0);
  return {
    generator: 'wrk',
    requests,
    ok: requests - non2xx,
    seconds,
    p50: toMs(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? ''),
    p99: toMs(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? ''),
    ...(failed > non2xx ? { ok: requests - failed } : {}),
  };
}

async function autocannonLoad(o: LoadOptions): Promise<LoadResult> {
  let sent = 0;
  const started = performance.now();
  const result = await autocannon({
    url: o.url,
    method: 'POST',
    connections: o.connections,
    duration: o.seconds,
    headers: { 'content-type': 'application/json', 'x-api-key': o.key },
    ...(o.rate === undefined ? {} : { overallRate: o.rate }),
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({ ticket_id: (sent++ % o.tickets) + 1, ticket_reply: `Bench reply ${sent}`, minutes: 1 }),
        }),
      },
    ],
  });
  // autocannon's own duration is in whole seconds; time the run here instead.
  return {
    generator: 'autocannon',
    requests: result.requests.total,
    ok: result['2xx'],
    seconds: (performance.now() - started) / 1000,
    p50: result.latency.p50,
    p99: result.latency.p99,
  };
}
