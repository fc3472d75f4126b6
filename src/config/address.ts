// `--http ADDR:PORT` and `[settings] http`: where the read-only HTTP endpoint listens.
// IP literals only: listening on a host name would resolve it, and once services run
// pidone starts no thread (see services/ready.ts's header), so a name is refused here,
// with what to write instead, rather than resolved at some later listen.
import type { HttpAddress } from "./types.ts";

export type AddressResult = { ok: true; address: HttpAddress } | { ok: false; message: string };

const EXAMPLES = `"0.0.0.0:9100" (every IPv4 address), "127.0.0.1:9100", "[::]:9100"`;

/** Dotted decimal only: inet_aton would read "010" as octal and "1.2" as 1.0.0.2. */
function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(?:0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

/** The WHATWG URL parser checks an IPv6 literal; zone ids ("%eth0") it refuses, and so do we. */
function isIPv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || !s.includes(":")) return false;
  try {
    return new URL(`http://[${s}]/`).hostname !== "";
  } catch {
    return false;
  }
}

/** "ADDR:PORT" → an address to listen on; "localhost" is 127.0.0.1. */
export function parseHttpAddress(text: string): AddressResult {
  const bad = (why: string): AddressResult => ({ ok: false, message: `${JSON.stringify(text)}: ${why}` });
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(text);
  if (!m) {
    if (/^\d+$/.test(text)) return bad(`a port alone; give ADDR:PORT, e.g. ${EXAMPLES}`);
    return bad(`expected ADDR:PORT, e.g. ${EXAMPLES}`);
  }
  const [, v6, other, portText] = m as unknown as [string, string | undefined, string | undefined, string];
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return bad(`the port must be a number from 1 to 65535, got ${JSON.stringify(portText)}`);
  }
  const port = Number(portText);
  if (v6 !== undefined) {
    if (!isIPv6(v6)) return bad(`"[${v6}]" is not an IPv6 address`);
    return { ok: true, address: { host: v6, port } };
  }
  const host = other!;
  if (host === "") return bad(`no address; write 0.0.0.0:${port} for every IPv4 address, or [::]:${port} for every address`);
  if (host.toLowerCase() === "localhost") return { ok: true, address: { host: "127.0.0.1", port } };
  if (isIPv4(host)) return { ok: true, address: { host, port } };
  if (/^[\d.]+$/.test(host)) return bad(`"${host}" is not an IPv4 address (four numbers from 0 to 255, no leading zeros)`);
  return bad(`"${host}" is a host name: give an IP address (pidone resolves no names once services run), e.g. ${EXAMPLES}`);
}

/** "127.0.0.1:9100", "[::1]:9100". */
export function formatHttpAddress(a: HttpAddress): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
