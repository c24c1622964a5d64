// Seeded choices for trials that differ: a case draws its fault points from one seed, prints it in its
// notes, and XL_RELIABILITY_SEED=<seed> replays the same draws.

/** mulberry32: small, fast, and good enough to spread fault points. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: XL_RELIABILITY_SEED, or one drawn now. */
export function runSeed(): number {
  const given = process.env.XL_RELIABILITY_SEED;
  if (given === undefined) return Math.floor(Math.random() * 2 ** 31);
  const seed = Number(given);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`XL_RELIABILITY_SEED must be a non-negative integer, got "${given}"`);
  return seed;
}

/** An integer in [min, max]. */
export const between = (random: () => number, min: number, max: number) => min + Math.floor(random() * (max - min + 1));
