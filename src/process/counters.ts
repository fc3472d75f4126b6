// What pidone has done since it started, for `/metrics` and `--ctl status` (counters only
// grow; JavaScript numbers stay exact far beyond any container's life).
export const counters = {
  /** Children reaped by the JavaScript loop (the native handler keeps its own count). */
  reaped: 0,
  /** Signals forwarded to a child or a service, by the native handler or by pidone's JavaScript. */
  forwarded: 0,
};
