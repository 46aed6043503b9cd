// Runs async sections one at a time per key (others run freely), in arrival order; a failed section frees the key too.
export class KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>()

  async run<T> (key: string, section: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve()
    const mine = before.then(section, section)
    const tail = mine.catch(() => {})
    this.#tails.set(key, tail)
    try {
      return await mine
    } finally {
      // The last section of a key forgets it, so the map holds only keys with a section running or waiting.
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }
}
