// Webhook signing secrets. A receiver checks each delivery's HMAC with the secret it was shown
// once, so the service must be able to read the secret back: a hash would not do. Stored sealed
// with AES-256-GCM under WEBHOOK_SECRET_KEY when that is set, so a copy of the database (a
// backup, a replica, a read-only grant on ITFlow's schema) does not hand out the secrets; without
// it, stored as they are — as ITFlow itself stores its API keys' secrets in `api_keys`.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const PLAIN = 'plain:';
const SEALED = 'aes256gcm:';

/** A new secret: `whsec_` and 32 random bytes, base64url. The whole string is the HMAC key. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** The key WEBHOOK_SECRET_KEY names (64 hex digits), or undefined when unset. */
export function sealingKey(hex: string | undefined): Buffer | undefined {
  return hex === undefined ? undefined : Buffer.from(hex, 'hex');
}

/** How the secret is stored: sealed under `key`, or as it is. */
export function sealSecret(secret: string, key: Buffer | undefined): string {
  if (!key) return `${PLAIN}${secret}`;
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const sealed = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return `${SEALED}${[iv, cipher.getAuthTag(), sealed].map((b) => b.toString('base64url')).join('.')}`;
}

export class SecretUnreadable extends Error {}

/** The secret as stored by sealSecret, read back; SecretUnreadable when the key is missing or another one. */
export function openSecret(stored: string, key: Buffer | undefined): string {
  if (stored.startsWith(PLAIN)) return stored.slice(PLAIN.length);
  if (!stored.startsWith(SEALED)) throw new SecretUnreadable('The stored webhook secret is in no known form.');
  if (!key) {
    throw new SecretUnreadable('The webhook secret is sealed, and this process has no WEBHOOK_SECRET_KEY to open it.');
  }
  const [iv, tag, sealed] = stored
    .slice(SEALED.length)
    .split('.')
    .map((part) => Buffer.from(part, 'base64url'));
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv as Buffer);
    decipher.setAuthTag(tag as Buffer);
    return Buffer.concat([decipher.update(sealed as Buffer), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretUnreadable('The webhook secret was sealed with another WEBHOOK_SECRET_KEY than this process has.');
  }
}
