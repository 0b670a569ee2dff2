// One HTTP POST of a webhook delivery, with the outbound limits a service that calls URLs
// typed by someone else needs: http and https only; the address connected to checked when
// private targets are refused (the resolved address, at connection time: DNS rebinding); no
// redirect followed (a 3xx is a failed attempt); one deadline for connecting and answering; at
// most a few hundred bytes of the answer read (for the error message), the rest never downloaded.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { hostOf, refusalFor } from './address.js';

export interface SendOptions {
  timeoutMs: number;
  allowPrivate: boolean;
}

export type SendResult =
  | { ok: true; status: number; ms: number }
  | { ok: false; status: number | null; error: string; ms: number };

/** How much of a refusing answer's body is kept for the error message. */
const ANSWER_EXCERPT_BYTES = 512;
const USER_AGENT = 'ITFlow-Reply-Queue-Webhooks/1';

/**
 * dns.lookup, refusing (with the reason) when any address the name resolves to is special and
 * private targets are refused. Node calls it for every connection, so the check is on the
 * address actually connected to.
 */
function guardedLookup(): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      for (const { address } of addresses) {
        const refusal = refusalFor(address, hostname);
        if (refusal) return callback(Object.assign(new Error(refusal), { code: 'EWEBHOOKPRIVATE' }), '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
}

export function postWebhook(
  target: string,
  body: string,
  headers: Record<string, string>,
  options: SendOptions,
): Promise<SendResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const failed = (error: string, status: number | null = null): SendResult => ({ ok: false, status, error, ms: elapsed() });
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return Promise.resolve(failed(`'${target}' is not a URL.`));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return Promise.resolve(failed(`${url.protocol} is not http or https.`));
  const host = hostOf(url);
  if (!options.allowPrivate && isIP(host)) {
    const refusal = refusalFor(host, host);
    if (refusal) return Promise.resolve(failed(refusal));
  }

  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const settle = (result: SendResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(result);
    };
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(url, {
      method: 'POST',
      // A fresh connection each time: the address is checked again, and no socket lingers.
      agent: false,
      ...(options.allowPrivate ? {} : { lookup: guardedLookup() }),
      headers: {
        'Content-Type': 'application/json',
        'Content-Length': String(Buffer.byteLength(body)),
        'User-Agent': USER_AGENT,
        ...headers,
      },
    });
    const timer = setTimeout(() => settle(failed(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    request.on('error', (error: NodeJS.ErrnoException) => {
      settle(failed(error.code === 'EWEBHOOKPRIVATE' ? error.message : `${error.message}`));
    });
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 200 && status < 300) return settle({ ok: true, status, ms: elapsed() });
      const location = status >= 300 && status < 400 ? response.headers.location : undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        const excerpt = Buffer.concat(chunks).subarray(0, ANSWER_EXCERPT_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
        const what =
          status >= 300 && status < 400
            ? `HTTP ${status}: redirects are not followed${location ? ` (Location: ${String(location).slice(0, 200)})` : ''}`
            : `HTTP ${status}${excerpt ? `: ${excerpt}` : ''}`;
        settle(failed(what, status));
      };
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= ANSWER_EXCERPT_BYTES) done();
      });
      response.on('end', done);
      response.on('error', done);
    });
    request.end(body);
  });
}
