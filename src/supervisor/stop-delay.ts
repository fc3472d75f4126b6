// --stop-delay: Kubernetes sends SIGTERM while the endpoints that route to the pod are
// still being removed elsewhere, so a program that stops accepting connections at once
// drops requests still on their way (dumb-init #173). With a delay, the first stop signal
// only marks the stop as requested (a readiness endpoint answers 503 from then); what
// the signal means (the forward, the ordered stop) waits for the delay, which counts
// inside the grace. A second stop signal during the delay is someone who means it now.
// One timer, armed only by a stop signal: an idle pidone does not wake for it.

export class StopDelay {
  /** performance.now() at the first stop signal; null until then. */
  requestedAt: number | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private over = false;
  private pending: (() => void)[] = [];

  constructor(
    /** The delay; 0: none. */
    readonly ms: number,
  ) {}

  /** From the first stop signal on: the stop is coming (a readiness endpoint answers 503). */
  get requested(): boolean {
    return this.requestedAt !== null;
  }

  /** The first stop signal came and the delay has not run out yet. */
  get waiting(): boolean {
    return this.timer !== null && !this.over;
  }

  /**
   * A stop signal: `go` (what the signal means) runs once the delay is over: at once
   * without a delay or after it; for a second stop signal during it, now, after what the
   * first one asked for.
   */
  request(go: () => void): void {
    this.requestedAt ??= performance.now();
    if (this.over || this.ms <= 0) {
      this.over = true;
      return go();
    }
    this.pending.push(go);
    if (this.timer === null) this.timer = setTimeout(this.proceed, this.ms);
    else this.proceed();
  }

  /** The delay is over (its timer, or a second stop signal): what was asked runs, in order. */
  private readonly proceed = (): void => {
    if (this.over) return;
    this.over = true;
    if (this.timer !== null) clearTimeout(this.timer);
    const pending = this.pending;
    this.pending = [];
    for (const go of pending) go();
  };
}
