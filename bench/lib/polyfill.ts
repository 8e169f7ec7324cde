/**
 * `Promise.withResolvers` (ES2024) for Node 20: @chainsafe/libp2p-yamux v8 and
 * @libp2p/utils call it, and it only ships with Node 22. A spec-equivalent
 * stand-in; nothing about the muxer's behaviour or settings changes.
 *
 * @module
 */
interface WithResolvers {
  withResolvers?<T>(): { promise: Promise<T>; resolve: (v: T | PromiseLike<T>) => void; reject: (e?: unknown) => void };
}

const P = Promise as unknown as WithResolvers;
if (typeof P.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (v: T | PromiseLike<T>) => void;
      let reject!: (e?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

export {};
