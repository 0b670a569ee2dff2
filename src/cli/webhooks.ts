// `npm run cli -- webhooks …`: an admin's management of completion webhooks (docs/webhooks.md):
// add (the secret is shown once), list, remove, test, deliveries, replay. Each function takes
// the service's pool and tables; workers/cli.ts wires them to the command line.
import type { Pool } from 'mysql2/promise';
import type { Config } from '../config.js';
import type { ServiceTables } from '../db/tables.js';
import { checkTarget } from '../webhooks/address.js';
import type { DeliveryRow, DeliveryState } from '../webhooks/deliveries.js';
import { EVENT_TYPES, type EventType, isEventType, testEvent } from '../webhooks/events.js';
import { apiKeyName, type ListedWebhook } from '../webhooks/overview.js';
import { newSecret, openSecret, sealingKey, sealSecret } from '../webhooks/secrets.js';
import { postWebhook, type SendResult } from '../webhooks/send.js';
import { signatureHeader } from '../webhooks/signature.js';
import { addSubscription, getSubscription } from '../webhooks/subscriptions.js';
import { table } from './queues.js';

/** A refusal told to the admin as it is (exit code 1). */
export class WebhookCliError extends Error {}

export type WebhookSettings = Pick<
  Config,
  'WEBHOOK_ALLOW_PRIVATE' | 'WEBHOOK_SECRET_KEY' | 'WEBHOOK_TIMEOUT_MS' | 'AUTH_CACHE_SECONDS'
>;

/** The events named on the command line (comma-separated, or several options), checked. */
export function parseEvents(list: string): EventType[] {
  const names = [
    ...new Set(
      list
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== ''),
    ),
  ];
  const unknown = names.filter((name) => !isEventType(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new WebhookCliError(
      `Events must be among ${EVENT_TYPES.join(', ')}${unknown.length > 0 ? ` (not ${unknown.join(', ')})` : ''}.`,
    );
  }
  return names as EventType[];
}

export interface AddedWebhook {
  webhook_id: number;
  api_key_id: number;
  api_key_name: string;
  url: string;
  events: EventType[];
  secret: string;
}

export async function addWebhook(
  pool: Pool,
  tables: ServiceTables,
  settings: WebhookSettings,
  request: { apiKeyId: number; url: string; events: EventType[] },
): Promise<AddedWebhook> {
  const name = await apiKeyName(pool, request.apiKeyId);
  if (name === null) throw new WebhookCliError(`ITFlow has no API key ${request.apiKeyId} (api_keys.api_key_id).`);
  const url = await checkTarget(request.url, settings.WEBHOOK_ALLOW_PRIVATE).catch((error: Error) => {
    throw new WebhookCliError(error.message);
  });
  const secret = newSecret();
  const sealedSecret = sealSecret(secret, sealingKey(settings.WEBHOOK_SECRET_KEY));
  const webhookId = await addSubscription(pool, tables, {
    apiKeyId: request.apiKeyId,
    url,
    events: request.events,
    sealedSecret,
  });
  return { webhook_id: webhookId, api_key_id: request.apiKeyId, api_key_name: name, url, events: request.events, secret };
}

export function addedText(added: AddedWebhook, settings: WebhookSettings): string {
  return [
    `Webhook ${added.webhook_id} added for API key ${added.api_key_id} (${added.api_key_name}): ${added.url}`,
    `Events: ${added.events.join(', ')}`,
    `Secret: ${added.secret}`,
    '',
    'The secret is shown this once: give it to the receiver, which checks each delivery’s Webhook-Signature with it',
    '(docs/webhooks.md). Lost it? Remove the webhook and add it again.',
    `Workers start sending its events within ${settings.AUTH_CACHE_SECONDS} s (AUTH_CACHE_SECONDS).`,
    '',
  ].join('\n');
}

export function webhooksText(list: ListedWebhook[]): string {
  if (list.length === 0) return 'No webhooks. Add one with `npm run cli -- webhooks add <api_key_id> <url>`.\n';
  return `${table(
    ['id', 'api key', 'url', 'events', 'pending', 'delivered (24 h)', 'failed', 'added'],
    list.map((w) => [
      w.webhook_id,
      `${w.api_key_id} ${w.api_key_name ?? '(no longer in ITFlow)'}`,
      w.url,
      w.events.join(','),
      w.deliveries.pending,
      w.deliveries.delivered,
      w.deliveries.failed,
      w.created_at.slice(0, 19).replace('T', ' '),
    ]),
  )}\n`;
}

/** Sends a `webhook.test` event to one webhook now, signed as deliveries are, and tells what it answered. */
export async function testWebhook(
  pool: Pool,
  tables: ServiceTables,
  settings: WebhookSettings,
  webhookId: number,
): Promise<{ url: string; eventId: string; result: SendResult }> {
  const subscription = await getSubscription(pool, tables, webhookId);
  if (!subscription) throw new WebhookCliError(`No webhook ${webhookId}.`);
  let secret: string;
  try {
    secret = openSecret(subscription.secret, sealingKey(settings.WEBHOOK_SECRET_KEY));
  } catch (error) {
    throw new WebhookCliError((error as Error).message);
  }
  const event = testEvent(webhookId, subscription.apiKeyId);
  const body = JSON.stringify(event);
  const result = await postWebhook(
    subscription.url,
    body,
    {
      'Webhook-Id': event.id,
      'Webhook-Event': event.type,
      'Webhook-Attempt': '1',
      'Webhook-Signature': signatureHeader(secret, body, Math.floor(Date.now() / 1000)),
    },
    { timeoutMs: settings.WEBHOOK_TIMEOUT_MS, allowPrivate: settings.WEBHOOK_ALLOW_PRIVATE },
  );
  return { url: subscription.url, eventId: event.id, result };
}

export function testedText({ url, eventId, result }: Awaited<ReturnType<typeof testWebhook>>): string {
  return result.ok
    ? `Delivered a webhook.test event (${eventId}) to ${url}: HTTP ${result.status} in ${result.ms} ms.\n`
    : `Could not deliver a webhook.test event to ${url}: ${result.error} (after ${result.ms} ms).\n`;
}

export function parseState(state: string | undefined): DeliveryState | undefined {
  if (state === undefined) return undefined;
  if (state === 'pending' || state === 'delivered' || state === 'failed') return state;
  throw new WebhookCliError('--state must be pending, delivered or failed.');
}

export function deliveriesText(rows: DeliveryRow[]): string {
  if (rows.length === 0) return 'No deliveries.\n';
  const time = (iso: string | null) => (iso === null ? '-' : iso.slice(0, 19).replace('T', ' '));
  return `${table(
    ['event id', 'type', 'webhook', 'state', 'attempts', 'created', 'next attempt', 'last answer'],
    rows.map((d) => [
      d.eventId,
      d.eventType,
      d.webhookId,
      d.state,
      d.attempts,
      time(d.createdAt),
      time(d.nextAttemptAt),
      d.state === 'delivered' ? `HTTP ${d.lastStatus}` : (d.lastError ?? '-').slice(0, 80),
    ]),
  )}\n`;
}
