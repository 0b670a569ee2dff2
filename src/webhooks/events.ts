// What a webhook delivers: the event types, their ids and their JSON bodies. A body is made once,
// when its event is written to the outbox, and sent byte for byte on every attempt, so a
// duplicate delivery is the same body with the same event id.
import { createHash } from 'node:crypto';
import type { Outcome } from '../apply/ledger.js';
import { newCommandId } from '../commands/commandId.js';
import type { CommandJob } from '../queue/jobs.js';

export const EVENT_TYPES = ['command.applied', 'command.failed', 'import.finished'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
/** Sent only by `webhooks test`, never stored. */
export const TEST_EVENT = 'webhook.test';

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

/** Event ids are UUIDv7, like command ids: time-ordered, so the outbox grows at the end of its index. */
export const newEventId = (now = Date.now()): string => newCommandId(now);

/**
 * The id of an event that must be written once however many processes notice it (an import
 * finishing): a UUID (version 8, RFC 9562) made from its name, so every writer makes the same one.
 */
export function eventIdFor(name: string): string {
  const bytes = createHash('sha256').update(name).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x80;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface EventBody<T extends string = string> {
  id: string;
  type: T;
  /** When the event happened (the command's transaction, the import's end), ISO 8601 UTC. */
  created_at: string;
  data: Record<string, unknown>;
}

/** The body of a command.applied or command.failed event. */
export interface CommandEventData {
  command_id: string;
  api_key_id: number;
  ticket_id: number;
  idempotency_key: string | null;
  /** The integration's own reference for the command (`external_id`), or null. */
  external_id: string | null;
  status: 'applied' | 'failed';
  /** applied: the ticket_reply_id written (0 for a status-only command); failed: null. */
  insert_id: number | null;
  /** failed: the status and message a synchronous call would have got; applied: null. */
  http_status: number | null;
  message: string | null;
  accepted_at: string;
  finished_at: string;
}

export function commandEventType(outcome: Outcome): EventType {
  return outcome.status === 'applied' ? 'command.applied' : 'command.failed';
}

export function commandEvent(job: CommandJob, outcome: Outcome, finishedAt: number, eventId = newEventId(finishedAt)) {
  const failure = outcome.status === 'failed' ? outcome.failure : null;
  const data: CommandEventData = {
    command_id: job.commandId,
    api_key_id: job.apiKeyId,
    ticket_id: job.command.ticketId,
    idempotency_key: job.idempotencyKey,
    external_id: job.command.externalId ?? null,
    status: outcome.status,
    insert_id: outcome.status === 'applied' ? outcome.insertId : null,
    http_status: failure?.status ?? null,
    message: failure?.message ?? null,
    accepted_at: new Date(job.acceptedAt).toISOString(),
    finished_at: new Date(finishedAt).toISOString(),
  };
  const body: EventBody<EventType> = {
    id: eventId,
    type: commandEventType(outcome),
    created_at: data.finished_at,
    data: data as unknown as Record<string, unknown>,
  };
  return body;
}

/** The body of an import.finished event. */
export interface ImportEventData {
  import_id: string;
  api_key_id: number;
  file: string | null;
  lines: number | null;
  /** Commands the intake queued for the import's lines (every run of it), and how they ended. */
  queued: number;
  applied: number;
  failed: number;
  /** Lines the intake refused (400, never queued), counted per request: a resumed import may count a line again. */
  refused: number;
  /** Lines sent again (a resumed import) and answered as the commands they already were. */
  duplicates: number;
  first_request_at: string;
  last_request_at: string;
}

export function importEvent(eventId: string, data: ImportEventData, at: number): EventBody<'import.finished'> {
  return {
    id: eventId,
    type: 'import.finished',
    created_at: new Date(at).toISOString(),
    data: data as unknown as Record<string, unknown>,
  };
}

export function testEvent(webhookId: number, apiKeyId: number, at = Date.now()): EventBody<typeof TEST_EVENT> {
  return {
    id: newEventId(at),
    type: TEST_EVENT,
    created_at: new Date(at).toISOString(),
    data: { webhook_id: webhookId, api_key_id: apiKeyId, message: 'A test event sent by `npm run cli -- webhooks test`.' },
  };
}
