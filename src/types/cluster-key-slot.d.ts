// cluster-key-slot (the hash-slot function ioredis itself routes by) ships no types.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0–16383) of a key, honouring a `{hash tag}` in it. */
  function calculateSlot(key: string | Buffer): number;
  export = calculateSlot;
}
