import { type Logger, pino } from 'pino';
import { prettyFactory } from 'pino-pretty';

/** Query parameters whose values never reach a log line. */
const SECRET_PARAMS = new Set(['api_key', 'apikey', 'key', 'token']);

/**
 * The URL with the value of every secret query parameter masked. A parameter is known by its
 * decoded name, as the query parser knows it: `api%5Fkey=` is the api_key the intake accepts.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('?');
  if (start === -1) return url;
  const params = url
    .slice(start + 1)
    .split('&')
    .map((param) => {
      const eq = param.indexOf('=');
      if (eq === -1) return param;
      const name = param.slice(0, eq);
      return isSecret(name) ? `${name}=[redacted]` : param;
    });
  return `${url.slice(0, start + 1)}${params.join('&')}`;
}

function isSecret(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    // Not valid percent-encoding: the parser keeps such a name as it is.
  }
  return SECRET_PARAMS.has(decoded.toLowerCase()) || SECRET_PARAMS.has(name.toLowerCase());
}

/** How log lines are written: JSON for machines, pretty for a person; auto is pretty only at a terminal. */
export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * A service process's logger: LOG_LEVEL, and LOG_FORMAT on stdout — pretty, one readable line
 * per entry, when it is `pretty`, or `auto` and stdout is a terminal; the JSON lines of
 * createLogger otherwise (under a process manager, in a container, piped to a collector).
 */
export function processLogger(level: string, format: LogFormat): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  return createLogger(level, pretty ? prettyStdout() : undefined);
}

/**
 * pino JSON logs. API keys can arrive in a header, the query string or the body; the request
 * serializer logs the URL with api_key masked and no headers or body at all.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'itflow-reply-queue' },
      redact: {
        // mysql2 puts the statement with its values inlined in err.sql (a key look-up's has the key).
        paths: [
          'req.headers["x-api-key"]',
          'req.headers.authorization',
          'headers["x-api-key"]',
          'headers.authorization',
          '*.api_key',
          'api_key',
          'secret',
          'err.sql',
          '*.err.sql',
        ],
        censor: '[redacted]',
      },
      serializers: {
        req: (req: { id?: string; method?: string; url?: string; ip?: string }) => ({
          id: req.id,
          method: req.method,
          url: redactUrl(req.url ?? ''),
          ip: req.ip,
        }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        err: pino.stdSerializers.err,
      },
    },
    destination,
  );
}

/**
 * The JSON lines made readable (pino-pretty), written synchronously to stdout so nothing is lost
 * when the process exits right after a line. A request line becomes
 * `POST /api/v1/tickets/replies/create.php 401 2.4 ms: <the error the client got>`; other fields
 * follow on the same line.
 */
function prettyStdout(): pino.DestinationStream {
  const stdout = pino.destination({ dest: 1, sync: true });
  const prettify = prettyFactory({
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
    singleLine: true,
  });
  return {
    write(line: string) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line);
      } catch {
        stdout.write(line);
        return;
      }
      stdout.write(prettify(entry.msg === REQUEST_COMPLETED ? requestLine(entry) : entry));
    },
  };
}

/** The message of the line src/http/requestLog.ts writes for every request. */
export const REQUEST_COMPLETED = 'request completed';

function requestLine(entry: Record<string, unknown>): Record<string, unknown> {
  // `path` is there only when no route matched: then it says more than the route's placeholder.
  const { method, route, path, statusCode, responseTime, error, msg: _msg, ...rest } = entry;
  const time = typeof responseTime === 'number' ? ` ${responseTime.toFixed(1)} ms` : '';
  const why = typeof error === 'string' ? `: ${error}` : '';
  return { ...rest, msg: `${method} ${path ?? route} ${statusCode}${time}${why}` };
}
