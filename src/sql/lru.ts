// A small LRU map: Map keeps insertion order, so re-inserting on read moves an entry to the end
// and the first key is always the least recently used.
export class Lru<K, V> {
  private readonly map = new Map<K, V>()

  constructor (readonly capacity: number) {}

  get size (): number {
    return this.map.size
  }

  get (key: K): V | undefined {
    const value = this.map.get(key)
    if (value === undefined) return undefined
    this.map.delete(key)
    this.map.set(key, value)
    return value
  }

  set (key: K, value: V): void {
    if (this.capacity <= 0) return
    this.map.delete(key)
    this.map.set(key, value)
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next()
      if (oldest.done !== true) this.map.delete(oldest.value)
    }
  }
}
