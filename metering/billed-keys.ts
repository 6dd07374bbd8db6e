/**
 * The task keys of one run that are already billed (the memory ledger's dedupe: a key is billed
 * once, whatever is settled twice). The engine's keys are task seqs ("1", "2", …): those live
 * in a bitset (a 200,000-task run takes 25 KB, not a Set of 200,000 strings); any other key in
 * a Set.
 */
export class BilledKeys {
  private bits = new Uint32Array(64);
  private other: Set<string> | null = null;

  /** Adds `key`; false when it was already there. */
  add(key: string): boolean {
    const n = seqOf(key);
    if (n < 0) {
      this.other ??= new Set();
      if (this.other.has(key)) return false;
      this.other.add(key);
      return true;
    }
    const word = n >>> 5;
    if (word >= this.bits.length) {
      const grown = new Uint32Array(Math.max(word + 1, this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    const bit = 1 << (n & 31);
    if ((this.bits[word]! & bit) !== 0) return false;
    this.bits[word]! |= bit;
    return true;
  }
}

/** The number a canonical decimal key stands for ("0", "17"; not "017", "1e3", " 1"), or -1. */
function seqOf(key: string): number {
  const len = key.length;
  if (len === 0 || len > 9 || (len > 1 && key.charCodeAt(0) === 48)) return -1;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const c = key.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}
