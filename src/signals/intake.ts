// Which signals pidone catches, ignores, or leaves alone, and the one place that
// subscribes to them.
//
// Who forwards a signal. The stub's handler (on_signal, src/native/stub.c) does, with no
// JavaScript on the way, when all four hold: this is the single file (native.available);
// the mode gave the signal an output (listen's forwardAs: itself, a rewrite, or 0 to
// drop; not "queue"); the mode published a target (native.publishTarget, or
// publishSignalTarget for one signal); and its kill() succeeds. Otherwise the mode's
// onSignal gets it with `forwarded` false and forwards (or decides) itself. Either way
// onSignal runs once per delivery, at once for the mode's urgent signals and for
// everything on_signal did not forward; a quiet one only when something else wakes the
// loop. Without the stub, Bun's process.on delivers on the event loop, and STKFLT and
// the real-time signals, for which it installs nothing, are ignored.
// The kernel coalesces pending signals, so SIGCHLD means "reap until empty".
import { SIG, FORWARDED, UNCATCHABLE_FROM_JS, signalName } from "./table.ts";
import { ignoreSignal, sigprocmask, sigset, SIG_UNBLOCK } from "../sys/libc.ts";
import * as native from "../sys/native.ts";
import { counters } from "../process/counters.ts";

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
  /** The stub's handler catches what process.on cannot. */
  nativeIntake = native.available,
): SignalPlan {
  const uncatchable = nativeIntake ? [] : UNCATCHABLE_FROM_JS;
  // SIGPWR belongs to the runtime (JavaScriptCore suspends its threads with it).
  const catchable = (s: number) => !uncatchable.includes(s) && s !== SIG.PWR && s !== SIG.KILL && s !== SIG.STOP;
  const terminalStops = catchTerminalStops ? [SIG.TTIN, SIG.TTOU] : [];
  const forwarded = [...new Set([...FORWARDED, ...(nativeIntake ? UNCATCHABLE_FROM_JS : []), ...terminalStops, ...extraForwarded])].filter(
    (s) => !parentIgnored.has(s) && catchable(s),
  );
  // TTIN/TTOU: the child owns the terminal's foreground; pidone must never be stopped
  // for writing a log line from the background (tini does the same).
  const ignoredHere = [...(catchTerminalStops ? [] : [SIG.TTIN, SIG.TTOU]), ...uncatchable].filter(
    (s) => !parentIgnored.has(s),
  );
  // The runtime ignores SIGPIPE and SIGXFSZ for itself: default again in the child.
  const childDefault = [...forwarded, ...ignoredHere, SIG.PIPE, SIG.XFSZ];
  if (!parentIgnored.has(SIG.CHLD)) childDefault.push(SIG.CHLD);
  return { forwarded, ignoredHere, childDefault: [...new Set(childDefault)] };
}

export function childDefaultSet(plan: SignalPlan): Uint8Array {
  return sigset(plan.childDefault);
}

/**
 * Called once per delivery. `forwarded`: the native handler already forwarded the
 * signal (or dropped it, per `forwardAs`); the mode then only does its bookkeeping.
 */
export type SignalHandler = (sig: number, forwarded: boolean) => void;

/**
 * Subscribes `onSignal` to every forwarded signal and SIGCHLD, ignores the rest of the
 * plan, and unblocks the caught ones on this thread (our parent, or the stub, may have
 * blocked them; the child still gets the original mask).
 *
 * `forwardAs` tells the native handler what to send for each forwarded signal once a
 * target is published (native.publishTarget, publishSignalTarget): the signal itself, a
 * rewrite, 0 to drop it, or "queue" to leave it to `onSignal`. Without it every signal
 * is queued for `onSignal` alone.
 * `urgent`: signals whose onSignal must run right away even when the handler forwarded
 * them (stop decisions, logging); the others reach it the next time the loop wakes.
 */
export function listen(
  plan: SignalPlan,
  onSignal: SignalHandler,
  forwardAs?: (sig: number) => number | "queue",
  urgent: (sig: number) => boolean = () => true,
): void {
  for (const s of plan.ignoredHere) ignoreSignal(s);
  const caught = [...plan.forwarded, SIG.CHLD];
  if (native.available) {
    for (const s of plan.forwarded) native.setForwarding(s, forwardAs ? forwardAs(s) : "queue", !urgent(s));
    native.setForwarding(SIG.CHLD, "queue");
    // Ignored signals blocked since the stub's first instruction would stay pending.
    if (plan.ignoredHere.length) sigprocmask(SIG_UNBLOCK, sigset(plan.ignoredHere));
    native.startIntake(caught, (sig, forwarded) => {
      if (forwarded) counters.forwarded++;
      onSignal(sig, forwarded);
    });
    return;
  }
  for (const s of caught) {
    process.on(signalName(s) as NodeJS.Signals, () => onSignal(s, false));
  }
  sigprocmask(SIG_UNBLOCK, sigset(caught));
}
