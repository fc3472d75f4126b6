// Which signals pidone catches, ignores, or leaves alone, and the one place that
// subscribes to them. Bun's process.on runs handlers on the event loop, one call per
// delivery; the kernel coalesces pending signals, so SIGCHLD means "reap until empty".
import { SIG, FORWARDED, UNCATCHABLE_FROM_JS, signalName } from "./table.ts";
import { ignoreSignal, sigprocmask, sigset, SIG_UNBLOCK } from "../sys/libc.ts";

export interface SignalPlan {
  /** Caught by pidone and forwarded (or acted on). */
  forwarded: number[];
  /** Ignored by pidone itself, at their default in the child unless our parent ignored them. */
  ignoredHere: number[];
  /** Reset to SIG_DFL in the child (posix_spawnattr_setsigdefault). */
  childDefault: number[];
}

/** `parentIgnored`: what our parent left ignored; those stay ignored and are never forwarded. */
export function planSignals(
  parentIgnored: ReadonlySet<number>,
  extraForwarded: readonly number[] = [],
  /** --setsid: TTIN/TTOU are caught (to become SIGSTOP for the child's group), not ignored. */
  catchTerminalStops = false,
): SignalPlan {
  const jsCatchable = (s: number) => !UNCATCHABLE_FROM_JS.includes(s) && s !== SIG.PWR && s !== SIG.KILL && s !== SIG.STOP;
  const terminalStops = catchTerminalStops ? [SIG.TTIN, SIG.TTOU] : [];
  const forwarded = [...new Set([...FORWARDED, ...terminalStops, ...extraForwarded])].filter(
    (s) => !parentIgnored.has(s) && jsCatchable(s),
  );
  // TTIN/TTOU: the child owns the terminal's foreground; pidone must never be stopped
  // for writing a log line from the background (tini does the same).
  const ignoredHere = [...(catchTerminalStops ? [] : [SIG.TTIN, SIG.TTOU]), ...UNCATCHABLE_FROM_JS].filter(
    (s) => !parentIgnored.has(s),
  );
  const childDefault = [...forwarded, ...ignoredHere, SIG.PIPE, SIG.XFSZ];
  if (!parentIgnored.has(SIG.CHLD)) childDefault.push(SIG.CHLD);
  return { forwarded, ignoredHere, childDefault: [...new Set(childDefault)] };
}

export function childDefaultSet(plan: SignalPlan): Uint8Array {
  return sigset(plan.childDefault);
}

/**
 * Subscribes `onSignal` to every forwarded signal and SIGCHLD, ignores the rest of the
 * plan, and unblocks the caught ones on this thread (our parent may have blocked them;
 * the child still gets the original mask).
 */
export function listen(plan: SignalPlan, onSignal: (sig: number) => void): void {
  for (const s of plan.ignoredHere) ignoreSignal(s);
  const caught = [...plan.forwarded, SIG.CHLD];
  for (const s of caught) {
    process.on(signalName(s) as NodeJS.Signals, () => onSignal(s));
  }
  sigprocmask(SIG_UNBLOCK, sigset(caught));
}
