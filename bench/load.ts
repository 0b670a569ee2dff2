import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';

/**
 * HTTP load of single POSTs: `wrk` when it is installed (a C load generator leaves more of a
 * 2-core machine to the service), otherwise autocannon from npm. The report names which. By
 * default the requests are the service's create.php commands (or the bare pipeline's /one, which
 * takes the same body and ignores the key); `body` and `headers` make them any JSON POST, such
 * as ITFlow's own ticket_replies/create.php with the key in the body.
 */
export interface LoadResult {
  generator: string;
  requests: number;
  ok: number;
  seconds: number;
  p50: number;
  p99: number;
  /** Answers by HTTP status (with `insertIds`). */
  statuses?: Record<string, number>;
  /** The insert_id of every 2xx answer that carried one (with `insertIds`). */
  insertIds?: number[];
}

/**
 * The JSON body of the `n`-th request (n = 1, 2, …), which goes to `ticket`. The text may use
 * `ticket` and `n` only as they are (as a number, or within a string): wrk builds the bodies in
 * Lua from the text this returns, and the load checks that a sample comes out the same.
 */
export type BodyBuilder = (ticket: number, n: number) => Record<string, unknown>;

/** The service's create.php command (the key goes in X-API-Key). */
export const createReplyBody: BodyBuilder = (ticket, n) => ({ ticket_id: ticket, ticket_reply: `Bench reply ${n}`, minutes: 1 });

export interface LoadOptions {
  url: string;
  /** Sent as X-API-Key; none when the body carries the key (`api_key`, as ITFlow's clients send it). */
  key?: string;
  connections: number;
  seconds: number;
  /** The tickets the requests go round: ids 1…n, or these ids. */
  tickets: number | readonly number[];
  /** A fixed request rate (per second, all connections together) instead of as fast as it goes. */
  rate?: number;
  /** The request body (default: create.php's). */
  body?: BodyBuilder;
  /** More request headers (Content-Type is application/json). */
  headers?: Record<string, string>;
  /** Count the answers by status and collect the insert_id of each 2xx answer (ITFlow's create answer). */
  insertIds?: boolean;
}

const run = promisify(execFile);

export async function hasWrk(): Promise<boolean> {
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

function ticketIds(tickets: number | readonly number[]): readonly number[] {
  return typeof tickets === 'number' ? Array.from({ length: tickets }, (_, i) => i + 1) : tickets;
}

function headersOf(o: LoadOptions): Record<string, string> {
  return { 'Content-Type': 'application/json', ...(o.key ? { 'X-API-Key': o.key } : {}), ...o.headers };
}

/** The ticket and body of the n-th request, the same for both generators. */
function requestBody(o: LoadOptions, ids: readonly number[], n: number): string {
  return JSON.stringify((o.body ?? createReplyBody)(ids[n % ids.length] as number, n));
}

const INSERT_ID = /"insert_id"\s*:\s*"?(\d+)/;

// Stand-ins for the ticket and n, unlikely to appear in a body on their own.
const TICKET_MARK = 918_273_645_501;
const N_MARK = 918_273_645_502;

/** A Lua string literal of `text` (bytes outside printable ASCII, quotes and backslashes as \ddd). */
function luaString(text: string): string {
  const bytes = [...Buffer.from(text, 'utf8')];
  return `"${bytes.map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${String(b).padStart(3, '0')}`)).join('')}"`;
}

/** The Lua expression of the body, from the builder's text with the stand-ins in it. */
function luaBody(build: BodyBuilder): string {
  const template = JSON.stringify(build(TICKET_MARK, N_MARK));
  const sample = JSON.stringify(build(7, 12345));
  const filled = template.replaceAll(String(TICKET_MARK), '7').replaceAll(String(N_MARK), '12345');
  if (filled !== sample)
    throw new Error('the body builder must use ticket and n as they are (wrk builds the bodies from its text)');
  return template
    .split(new RegExp(`(${TICKET_MARK}|${N_MARK})`))
    .map((part) => (part === String(TICKET_MARK) ? 'ticket' : part === String(N_MARK) ? 'counter' : luaString(part)))
    .filter((part) => part !== '""')
    .join(' .. ');
}

async function wrk(o: LoadOptions): Promise<LoadResult> {
  const ids = ticketIds(o.tickets);
  const script = join(tmpdir(), `replyqueue-bench-${process.pid}.lua`);
  const answers = join(tmpdir(), `replyqueue-bench-${process.pid}.answers`);
  const headers = Object.entries(headersOf(o))
    .map(([name, value]) => `[${luaString(name)}] = ${luaString(value)}`)
    .join(', ');
  // With insertIds, each answer is counted by status and a 2xx answer's insert_id kept in the
  // load thread; done() (in wrk's main Lua state) reads them from the thread and writes a file.
  const collect = o.insertIds
    ? `statuses = {}
ids = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 200 and status < 300 then
    local id = string.match(body, '"insert_id"%s*:%s*"?(%d+)')
    if id then ids[#ids + 1] = id end
  end
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function()
  local file = io.open(${luaString(answers)}, "w")
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do file:write("status ", status, " ", count, "\\n") end
    for _, id in ipairs(thread:get("ids")) do file:write("id ", id, "\\n") end
  end
  file:close()
end
`
    : '';
  writeFileSync(
    script,
    `counter = 0
local tickets = {${ids.join(',')}}
local headers = {${headers}}
request = function()
  counter = counter + 1
  local ticket = tickets[(counter % #tickets) + 1]
  return wrk.format("POST", nil, headers, ${luaBody(o.body ?? createReplyBody)})
end
${collect}`,
  );
  try {
    const { stdout, stderr } = await run(
      'wrk',
      ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', '-s', script, o.url],
      {
        maxBuffer: 1 << 20,
      },
    );
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
      ...(o.insertIds ? answersOf(answers, `${stdout}${stderr}`) : {}),
    };
  } finally {
    rmSync(answers, { force: true });
    rmSync(script, { force: true });
  }
}

/**
 * The answers wrk's script counted; `ok` is then their 2xx, since wrk also counts a server
 * closing the connection after each answer (PHP's built-in server) as a read error.
 */
function answersOf(file: string, output: string): Pick<LoadResult, 'ok' | 'statuses' | 'insertIds'> {
  if (!existsSync(file))
    throw new Error(`wrk wrote no answers (its script failed?): ${output.trim().split('\n').slice(-3).join(' | ')}`);
  const statuses: Record<string, number> = {};
  const insertIds: number[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [kind, a, b] = line.split(' ');
    if (kind === 'status') statuses[a as string] = Number(b);
    else if (kind === 'id') insertIds.push(Number(a));
  }
  const ok = Object.entries(statuses).reduce((sum, [status, n]) => (status.startsWith('2') ? sum + n : sum), 0);
  return { ok, statuses, insertIds };
}

async function autocannonLoad(o: LoadOptions): Promise<LoadResult> {
  const ids = ticketIds(o.tickets);
  let sent = 0;
  const statuses: Record<string, number> = {};
  const insertIds: number[] = [];
  const started = performance.now();
  const result = await autocannon({
    url: o.url,
    method: 'POST',
    connections: o.connections,
    duration: o.seconds,
    headers: headersOf(o),
    ...(o.rate === undefined ? {} : { overallRate: o.rate }),
    requests: [
      {
        setupRequest: (request) => ({ ...request, body: requestBody(o, ids, ++sent) }),
        ...(o.insertIds
          ? {
              onResponse: (status: number, body: string) => {
                statuses[status] = (statuses[status] ?? 0) + 1;
                const id = status >= 200 && status < 300 ? INSERT_ID.exec(body)?.[1] : undefined;
                if (id) insertIds.push(Number(id));
              },
            }
          : {}),
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
    ...(o.insertIds ? { statuses, insertIds } : {}),
  };
}
