// Stands in for mnemonist/lru-cache in Lambda bundles (an esbuild alias in
// infra/constructs/functions.ts), about 5 KB of each function with a DynamoDB client. Its one user
// there is the client's endpoint-discovery cache (@aws-sdk/endpoint-cache): built with every client,
// and with discovery off (no operation the handlers call needs it) only ever read empty. Still a
// whole LRU cache, on a Map (whose order is insertion order), with the methods that cache uses.
export default class LRUCache<K, V> {
  readonly #entries = new Map<K, V>();

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new Error(`LRU cache stand-in (functions/lib/lru-cache.ts): capacity must be a positive whole number, got ${capacity}`);
  }

  get size(): number {
    return this.#entries.size;
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** The value, without making it the most recently used. */
  peek(key: K): V | undefined {
    return this.#entries.get(key);
  }

  /** The value, made the most recently used. */
  get(key: K): V | undefined {
    if (!this.#entries.has(key)) return undefined;
    const value = this.#entries.get(key)!;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  /** Sets the value as the most recently used; the least recently used goes when over capacity. */
  set(key: K, value: V): this {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value as K);
    return this;
  }

  clear(): void {
    this.#entries.clear();
  }
}
