import { type Logger, pino } from 'pino';

/** Query parameters whose values never reach a log line. */
const SECRET_PARAMS = /([?&](?:api_key|apikey|key|token)=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url.replace(SECRET_PARAMS, '$1[redacted]');
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
