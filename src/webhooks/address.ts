// Where a webhook may be sent. Only an admin adds targets (the CLI), and ITFlow installs
// usually live on private networks, so private addresses are allowed by default; with
// WEBHOOK_ALLOW_PRIVATE=false the private, loopback, link-local (cloud metadata at 169.254.169.254)
// and other special-purpose ranges are refused. The check is made on the address a delivery
// connects to (src/webhooks/send.ts), not only on the name when the webhook is added: a name may
// resolve elsewhere later (DNS rebinding).
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

const RANGES: Array<[string, string, number, 'ipv4' | 'ipv6']> = [
  ['unspecified', '0.0.0.0', 8, 'ipv4'],
  ['private', '10.0.0.0', 8, 'ipv4'],
  ['shared (carrier-grade NAT)', '100.64.0.0', 10, 'ipv4'],
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['link-local', '169.254.0.0', 16, 'ipv4'],
  ['private', '172.16.0.0', 12, 'ipv4'],
  ['special-purpose', '192.0.0.0', 24, 'ipv4'],
  ['private', '192.168.0.0', 16, 'ipv4'],
  ['benchmarking', '198.18.0.0', 15, 'ipv4'],
  ['multicast', '224.0.0.0', 4, 'ipv4'],
  ['reserved', '240.0.0.0', 4, 'ipv4'],
  ['unspecified', '::', 128, 'ipv6'],
  ['loopback', '::1', 128, 'ipv6'],
  ['unique local (private)', 'fc00::', 7, 'ipv6'],
  ['link-local', 'fe80::', 10, 'ipv6'],
  ['multicast', 'ff00::', 8, 'ipv6'],
];

const LISTS = RANGES.map(([kind, network, prefix, type]) => {
  const list = new BlockList();
  list.addSubnet(network, prefix, type);
  return { kind, list, type };
});

/** The 16 bytes of an IPv6 address in any of its textual forms (with an embedded IPv4 tail too). */
function ipv6Bytes(address: string): Buffer {
  let text = address.split('%')[0] as string;
  const tail = text.match(/(\d+\.\d+\.\d+\.\d+)$/)?.[1];
  if (tail) {
    const [a, b, c, d] = tail.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -tail.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const all = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const bytes = Buffer.alloc(16);
  for (const [i, group] of all.entries()) bytes.writeUInt16BE(Number.parseInt(group, 16) || 0, i * 2);
  return bytes;
}

/**
 * The IPv4 address an IPv6 one carries and reaches: IPv4-mapped (::ffff:a.b.c.d), NAT64
 * (64:ff9b::/96) and 6to4 (2002::/16); else null.
 */
function embeddedIpv4(address: string): string | null {
  const bytes = ipv6Bytes(address);
  const v4 = (offset: number) => [...bytes.subarray(offset, offset + 4)].join('.');
  const zeros = (from: number, to: number) => bytes.subarray(from, to).every((b) => b === 0);
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return v4(12);
  if (bytes.readUInt16BE(0) === 0x64 && bytes.readUInt16BE(2) === 0xff9b && zeros(4, 12)) return v4(12);
  if (bytes.readUInt16BE(0) === 0x2002) return v4(2);
  return null;
}

/** What kind of special address `address` is ('loopback', 'private', 'link-local', …), or null for a public one. */
export function specialAddress(address: string): string | null {
  const version = isIP(address);
  if (version === 0) return null;
  if (version === 6) {
    const v4 = embeddedIpv4(address);
    if (v4 !== null) return specialAddress(v4);
  }
  const type = version === 4 ? 'ipv4' : 'ipv6';
  return LISTS.find((entry) => entry.type === type && entry.list.check(address, type))?.kind ?? null;
}

/** A webhook URL that may not be used; the message says why. */
export class TargetRefused extends Error {}

/** The hostname of a URL as an address or a name (IPv6 literals without their brackets). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Why a delivery may not connect to `address` (what `host` resolved to) when private targets are refused, or null. */
export function refusalFor(address: string, host: string): string | null {
  const kind = specialAddress(address);
  if (kind === null) return null;
  const named = host === address ? address : `${host} (${address})`;
  return `${named} is a ${kind} address, and WEBHOOK_ALLOW_PRIVATE is false.`;
}

/**
 * Checks a URL an admin gives for a webhook: http or https, no user name or password in it
 * (the signature is what authenticates a delivery), and — when private targets are refused —
 * a host that resolves only to public addresses. Returns the URL as it will be stored.
 */
export async function checkTarget(text: string, allowPrivate: boolean): Promise<string> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TargetRefused(`'${text}' is not a URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TargetRefused(`Webhook URLs must start with http:// or https:// (got ${url.protocol}//).`);
  }
  if (url.username || url.password) {
    throw new TargetRefused('Webhook URLs may not carry a user name or password: deliveries are signed instead.');
  }
  if (url.href.length > 2048) throw new TargetRefused('Webhook URLs may be at most 2048 characters.');
  if (!allowPrivate) {
    const host = hostOf(url);
    const addresses = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
    if (addresses.length === 0) throw new TargetRefused(`${host} does not resolve to any address.`);
    for (const address of addresses) {
      const refusal = refusalFor(address, host);
      if (refusal) throw new TargetRefused(refusal);
    }
  }
  url.hash = '';
  return url.href;
}
