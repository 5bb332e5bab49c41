import ipaddr from "ipaddr.js";
import type { IpRules } from "../config/gateway.ts";

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

export type IpVerdict = { allowed: true } | { allowed: false; reason: string };

/**
 * IP allow/deny lists (CIDR, IPv4 and IPv6), compiled once. Deny wins over allow; a non-empty allow
 * list admits only its blocks; an IPv4-mapped IPv6 address (::ffff:203.0.113.9) is matched as IPv4.
 * An address that is missing or unparsable is refused whenever any rule exists (fail closed).
 *
 * Example: `const check = compileIpRules(global, route); check("203.0.113.9")`.
 */
export function compileIpRules(...ruleSets: IpRules[]): (ip: string | undefined) => IpVerdict {
  const deny = ruleSets.flatMap((rules) => rules.deny.map(parseRange));
  const allowSets = ruleSets
    .map((rules) => rules.allow.map(parseRange))
    .filter((ranges) => ranges.length > 0);
  if (deny.length === 0 && allowSets.length === 0) return () => ({ allowed: true });

  return function checkIp(ip) {
    const address = parseAddress(ip);
    if (!address) return { allowed: false, reason: `no usable source address (${JSON.stringify(ip)})` };
    if (deny.some((range) => inRange(address, range)))
      return { allowed: false, reason: `${ip} is in a deny list` };
    // Every allow list that applies (global, route) must admit the address.
    for (const allow of allowSets) {
      if (!allow.some((range) => inRange(address, range)))
        return { allowed: false, reason: `${ip} is not in an allow list` };
    }
    return { allowed: true };
  };
}

function parseRange(cidr: string): Range {
  const [address, bits] = ipaddr.parseCIDR(cidr);
  // A v4-mapped v6 block (::ffff:10.0.0.0/104) is the v4 block it maps.
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    return [(address as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [address, bits];
}

/** The address, IPv4-mapped IPv6 unwrapped to IPv4; undefined if missing or unparsable. */
export function parseAddress(ip: string | undefined): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (!ip || !ipaddr.isValid(ip)) return undefined;
  return ipaddr.process(ip); // unwraps IPv4-mapped IPv6
}

function inRange(address: ipaddr.IPv4 | ipaddr.IPv6, [network, bits]: Range): boolean {
  return address.kind() === network.kind() && address.match(network, bits);
}
