// @ts-check
// A JSON answer of about a given size, shaped like an API listing (ids, names, dates, amounts, free
// text drawn from a vocabulary), from a seeded generator: the same bytes for the same size in every
// process, so the bench's upstream and its worker agree on what was sent. It compresses about as an
// ordinary API answer does (gzip to roughly a fifth), not as a repeated line would.

const WORDS = (
  "account active address amount balance billing cancelled city code country created credit currency " +
  "customer delivered description discount draft email expired invoice item label line merchant method " +
  "name note open order paid payment pending phone price product quantity refund region shipped sku " +
  "status street subscription tax total type unit updated user warehouse"
).split(" ");

/**
 * A seeded xorshift: numbers in [0, 1), the same for the same seed in every process.
 * @param {number} seed
 */
export function generator(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4_294_967_296;
  };
}

/**
 * @param {number} bytes
 * @returns {Buffer}
 */
export function jsonDocument(bytes) {
  const random = generator(bytes);
  const pick = () => WORDS[Math.floor(random() * WORDS.length)];
  const hex = (/** @type {number} */ n) =>
    Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join("");
  const items = [];
  let size = 12;
  while (size < bytes) {
    const item = {
      id: `${hex(8)}-${hex(4)}-${hex(4)}-${hex(12)}`,
      name: `${pick()} ${pick()}`,
      status: pick(),
      amount: Math.round(random() * 1_000_000) / 100,
      quantity: Math.floor(random() * 50),
      createdAt: new Date(1_700_000_000_000 + Math.floor(random() * 3e10)).toISOString(),
      note: Array.from({ length: 3 + Math.floor(random() * 8) }, pick).join(" "),
    };
    items.push(item);
    size += JSON.stringify(item).length + 1;
  }
  return Buffer.from(JSON.stringify({ items }));
}
