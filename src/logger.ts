import { type Logger, pino } from 'pino';

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
